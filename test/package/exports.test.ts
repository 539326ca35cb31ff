/**
 * The package's public entry points, resolved the way a consumer resolves them: from a project outside
 * the repository whose node_modules/cpwc-detect is this repository (a symlink), through package.json
 * `exports`. Needs dist/ (`npm test` builds before jest).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repo = path.resolve(__dirname, '../..');

/** Runs `script` with node in the consumer project; returns its stdout. */
function inConsumer(consumer: string, script: string): string {
  return execFileSync(process.execPath, ['-e', script], { cwd: consumer, encoding: 'utf8' }).trim();
}

describe('package.json exports', () => {
  let consumer: string;

  beforeAll(() => {
    for (const entry of ['dist/detection/index.js', 'dist/eval/index.js']) {
      if (!fs.existsSync(path.join(repo, entry))) throw new Error(`${entry} is missing: run \`npm run build\` first (npm test does)`);
    }
    consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'cpwc-consumer-'));
    fs.mkdirSync(path.join(consumer, 'node_modules'));
    fs.symlinkSync(repo, path.join(consumer, 'node_modules', 'cpwc-detect'), 'dir');
  });

  afterAll(() => {
    if (consumer !== undefined) fs.rmSync(consumer, { recursive: true, force: true });
  });

  it("resolves 'cpwc-detect' to the detection library and 'cpwc-detect/eval' to the evaluator", () => {
    const resolved = inConsumer(
      consumer,
      "console.log(JSON.stringify([require.resolve('cpwc-detect'), require.resolve('cpwc-detect/eval')]))",
    );
    const real = (file: string): string => fs.realpathSync(path.join(repo, file));
    expect(JSON.parse(resolved)).toEqual([real('dist/detection/index.js'), real('dist/eval/index.js')]);
  });

  it('loads the public API of both entry points', () => {
    const exported = inConsumer(
      consumer,
      "const d = require('cpwc-detect'); const e = require('cpwc-detect/eval');" +
        'console.log(JSON.stringify([typeof d.Detector, typeof d.DetectError, typeof e.evaluateDetections, typeof e.CocoEvalError]))',
    );
    expect(JSON.parse(exported)).toEqual(['function', 'function', 'function', 'function']);
  });

  it.each([
    'cpwc-detect/dist/detection/index.js',
    'cpwc-detect/dist/detection/session',
    'cpwc-detect/src/eval/index',
    'cpwc-detect/server',
  ])('does not export the internal path %s', (specifier) => {
    const code = inConsumer(
      consumer,
      `try { require.resolve(${JSON.stringify(specifier)}); console.log('resolved') } catch (e) { console.log(e.code) }`,
    );
    expect(code).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});
