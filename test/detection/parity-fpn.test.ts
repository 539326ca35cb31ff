/**
 * Parity with torchvision on the tiny FPN fixture model (test/fixtures/models/tiny-fpn).
 * CPWC_PARITY_MODELS=dir1:dir2 adds other model directories that have a reference.json
 * (e.g. a full-size export: npm run export -- ... --reference-images test/fixtures/images/*).
 */
import * as path from 'node:path';
import { describeParity } from './describe-parity';

describeParity(path.join(__dirname, '..', 'fixtures', 'models', 'tiny-fpn'));
for (const dir of (process.env.CPWC_PARITY_MODELS ?? '').split(':').filter((d) => d.length > 0)) describeParity(dir, 2);
