/**
 * nms() compares a kept box only with boxes whose x1 lies in a window around its own (src/detection/nms.ts,
 * greedySwept). That must not change a single kept index: here it is compared with the every-pair form
 * (itself pinned to torchvision by nms.test.ts) on boxes built to sit at the edge of the window and of the
 * threshold, on degenerate boxes, on tied scores, and on the RPN proposals of a real image.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Detector } from '../../src/detection/detector';
import { decodeImage } from '../../src/detection/image';
import { nms, nmsAllPairs } from '../../src/detection/nms';
import { hash24, hashArray, hashBoxes } from './hash-values';
import { IMAGES_DIR } from './images';

const { fround } = Math;

/** Pairs of boxes whose x-IoU (and IoU) is within a few float32 steps of `t`, around random anchors. */
function nearThresholdBoxes(count: number, salt: number, t: number): Float32Array {
  const boxes = new Float32Array(count * 4);
  for (let i = 0; i < count; i += 2) {
    const x = (hash24(i, salt) % 4000) / 10;
    const y = (hash24(i, salt + 1) % 4000) / 10;
    const w = 1 + (hash24(i, salt + 2) % 2000) / 10;
    const h = 1 + (hash24(i, salt + 3) % 2000) / 10;
    boxes.set([x, y, x + w, y + h], i * 4);
    if (i + 1 >= count) break;
    // Same y extent, shifted in x so that IoU = (w - d) / (w + d) is t, nudged by a few ulps either way.
    const d = (w * (1 - t)) / (1 + t);
    const nudge = ((hash24(i, salt + 4) % 9) - 4) * 2 ** -20 * w;
    const mode = hash24(i, salt + 5) % 3;
    if (mode === 0) boxes.set([x + d + nudge, y, x + w + d + nudge, y + h], (i + 1) * 4);
    else if (mode === 1) boxes.set([x - d - nudge, y, x + w - d - nudge, y + h], (i + 1) * 4);
    else {
      // Narrower box inside: IoU = w2 / w = t.
      const w2 = fround(w * t + nudge);
      boxes.set([x, y, x + w2, y + h], (i + 1) * 4);
    }
  }
  return boxes;
}

function expectSame(boxes: Float32Array, scores: Float32Array, t: number, maxKeep?: number): number {
  const swept = Array.from(nms(boxes, scores, t, undefined, maxKeep));
  const reference = Array.from(nmsAllPairs(boxes, scores, t, undefined, maxKeep));
  expect(swept).toEqual(reference);
  return reference.length;
}

describe('nms: the x1 window keeps exactly the every-pair result', () => {
  it.each([0.05, 0.3, 0.5, 0.7, 0.9, 0.99])('boxes on the edge of IoU %s', (t) => {
    for (let salt = 1; salt <= 20; salt++) {
      const boxes = nearThresholdBoxes(400, salt * 31, t);
      const kept = expectSame(boxes, hashArray(400, salt * 37, 0, 1), t);
      // The case is not vacuous: some pairs suppress, some do not.
      expect(kept).toBeGreaterThan(50);
      expect(kept).toBeLessThan(400);
    }
  });

  it('random boxes of many sizes, thresholds and maxKeep; tied scores keep input order', () => {
    for (let salt = 1; salt <= 30; salt++) {
      const count = 64 + ((salt * 97) % 1500);
      const boxes = hashBoxes(count, salt, 500 + salt * 20, 10 + salt * 15);
      let scores = hashArray(count, salt + 1000, 0, 1);
      if (salt % 3 === 0) scores = scores.map((s) => Math.floor(s * 8) / 8);
      const t = [0.05, 0.5, 0.7, 0.3][salt % 4]!;
      expectSame(boxes, scores, t, salt % 5 === 0 ? 50 : undefined);
    }
  });

  it('degenerate boxes (zero and negative widths and heights, identical boxes) and non-finite ones', () => {
    const count = 300;
    const boxes = hashBoxes(count, 77, 300, 80);
    for (let i = 0; i < count; i += 7) boxes[i * 4 + 2] = boxes[i * 4]!; // zero width
    for (let i = 3; i < count; i += 11) boxes[i * 4 + 3] = boxes[i * 4 + 1]! - 5; // negative height
    for (let i = 5; i < count; i += 13) boxes.copyWithin(i * 4, (i - 1) * 4, i * 4); // a twin of the previous box
    const scores = hashArray(count, 78, 0, 1);
    expectSame(boxes, scores, 0.5);
    boxes[40] = Number.NaN;
    boxes[81] = Number.POSITIVE_INFINITY;
    expectSame(boxes, scores, 0.5);
  });

  it('the RPN proposals and detections of a real image are unchanged', async () => {
    const detector = await Detector.load(undefined, { intraOpThreads: 1 });
    try {
      const image = await decodeImage(fs.readFileSync(path.join(IMAGES_DIR, 'landscape.jpg')));
      const run = await detector.run(image, { scoreThreshold: 0 });
      // Re-run NMS over the proposals with the every-pair form: the proposals are already an NMS result.
      const boxes = run.proposals;
      const scores = Float32Array.from({ length: boxes.length / 4 }, (_, i) => 1 - i / (boxes.length / 4));
      expect(boxes.length / 4).toBeGreaterThan(500);
      expect(Array.from(nms(boxes, scores, 0.7))).toEqual(Array.from(nmsAllPairs(boxes, scores, 0.7)));
      expect(Array.from(nms(boxes, scores, 0.5))).toEqual(Array.from(nmsAllPairs(boxes, scores, 0.5)));
    } finally {
      await detector.close();
    }
  });
});
