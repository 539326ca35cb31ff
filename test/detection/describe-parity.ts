/**
 * The parity test suite for one model directory: every reference image of its reference.json goes
 * through the TypeScript pipeline and every stage is compared with what torchvision's FasterRCNN
 * returned for the same weights and pixels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Detector } from '../../src/detection/detector';
import { compareImage, describeProblems, readReference, type ImageReport } from './parity';

export function describeParity(modelDir: string, intraOpThreads = 1): void {
  describe(`parity with torchvision: ${path.basename(modelDir)}`, () => {
    let detector: Detector;
    const reports: ImageReport[] = [];

    beforeAll(async () => {
      if (!fs.existsSync(path.join(modelDir, 'reference.json'))) {
        throw new Error(
          `${modelDir}/reference.json is missing: the parity fixtures are made by npm run export (see test/fixtures/models/README.md)`,
        );
      }
      detector = await Detector.load(modelDir, { intraOpThreads });
    });

    afterAll(async () => {
      await detector?.close();
      if (process.env.CPWC_PARITY_VERBOSE) {
        for (const r of reports) {
          const stages = r.stages.map((s) => {
            const gaps = `iou-gap ${s.maxIouGap.toExponential(2)} score-diff ${s.maxScoreDiff.toExponential(2)}`;
            return `${s.stage} ${s.matched}/${s.expected} (ts ${s.produced}) ${gaps}${s.slivers ? ` slivers ${s.slivers}` : ''}`;
          });
          process.stdout.write(`${path.basename(modelDir)} ${r.file}: ${stages.join(' | ')}\n`);
        }
      }
    });

    const reference = fs.existsSync(path.join(modelDir, 'reference.json'))
      ? readReference(modelDir)
      : { images: [{ file: '(reference.json missing)' }] };

    it.each(reference.images.map((image) => [image.file, image] as const))(
      '%s: decode, transform, proposals and detections agree',
      async (_, image) => {
        expect('proposals' in image).toBe(true);
        const report = await compareImage(detector, modelDir, image as Parameters<typeof compareImage>[2]);
        reports.push(report);
        expect(describeProblems([report])).toEqual([]);
        expect(report.stages.find((s) => s.stage === 'detections')?.expected).toBeGreaterThan(0);
      },
    );
  });
}
