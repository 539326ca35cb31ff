/**
 * The BMP decoder against Pillow, pixel for pixel: on the BMPs Pillow writes (modes 1, L, P, RGB,
 * RGBA) and on hand-built ones of the variants it does not write (bmp-writer.ts), all made from a
 * real photograph. Then the same image through Detector.detect as BMP and as PNG.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Detector } from '../../src/detection/detector';
import { DetectError } from '../../src/detection/errors';
import { decodeImage, decodeImageResized } from '../../src/detection/image';
import { fixtureModel } from '../helpers/fixture-models';
import { runPython } from '../helpers/python';
import { type BmpSpec, writeBmp } from './bmp-writer';
import { IMAGES_DIR, readImage } from './images';

const WIDTH = 61;
const HEIGHT = 37;
const HELPER = path.join(__dirname, '..', 'helpers', 'pillow_bmp.py');

let dir: string;
let pillow: Record<string, [number, number] | string>;
let source: { rgb: Uint8Array; p16: [Uint8Array, Uint8Array]; p256: [Uint8Array, Uint8Array]; bw: Uint8Array };

/** The variants Pillow does not write, from the same photograph. */
function handBuilt(): Record<string, BmpSpec> {
  const size = { width: WIDTH, height: HEIGHT };
  const [pal16, idx16] = source.p16;
  const [pal256, idx256] = source.p256;
  const bw = { palette: Uint8Array.of(0, 0, 0, 255, 255, 255), indices: source.bw };
  const rgb = source.rgb;
  return {
    'hand-1bit.bmp': { ...size, bitsPerPixel: 1, ...bw },
    'hand-1bit-topdown.bmp': { ...size, bitsPerPixel: 1, ...bw, topDown: true },
    'hand-4bit.bmp': { ...size, bitsPerPixel: 4, palette: pal16, indices: idx16 },
    'hand-8bit.bmp': { ...size, bitsPerPixel: 8, palette: pal256, indices: idx256 },
    'hand-8bit-topdown.bmp': { ...size, bitsPerPixel: 8, palette: pal256, indices: idx256, topDown: true },
    'hand-8bit-core.bmp': { ...size, bitsPerPixel: 8, palette: pal256, indices: idx256, headerSize: 12 },
    'hand-rle8.bmp': { ...size, bitsPerPixel: 8, palette: pal256, indices: idx256, compression: 'rle8' },
    'hand-rle4.bmp': { ...size, bitsPerPixel: 4, palette: pal16, indices: idx16, compression: 'rle4' },
    'hand-16-555.bmp': { ...size, bitsPerPixel: 16, rgb },
    'hand-16-565-bitfields.bmp': { ...size, bitsPerPixel: 16, rgb, compression: 'bitfields', masks: [0xf800, 0x07e0, 0x001f, 0] },
    'hand-16-565-v3.bmp': { ...size, bitsPerPixel: 16, rgb, compression: 'bitfields', masks: [0xf800, 0x07e0, 0x001f, 0], headerSize: 56 },
    'hand-24-topdown.bmp': { ...size, bitsPerPixel: 24, rgb, topDown: true },
    'hand-24-core.bmp': { ...size, bitsPerPixel: 24, rgb, headerSize: 12 },
    'hand-32-bgrx.bmp': { ...size, bitsPerPixel: 32, rgb },
    'hand-32-bitfields-v5.bmp': {
      ...size,
      bitsPerPixel: 32,
      rgb,
      compression: 'bitfields',
      masks: [0xff0000, 0xff00, 0xff, 0xff000000],
      headerSize: 124,
    },
    'hand-32-rgba-v4.bmp': {
      ...size,
      bitsPerPixel: 32,
      rgb,
      compression: 'bitfields',
      masks: [0xff, 0xff00, 0xff0000, 0xff000000],
      headerSize: 108,
      topDown: true,
    },
    'hand-32-alphabitfields.bmp': {
      ...size,
      bitsPerPixel: 32,
      rgb,
      compression: 'alphabitfields',
      masks: [0xff0000, 0xff00, 0xff, 0xff000000],
    },
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cpwc-bmp-'));
  const made = await runPython([HELPER, 'source', path.join(IMAGES_DIR, 'landscape.jpg'), dir, '--size', `${WIDTH}x${HEIGHT}`]);
  if (made.code !== 0) throw new Error(`pillow_bmp.py source failed: ${made.output}`);
  const read = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(dir, name)));
  source = {
    rgb: read('rgb.raw'),
    p16: [read('p16.pal'), read('p16.idx')],
    p256: [read('p256.pal'), read('p256.idx')],
    bw: read('bw.idx'),
  };
  for (const [name, spec] of Object.entries(handBuilt())) fs.writeFileSync(path.join(dir, name), writeBmp(spec));
  const decoded = await runPython([HELPER, 'decode', dir]);
  if (decoded.code !== 0) throw new Error(`pillow_bmp.py decode failed: ${decoded.output}`);
  pillow = JSON.parse(decoded.output) as typeof pillow;
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('decodeImage on BMP: pixel-exact with Pillow', () => {
  const names = [
    ...['1', 'L', 'P', 'RGB', 'RGBA'].map((mode) => `pillow-${mode}.bmp`),
    'hand-1bit.bmp',
    'hand-1bit-topdown.bmp',
    'hand-4bit.bmp',
    'hand-8bit.bmp',
    'hand-8bit-topdown.bmp',
    'hand-8bit-core.bmp',
    'hand-rle8.bmp',
    'hand-rle4.bmp',
    'hand-16-555.bmp',
    'hand-16-565-bitfields.bmp',
    'hand-16-565-v3.bmp',
    'hand-24-topdown.bmp',
    'hand-24-core.bmp',
    'hand-32-bgrx.bmp',
    'hand-32-bitfields-v5.bmp',
    'hand-32-rgba-v4.bmp',
  ];

  it.each(names)('%s', async (name) => {
    expect(pillow[name]).toEqual([WIDTH, HEIGHT]);
    const image = await decodeImage(fs.readFileSync(path.join(dir, name)));
    expect([image.width, image.height]).toEqual([WIDTH, HEIGHT]);
    const expected = new Uint8Array(fs.readFileSync(path.join(dir, name.replace(/\.bmp$/, '.rgb'))));
    expect(Buffer.from(image.data).equals(Buffer.from(expected))).toBe(true);
  });

  it('Pillow does not read BI_ALPHABITFIELDS (compression 6); we do, and it holds the source pixels', async () => {
    expect(pillow['hand-32-alphabitfields.bmp']).toBe('OSError: Unsupported BMP compression (6)');
    const image = await decodeImage(fs.readFileSync(path.join(dir, 'hand-32-alphabitfields.bmp')));
    expect(Buffer.from(image.data).equals(Buffer.from(source.rgb))).toBe(true);
  });

  it('the 24- and 32-bit and palette BMPs hold exactly the source pixels', async () => {
    for (const name of ['hand-24-topdown.bmp', 'hand-24-core.bmp', 'hand-32-bgrx.bmp', 'hand-32-rgba-v4.bmp', 'pillow-RGB.bmp']) {
      const image = await decodeImage(fs.readFileSync(path.join(dir, name)));
      expect(Buffer.from(image.data).equals(Buffer.from(source.rgb))).toBe(true);
    }
    const [palette, indices] = source.p256;
    const image = await decodeImage(fs.readFileSync(path.join(dir, 'hand-rle8.bmp')));
    const expected = new Uint8Array(indices.length * 3);
    indices.forEach((index, p) => {
      expected.set(palette.subarray(index * 3, index * 3 + 3), p * 3);
    });
    expect(Buffer.from(image.data).equals(Buffer.from(expected))).toBe(true);
  });
});

