/**
 * DetectorOptions.fastResize / decodeImageResized: resizing while decoding (libvips, JPEG shrink-on-load).
 * Approximate by design, so these tests pin what it promises instead of bits: the exact target size and the
 * original (oriented) size, boxes in original pixels, the same detections as the exact path up to small
 * box and score changes, bit-for-bit the exact path when no shrinking is needed, and decodeImage's errors.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Detector } from '../../src/detection/detector';
import { DetectError } from '../../src/detection/errors';
import { decodeImage, decodeImageResized } from '../../src/detection/image';
import type { Detection } from '../../src/detection/types';
import { badInputs, readImage } from './images';

const SHAPES = path.join(__dirname, '..', '..', 'datasets', 'shapes-test', 'images');

function iou(a: Detection['box'], b: Detection['box']): number {
  const w = Math.max(0, Math.min(a.xmax, b.xmax) - Math.max(a.xmin, b.xmin));
  const h = Math.max(0, Math.min(a.ymax, b.ymax) - Math.max(a.ymin, b.ymin));
  const area = (d: Detection['box']): number => (d.xmax - d.xmin) * (d.ymax - d.ymin);
  return (w * h) / (area(a) + area(b) - w * h);
}

describe('decodeImageResized', () => {
  it('decodes straight to the target size and reports the oriented original size', async () => {
    for (const name of ['landscape.jpg', 'portrait.jpg', 'exif-rotated.jpg', 'rocket.webp']) {
      const exact = await decodeImage(readImage(name));
      const target = { width: Math.floor(exact.width / 3), height: Math.floor(exact.height / 3) };
      const seen: Array<{ width: number; height: number }> = [];
      const { image, original } = await decodeImageResized(readImage(name), (size) => {
        seen.push(size);
        return target;
      });
      expect(original).toEqual({ width: exact.width, height: exact.height });
      expect(seen).toEqual([original]);
      expect([image.width, image.height, image.data.length]).toEqual([target.width, target.height, target.width * target.height * 3]);
      // The same picture: mean difference from an exact-area shrink of the exact decode is small.
      const reference = await sharp(Buffer.from(exact.data), { raw: { width: exact.width, height: exact.height, channels: 3 } })
        .resize(target.width, target.height, { fit: 'fill', kernel: 'cubic' })
        .raw()
        .toBuffer();
      let sum = 0;
      for (let i = 0; i < reference.length; i++) sum += Math.abs(reference[i]! - image.data[i]!);
      expect(sum / reference.length).toBeLessThan(6);
    }
  });

  it('an image not larger than the target is decoded as decodeImage decodes it', async () => {
    const exact = await decodeImage(readImage('landscape.jpg'));
    const { image, original } = await decodeImageResized(readImage('landscape.jpg'), (size) => size);
    expect(original).toEqual({ width: 600, height: 400 });
    expect(Buffer.from(image.data).equals(Buffer.from(exact.data))).toBe(true);
  });

  it('fails like decodeImage on bad input', async () => {
    for (const bad of badInputs()) {
      const error = await decodeImageResized(bad.bytes, () => ({ width: 1, height: 1 })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DetectError);
      expect((error as DetectError).code).toBe(bad.code);
    }
  });
});

describe('Detector with fastResize (default model)', () => {
  let exact: Detector;
  let fast: Detector;

  beforeAll(async () => {
    exact = await Detector.load(undefined, { intraOpThreads: 1 });
    fast = await Detector.load(undefined, { intraOpThreads: 1, fastResize: true });
  });

  afterAll(async () => {
    await exact?.close();
    await fast?.close();
  });

  it('on a large photo: the same objects, boxes in original pixels, small changes only', async () => {
    const large = await sharp(path.join(SHAPES, 'test_000000.jpg'))
      .resize(1216, 1216, { kernel: 'lanczos3' })
      .jpeg({ quality: 90 })
      .toBuffer();
    const a = await exact.detect(large, { scoreThreshold: 0.5 });
    const b = await fast.detect(large, { scoreThreshold: 0.5 });
    expect([b.width, b.height]).toEqual([1216, 1216]);
    expect(a.detections.length).toBeGreaterThan(2);
    for (const d of a.detections.filter((x) => x.score > 0.9)) {
      const twin = b.detections.find((e) => e.label === d.label && iou(e.box, d.box) > 0.9);
      expect(twin).toBeDefined();
      expect(Math.abs((twin as Detection).score - d.score)).toBeLessThan(0.05);
    }
  });

  it('on an image the model takes at its own size: bit for bit the exact path', async () => {
    const bytes = fs.readFileSync(path.join(SHAPES, 'test_000001.jpg'));
    expect((await fast.detect(bytes)).detections).toEqual((await exact.detect(bytes)).detections);
  });
});
