/**
 * Parity with torchvision on the committed fixture models: every reference image of
 * test/fixtures/models/<model>/reference.json goes through the TypeScript pipeline and every stage
 * is compared with what torchvision's FasterRCNN returned for the same weights and pixels.
 * CPWC_PARITY_MODELS=dir1:dir2 adds other model directories that have a reference.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Detector } from '../../src/detection/detector';
import { compareImage, describeProblems, readReference, type ImageReport } from './parity';

const FIXTURE_MODELS = ['tiny-fpn', 'tiny-c4'].map((name) => path.join(__dirname, '..', 'fixtures', 'models', name));
const EXTRA_MODELS = (process.env.CPWC_PARITY_MODELS ?? '').split(':').filter((dir) => dir.length > 0);

describe.each([...FIXTURE_MODELS, ...EXTRA_MODELS].map((dir) => [path.basename(dir), dir] as const))('parity with torchvision: %s', (_, modelDir) => {
  let detector: Detector;
  const reports: ImageReport[] = [];

  beforeAll(async () => {
    if (!fs.existsSync(path.join(modelDir, 'reference.json'))) {
      throw new Error(`${modelDir}/reference.json is missing: the parity fixtures are made by npm run export (see test/fixtures/models/README.md)`);
    }
    detector = await Detector.load(modelDir, { intraOpThreads: 1 });
  });

  afterAll(async () => {
    await detector?.close();
    if (process.env.CPWC_PARITY_VERBOSE) {
      for (const r of reports) {
        const stages = r.stages.map((s) => `${s.stage} ${s.matched}/${s.expected} (ts ${s.produced}) iou-gap ${s.maxIouGap.toExponential(2)} score-diff ${s.maxScoreDiff.toExponential(2)}${s.slivers ? ` slivers ${s.slivers}` : ''}`);
        process.stdout.write(`${path.basename(modelDir)} ${r.file}: ${stages.join(' | ')}\n`);
      }
    }
  });

  const reference = fs.existsSync(path.join(modelDir, 'reference.json')) ? readReference(modelDir) : { images: [{ file: '(reference.json missing)' }] };

  it.each(reference.images.map((image) => [image.file, image] as const))('%s: decode, transform, proposals and detections agree', async (_, image) => {
    expect('proposals' in image).toBe(true);
    const report = await compareImage(detector, modelDir, image as Parameters<typeof compareImage>[2]);
    reports.push(report);
    expect(describeProblems([report])).toEqual([]);
    expect(report.stages.find((s) => s.stage === 'detections')?.expected).toBeGreaterThan(0);
  });
});