describe('RLE escapes', () => {
  // 4x3 RLE8, palette 0 black, 1 red, 2 green, 3 blue; rows bottom-up
  const palette = Uint8Array.of(0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255);
  const rle = (data: number[], height = 3): Buffer =>
    writeBmp({ width: 4, height, bitsPerPixel: 8, compression: 'rle8', palette, rleData: Uint8Array.from(data) });
  const rows = async (bytes: Buffer): Promise<number[][]> => {
    const image = await decodeImage(bytes);
    const colors: number[][] = [];
    for (let y = 0; y < image.height; y++) {
      const row: number[] = [];
      for (let x = 0; x < image.width; x++) {
        const [r, g, b] = image.data.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
        row.push(r ? 1 : g ? 2 : b ? 3 : 0);
      }
      colors.push(row);
    }
    return colors;
  };

  it('delta, early end of line and end of bitmap leave palette index 0', async () => {
    // bottom row: 1 1 then end of line; middle: delta (2, 0) then 3 3; top row: end of bitmap
    expect(await rows(rle([2, 1, 0, 0, 0, 2, 2, 0, 2, 3, 0, 0, 0, 1]))).toEqual([
      [0, 0, 0, 0],
      [0, 0, 3, 3],
      [1, 1, 0, 0],
    ]);
  });

  it('an absolute run of odd length is padded to a 16-bit boundary', async () => {
    expect(await rows(rle([0, 3, 1, 2, 3, 0, 1, 2, 0, 0, 4, 3, 0, 0, 4, 2, 0, 1]))).toEqual([
      [2, 2, 2, 2],
      [3, 3, 3, 3],
      [1, 2, 3, 2],
    ]);
  });

  it('RLE data that ends before the end-of-bitmap marker is truncated', async () => {
    await expect(decodeImage(rle([4, 1, 0, 0, 4, 2]))).rejects.toMatchObject({
      code: 'IMAGE_DECODE_FAILED',
      message: expect.stringContaining('before the end-of-bitmap marker') as string,
    });
  });
});

