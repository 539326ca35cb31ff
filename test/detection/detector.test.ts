/** End to end through the public entry point: real image files in, detections out. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Detector } from '../../src/detection/detector';
import { unknownClassMessage } from '../../src/detection/classes';
import { DetectError } from '../../src/detection/errors';
import { MAX_DETECTIONS_LIMIT } from '../../src/detection/limits';
import type { DetectionResult } from '../../src/detection/types';
import { fixtureModel } from '../helpers/fixture-models';
import { badInputs, readImage } from './images';

const IMAGES = ['portrait.jpg', 'landscape.jpg', 'tiny.png', 'grayscale.png', 'alpha.png', 'exif-rotated.jpg', 'rocket.webp', 'hubble.gif'];

async function detectError(promise: Promise<unknown>): Promise<DetectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DetectError);
  return error as DetectError;
}

describe('Detector (tiny-fpn fixture model)', () => {
  let detector: Detector;
  const baseline = new Map<string, DetectionResult>();

  beforeAll(async () => {
    detector = await Detector.load(fixtureModel('tiny-fpn'), { intraOpThreads: 1 });
    for (const name of IMAGES) baseline.set(name, await detector.detect(readImage(name)));
  });

  afterAll(async () => {
    await detector?.close();
  });

  it('exposes the parsed model.json', () => {
    const json = JSON.parse(fs.readFileSync(path.join(fixtureModel('tiny-fpn'), 'model.json'), 'utf8')) as {
      name: string;
      classes: string[];
    };
    expect(detector.model.name).toBe(json.name);
    expect(detector.model.classes).toEqual(json.classes);
    expect(detector.modelDir).toBe(fixtureModel('tiny-fpn'));
  });

  it.each(IMAGES)('%s: detections in original pixels, best first, labelled from the model, timed per stage', (name) => {
    const result = baseline.get(name) as DetectionResult;
    expect(result.detections.length).toBeGreaterThan(0);
    expect(result.detections.length).toBeLessThanOrEqual(detector.model.roi_heads.detections_per_img);
    result.detections.forEach((d, i) => {
      if (i > 0) expect(d.score).toBeLessThanOrEqual(result.detections[i - 1]!.score);
      expect(d.score).toBeGreaterThan(detector.model.roi_heads.score_thresh);
      expect(d.label).toBe(detector.model.classes[d.class_id]);
      expect(d.class_id).toBeGreaterThan(0);
      expect(0 <= d.box.xmin && d.box.xmin <= d.box.xmax && d.box.xmax <= result.width).toBe(true);
      expect(0 <= d.box.ymin && d.box.ymin <= d.box.ymax && d.box.ymax <= result.height).toBe(true);
    });
    const t = result.timings_ms;
    const stages = [t.decode, t.transform, t.backbone_rpn, t.rpn_postprocess, t.box_head, t.postprocess];
    for (const ms of stages) expect(ms).toBeGreaterThanOrEqual(0);
    expect(t.total).toBeGreaterThanOrEqual(Math.max(...stages));
  });

  it.each([
    ['a 1x1 image', { width: 1, height: 1 }],
    ['a uniform grey image', { width: 320, height: 240 }],
    ['an extreme aspect ratio (1x3000)', { width: 1, height: 3000 }],
  ])('handles %s: a valid result, boxes inside the image', async (_, size) => {
    const bytes = await sharp({ create: { ...size, channels: 3, background: { r: 128, g: 128, b: 128 } } })
      .png()
      .toBuffer();
    const result = await detector.detect(bytes);
    expect([result.width, result.height]).toEqual([size.width, size.height]);
    for (const d of result.detections) {
      expect(d.box.xmin >= 0 && d.box.xmax <= size.width && d.box.ymin >= 0 && d.box.ymax <= size.height).toBe(true);
    }
  });

  it('is deterministic', async () => {
    expect(await detector.detect(readImage('portrait.jpg'))).toMatchObject({ detections: baseline.get('portrait.jpg')?.detections });
  });

  it('scoreThreshold, maxDetections and classes select from the default result', async () => {
    const all = (baseline.get('landscape.jpg') as DetectionResult).detections;
    const threshold = all[Math.floor(all.length / 2)]!.score;
    const high = await detector.detect(readImage('landscape.jpg'), { scoreThreshold: threshold });
    expect(high.detections).toEqual(all.filter((d) => d.score >= Math.fround(threshold)));
    const top2 = await detector.detect(readImage('landscape.jpg'), { maxDetections: 2 });
    expect(top2.detections).toEqual(all.slice(0, 2));
    const label = all[0]!.label;
    const byLabel = await detector.detect(readImage('landscape.jpg'), { classes: [label] });
    expect(byLabel.detections).toEqual(all.filter((d) => d.label === label));
    const byId = await detector.detect(readImage('landscape.jpg'), { classes: [all[0]!.class_id] });
    expect(byId.detections).toEqual(byLabel.detections);
    const byIdText = await detector.detect(readImage('landscape.jpg'), { classes: [String(all[0]!.class_id)] });
    expect(byIdText.detections).toEqual(byLabel.detections);
  });

  it('accepts maxDetections up to MAX_DETECTIONS_LIMIT and words a bad option "NAME must be EXPECTED, got ACTUAL"', async () => {
    await detector.detect(readImage('tiny.png'), { maxDetections: MAX_DETECTIONS_LIMIT });
    const tooMany = await detectError(detector.detect(readImage('tiny.png'), { maxDetections: MAX_DETECTIONS_LIMIT + 1 }));
    expect(tooMany).toMatchObject({
      code: 'INVALID_OPTION',
      message: `maxDetections must be an integer in [1, ${MAX_DETECTIONS_LIMIT}], got ${MAX_DETECTIONS_LIMIT + 1}`,
    });
    const unknown = await detectError(detector.detect(readImage('tiny.png'), { classes: ['no-such-class'] }));
    expect(unknown.message).toBe(`classes: ${unknownClassMessage(detector.model.classes, 'no-such-class')}`);
  });

  it.each([
    ['scoreThreshold 1.5', { scoreThreshold: 1.5 }],
    ['scoreThreshold NaN', { scoreThreshold: NaN }],
    ['maxDetections 0', { maxDetections: 0 }],
    ['maxDetections 2.5', { maxDetections: 2.5 }],
    ['an unknown class', { classes: ['no-such-class'] }],
    ['the background class', { classes: [0] }],
  ])('rejects %s with INVALID_OPTION', async (_, options) => {
    expect((await detectError(detector.detect(readImage('tiny.png'), options))).code).toBe('INVALID_OPTION');
  });

  it('rejects every kind of bad image with its typed error and keeps working', async () => {
    for (const bad of badInputs()) {
      expect((await detectError(detector.detect(bad.bytes))).code).toBe(bad.code);
    }
    expect(
      (
        await detectError(
          Detector.load(fixtureModel('tiny-fpn'), { maxPixels: 100 }).then((d) => d.detect(readImage('tiny.png')).finally(() => d.close())),
        )
      ).code,
    ).toBe('IMAGE_TOO_LARGE');
    expect((await detector.detect(readImage('portrait.jpg'))).detections).toEqual(baseline.get('portrait.jpg')?.detections);
  });

  it('gives every concurrent caller its own, correct result', async () => {
    const names = ['portrait.jpg', 'tiny.png', 'landscape.jpg', 'hubble.gif', 'portrait.jpg'];
    const results = await Promise.all(names.map((name) => detector.detect(readImage(name))));
    results.forEach((result, i) => {
      expect(result.detections).toEqual(baseline.get(names[i] ?? '')?.detections);
    });
  });

  it('stops with ABORTED when the signal is aborted, before or during the request, and keeps working', async () => {
    const aborted = new AbortController();
    aborted.abort(new Error('client went away'));
    expect((await detectError(detector.detect(readImage('tiny.png'), { signal: aborted.signal }))).code).toBe('ABORTED');
    const during = new AbortController();
    const pending = detector.detect(readImage('landscape.jpg'), { signal: during.signal });
    setImmediate(() => during.abort());
    expect((await detectError(pending)).code).toBe('ABORTED');
    expect((await detector.detect(readImage('tiny.png'))).detections).toEqual(baseline.get('tiny.png')?.detections);
  });
});

describe('Detector session options', () => {
  it('change speed and memory, not results', async () => {
    const reference = await Detector.load(fixtureModel('tiny-fpn'), { intraOpThreads: 1 });
    const tuned = await Detector.load(fixtureModel('tiny-fpn'), {
      intraOpThreads: 2,
      session: { enableCpuMemArena: true, arenaShrinkage: true, enableMemPattern: true, intraOpSpinning: true, executionMode: 'parallel' },
    });
    try {
      for (const name of ['portrait.jpg', 'hubble.gif']) {
        const a = await reference.detect(readImage(name));
        const b = await tuned.detect(readImage(name));
        expect(b.detections.map((d) => d.label)).toEqual(a.detections.map((d) => d.label));
        b.detections.forEach((d, i) => {
          expect(Math.abs(d.score - a.detections[i]!.score)).toBeLessThan(1e-4);
          expect(Math.abs(d.box.xmin - a.detections[i]!.box.xmin)).toBeLessThan(1e-2);
        });
      }
    } finally {
      await Promise.all([reference.close(), tuned.close()]);
    }
  });
});

describe('Detector lifecycle', () => {
  it('close() lets calls in flight finish, then refuses new ones with DETECTOR_CLOSED', async () => {
    const detector = await Detector.load(fixtureModel('tiny-fpn'), { intraOpThreads: 1 });
    const inFlight = detector.detect(readImage('tiny.png'));
    await detector.close();
    expect((await inFlight).detections.length).toBeGreaterThan(0);
    expect((await detectError(detector.detect(readImage('tiny.png')))).code).toBe('DETECTOR_CLOSED');
    await detector.close();
  });
});

describe('Detector (tiny-c4 fixture model: one feature map, no FPN)', () => {
  it('detects on a real photograph', async () => {
    const detector = await Detector.load(fixtureModel('tiny-c4'), { intraOpThreads: 1 });
    try {
      expect(detector.model.roi_heads.featmap_names).toHaveLength(1);
      const result = await detector.detect(readImage('portrait.jpg'));
      expect([result.width, result.height]).toEqual([384, 512]);
      expect(result.detections.length).toBeGreaterThan(0);
    } finally {
      await detector.close();
    }
  });
});
