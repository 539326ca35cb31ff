/** The committed parity fixture models (made by npm run export; see test/fixtures/models/README.md). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const FIXTURE_MODELS_DIR = path.join(__dirname, '..', 'fixtures', 'models');

/** Absolute path of a fixture model; fails loudly (never skips) when it is missing. */
export function fixtureModel(name: 'tiny-fpn' | 'tiny-c4'): string {
  const dir = path.join(FIXTURE_MODELS_DIR, name);
  if (!fs.existsSync(path.join(dir, 'model.json'))) {
    throw new Error(`fixture model ${dir} is missing (made by npm run export; see test/fixtures/models/README.md)`);
  }
  return dir;
}