describe('decodeImage on bad BMPs', () => {
  const photo = (): Buffer => writeBmp({ width: WIDTH, height: HEIGHT, bitsPerPixel: 24, rgb: source.rgb });
  const withField = (bytes: Buffer, offset: number, value: number, size: 2 | 4 = 4): Buffer => {
    const copy = Buffer.from(bytes);
    if (size === 2) copy.writeUInt16LE(value, offset);
    else copy.writeInt32LE(value, offset);
    return copy;
  };

  it.each([
    ['truncated pixel data', () => photo().subarray(0, 3000), 'IMAGE_DECODE_FAILED', 'the pixel data needs'],
    ['truncated DIB header', () => photo().subarray(0, 30), 'IMAGE_DECODE_FAILED', 'DIB header'],
    ['"BM" and 10 bytes', () => Buffer.from('BM\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00'), 'IMAGE_DECODE_FAILED', 'truncated or corrupt'],
    ['width 0', () => withField(photo(), 18, 0), 'IMAGE_DECODE_FAILED', 'no valid dimensions'],
    ['an embedded JPEG', () => withField(photo(), 30, 4), 'IMAGE_UNSUPPORTED_FORMAT', 'embedded JPEG'],
    ['an embedded PNG', () => withField(photo(), 30, 5), 'IMAGE_UNSUPPORTED_FORMAT', 'embedded PNG'],
    ['64 bits per pixel', () => withField(photo(), 28, 64, 2), 'IMAGE_UNSUPPORTED_FORMAT', '64 bits per pixel'],
    ['2 bits per pixel', () => withField(photo(), 28, 2, 2), 'IMAGE_UNSUPPORTED_FORMAT', '2 bits per pixel'],
    ['13 bits per pixel', () => withField(photo(), 28, 13, 2), 'IMAGE_DECODE_FAILED', '13 bits per pixel'],
    ['RLE8 at 24 bits per pixel', () => withField(photo(), 30, 1), 'IMAGE_DECODE_FAILED', 'RLE8 needs 8 bits'],
    [
      'a non-contiguous bitfield mask',
      () =>
        writeBmp({
          width: 4,
          height: 2,
          bitsPerPixel: 16,
          rgb: new Uint8Array(24),
          compression: 'bitfields',
          masks: [0xf00f, 0x7e0, 0x1f, 0],
        }),
      'IMAGE_UNSUPPORTED_FORMAT',
      'non-contiguous bitfield mask 0xf00f',
    ],
  ] as const)('%s', async (_, make, code, text) => {
    const error = await decodeImage(make()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DetectError);
    expect(error).toMatchObject({ code, message: expect.stringContaining(text) as string });
  });

  it('checks the header against maxPixels before allocating the pixels', async () => {
    // a 54-byte file claiming 100000 x 100000 pixels
    const header = withField(withField(photo().subarray(0, 54), 18, 100_000), 22, 100_000);
    await expect(decodeImage(header)).rejects.toMatchObject({
      code: 'IMAGE_TOO_LARGE',
      message: 'the image is 100000x100000 = 10000000000 pixels, over the limit of 40000000',
    });
    await expect(decodeImage(photo(), { maxPixels: WIDTH * HEIGHT - 1 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });
});

describe('BMP through the detector', () => {
  let detector: Detector;

  beforeAll(async () => {
    detector = await Detector.load(fixtureModel('tiny-fpn'), { intraOpThreads: 1 });
  });

  afterAll(async () => {
    await detector?.close();
  });

  it('a BMP gives the detections of the same pixels as PNG', async () => {
    const { data, info } = await sharp(readImage('landscape.jpg')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const bmp = writeBmp({ width: info.width, height: info.height, bitsPerPixel: 24, rgb: new Uint8Array(data) });
    const png = await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
      .png()
      .toBuffer();
    const options = { scoreThreshold: 0 };
    const fromBmp = await detector.detect(bmp, options);
    const fromPng = await detector.detect(png, options);
    expect(fromBmp.detections.length).toBeGreaterThan(0);
    expect(fromBmp.detections).toEqual(fromPng.detections);
    expect([fromBmp.width, fromBmp.height]).toEqual([info.width, info.height]);
  });

  it('decodeImageResized shrinks a BMP like the same pixels as PNG', async () => {
    const { data, info } = await sharp(readImage('landscape.jpg')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const bmp = writeBmp({ width: info.width, height: info.height, bitsPerPixel: 24, rgb: new Uint8Array(data) });
    const png = await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
      .png()
      .toBuffer();
    const target = (): { width: number; height: number } => ({ width: 150, height: 100 });
    const a = await decodeImageResized(bmp, target);
    const b = await decodeImageResized(png, target);
    expect(a.original).toEqual(b.original);
    expect([a.image.width, a.image.height]).toEqual([150, 100]);
    expect(Buffer.from(a.image.data).equals(Buffer.from(b.image.data))).toBe(true);
  });
});
