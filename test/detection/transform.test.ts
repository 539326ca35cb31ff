import {
  axisSampling,
  imageGeometry,
  paddedSize,
  resizeBoxes,
  resizedSize,
  transformImage,
  type TransformConfig,
} from '../../src/detection/transform';
import { float32FromBase64, readTorchvisionFixture, unequalIndices } from './hash-values';

interface TransformFixture {
  photo: string;
  cases: Array<{
    width: number;
    height: number;
    min_size: number;
    max_size: number;
    image_mean: [number, number, number];
    image_std: [number, number, number];
    size_divisible: number;
    pixels: string;
    resized: [number, number];
    padded: [number, number];
    tensor: string;
  }>;
  sizes_800_1333: Array<{ width: number; height: number; resized: [number, number]; padded: [number, number] }>;
}

const fixture = readTorchvisionFixture<TransformFixture>('transform.json');

describe('resizedSize / paddedSize (GeneralizedRCNNTransform, min_size 800, max_size 1333)', () => {
  it.each(fixture.sizes_800_1333.map((s) => [`${s.width}x${s.height}`, s] as const))('%s matches torchvision', (_, s) => {
    const resized = resizedSize({ width: s.width, height: s.height }, 800, 1333);
    expect([resized.width, resized.height]).toEqual(s.resized);
    const padded = paddedSize(resized, 32);
    expect([padded.width, padded.height]).toEqual(s.padded);
  });

  it('keeps a side that would round to 0 pixels at 1 (torchvision raises on such aspect ratios)', () => {
    // torch computes 1332 x 0 for this image and then refuses it.
    expect(resizedSize({ width: 1, height: 5000 }, 800, 1333)).toEqual({ width: 1, height: 1333 });
  });
});

describe('transformImage (normalize, bilinear resize, pad) on patches of a real photo', () => {
  it.each(fixture.cases.map((c) => [`${c.width}x${c.height} -> ${c.resized.join('x')}`, c] as const))(
    '%s equals torchvision GeneralizedRCNNTransform bit for bit',
    (_, c) => {
      const config: TransformConfig = {
        minSize: c.min_size,
        maxSize: c.max_size,
        imageMean: c.image_mean,
        imageStd: c.image_std,
        sizeDivisible: c.size_divisible,
      };
      const image = { data: new Uint8Array(Buffer.from(c.pixels, 'base64')), width: c.width, height: c.height };
      const { tensor, geometry } = transformImage(image, config);
      expect([geometry.resized.width, geometry.resized.height]).toEqual(c.resized);
      expect([geometry.padded.width, geometry.padded.height]).toEqual(c.padded);
      const expected = float32FromBase64(c.tensor);
      expect(tensor.length).toBe(expected.length);
      expect(unequalIndices(tensor, expected)).toEqual([]);
    },
  );

  it('zero-fills the padding and copies an axis whose size does not change', () => {
    const config: TransformConfig = { minSize: 2, maxSize: 100, imageMean: [0, 0, 0], imageStd: [1, 1, 1], sizeDivisible: 4 };
    const image = { data: new Uint8Array([255, 0, 51, 0, 255, 102, 0, 0, 0, 255, 255, 255, 10, 20, 30, 40, 50, 60]), width: 3, height: 2 };
    const { tensor, geometry } = transformImage(image, config);
    expect(geometry).toEqual({ original: { width: 3, height: 2 }, resized: { width: 3, height: 2 }, padded: { width: 4, height: 4 } });
    const red = Array.from(tensor.subarray(0, 16)).map((v) => Math.round(v * 255));
    expect(red).toEqual([255, 0, 0, 0, 255, 10, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('refuses pixel data that is not width x height RGB, naming it (INVALID_OPTION)', () => {
    const config: TransformConfig = { minSize: 2, maxSize: 100, imageMean: [0, 0, 0], imageStd: [1, 1, 1], sizeDivisible: 4 };
    expect(() => transformImage({ data: new Uint8Array(17), width: 3, height: 2 }, config)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: 'image.data must hold 6 x 3 = 18 values, got 17' }),
    );
  });
});

describe('axisSampling', () => {
  it('downscaling by 2 samples between pixel pairs with equal weights', () => {
    const s = axisSampling(8, 4);
    expect(Array.from(s.index0)).toEqual([0, 2, 4, 6]);
    expect(Array.from(s.index1)).toEqual([1, 3, 5, 7]);
    expect(Array.from(s.lambda1)).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('upscaling clamps the first source index at 0 and repeats the last pixel', () => {
    const s = axisSampling(2, 4);
    expect(Array.from(s.index0)).toEqual([0, 0, 0, 1]);
    expect(Array.from(s.index1)).toEqual([1, 1, 1, 1]);
    expect(Array.from(s.lambda1)).toEqual([0, 0.25, 0.75, 0.25]);
  });
});

describe('resizeBoxes', () => {
  it('scales x by the width ratio and y by the height ratio, float32', () => {
    const boxes = new Float32Array([10, 20, 30, 40]);
    resizeBoxes(boxes, { width: 100, height: 50 }, { width: 50, height: 100 });
    expect(Array.from(boxes)).toEqual([5, 40, 15, 80]);
    const third = resizeBoxes(new Float32Array([3, 3, 3, 3]), { width: 3, height: 3 }, { width: 1, height: 1 });
    expect(third[0]).toBe(Math.fround(3 * Math.fround(1 / 3)));
  });

  it('maps the resized image frame back onto the original frame', () => {
    const geometry = imageGeometry(
      { width: 333, height: 500 },
      { minSize: 800, maxSize: 1333, imageMean: [0, 0, 0], imageStd: [1, 1, 1], sizeDivisible: 32 },
    );
    const frame = new Float32Array([0, 0, geometry.resized.width, geometry.resized.height]);
    resizeBoxes(frame, geometry.resized, geometry.original);
    expect(Array.from(frame)).toEqual([0, 0, 333, 500]);
  });
});
