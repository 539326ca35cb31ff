/**
 * The shipped int8 twin loads and runs through the unchanged pipeline, and finds what the fp32 model
 * finds, within the bounds its export checked (model.json calibration.self_check.bounds).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Detector } from '../../src/detection/detector';
import type { Box, Detection } from '../../src/detection/types';

const MODELS = path.resolve(__dirname, '..', '..', 'models');
const FP32 = path.join(MODELS, 'shapes-cpwc-r50-fpn');
const INT8 = path.join(MODELS, 'shapes-cpwc-r50-fpn-int8');
const IMAGES = path.resolve(__dirname, '..', '..', 'datasets', 'shapes-test', 'images');

interface Bounds {
  min_score: number;
  min_iou: number;
  max_score_delta: number;
}

function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a.xmax, b.xmax) - Math.max(a.xmin, b.xmin));
  const h = Math.max(0, Math.min(a.ymax, b.ymax) - Math.max(a.ymin, b.ymin));
  const inter = w * h;
  const union = (a.xmax - a.xmin) * (a.ymax - a.ymin) + (b.xmax - b.xmin) * (b.ymax - b.ymin) - inter;
  return union > 0 ? inter / union : 0;
}

/** Confident detections of `reference` with no counterpart in `candidate` within `bounds`. */
function unmatched(reference: Detection[], candidate: Detection[], bounds: Bounds): Detection[] {
  return reference.filter(
    (d) =>
      d.score >= bounds.min_score &&
      !candidate.some(
        (c) => c.class_id === d.class_id && Math.abs(c.score - d.score) <= bounds.max_score_delta && iou(c.box, d.box) >= bounds.min_iou,
      ),
  );
}

describe('models/shapes-cpwc-r50-fpn-int8', () => {
  let fp32: Detector;
  let int8: Detector;
  const manifest = JSON.parse(fs.readFileSync(path.join(INT8, 'model.json'), 'utf8')) as {
    precision: string;
    calibration: { self_check: { image: string; bounds: Bounds } };
  };
  const bounds = manifest.calibration.self_check.bounds;

  beforeAll(async () => {
    fp32 = await Detector.load(FP32, { intraOpThreads: 1 });
    int8 = await Detector.load(INT8, { intraOpThreads: 1 });
  });

  afterAll(async () => {
    await fp32?.close();
    await int8?.close();
  });

  it('is an int8 model directory the pipeline loads unchanged', () => {
    expect(manifest.precision).toBe('int8');
    expect(int8.model.classes).toEqual(fp32.model.classes);
  });

  // Images the int8 calibration never saw (it used the generated `calib` split).
  it.each(['test_000000.jpg', 'test_000001.jpg', 'test_000002.jpg', 'test_000024.png'])('finds what fp32 finds on %s', async (name) => {
    const bytes = fs.readFileSync(path.join(IMAGES, name));
    const a = (await fp32.detect(bytes)).detections;
    const b = (await int8.detect(bytes)).detections;
    expect(a.filter((d) => d.score >= bounds.min_score).length).toBeGreaterThan(0);
    expect(unmatched(a, b, bounds)).toEqual([]);
    expect(unmatched(b, a, bounds)).toEqual([]);
  });
});
