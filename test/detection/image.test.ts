import sharp from 'sharp';
import { DetectError } from '../../src/detection/errors';
import { sniffImageFormat } from '../../src/detection/formats';
import { decodeImage } from '../../src/detection/image';
import { badInputs, pngClaiming, readImage } from './images';

describe('decodeImage on real photographs', () => {
  it.each([
    ['portrait.jpg', 384, 512],
    ['landscape.jpg', 600, 400],
    ['tiny.png', 40, 30],
    ['grayscale.png', 384, 384],
    ['alpha.png', 300, 200],
    ['exif-rotated.jpg', 360, 240],
    ['rocket.webp', 640, 427],
    ['hubble.gif', 320, 279],
  ])('%s decodes to %ix%i RGB', async (name, width, height) => {
    const image = await decodeImage(readImage(name));
    expect([image.width, image.height]).toEqual([width, height]);
    expect(image.data.length).toBe(width * height * 3);
  });

  it('applies EXIF orientation 6: the stored 240x360 image is rotated 90 degrees clockwise', async () => {
    const bytes = readImage('exif-rotated.jpg');
    const stored = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect([stored.info.width, stored.info.height]).toEqual([240, 360]);
    const image = await decodeImage(bytes);
    // Displayed pixel (x, y) is stored pixel (y, H - 1 - x) for a 90 degree clockwise rotation.
    const stride = stored.info.channels;
    for (const [x, y] of [
      [0, 0],
      [359, 0],
      [100, 200],
      [359, 239],
    ]) {
      const storedIndex = ((stored.info.height - 1 - x) * stored.info.width + y) * stride;
      expect(Array.from(image.data.subarray((y * 360 + x) * 3, (y * 360 + x) * 3 + 3))).toEqual(
        Array.from(stored.data.subarray(storedIndex, storedIndex + 3)),
      );
    }
  });

  it('expands grayscale to three equal channels', async () => {
    const image = await decodeImage(readImage('grayscale.png'));
    for (let p = 0; p < image.data.length; p += 3 * 997) {
      expect(image.data[p + 1]).toBe(image.data[p]);
      expect(image.data[p + 2]).toBe(image.data[p]);
    }
  });

  it('drops alpha without compositing (RGB unchanged where alpha is 0)', async () => {
    const bytes = readImage('alpha.png');
    const rgba = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect(rgba.info.channels).toBe(4);
    const image = await decodeImage(bytes);
    let transparentSeen = 0;
    let differing = 0;
    for (let p = 0; p < 300 * 200; p++) {
      if (rgba.data[p * 4 + 3] === 0) transparentSeen++;
      for (let c = 0; c < 3; c++) if (image.data[p * 3 + c] !== rgba.data[p * 4 + c]) differing++;
    }
    expect(transparentSeen).toBeGreaterThan(0);
    expect(differing).toBe(0);
  });
});

describe('sniffImageFormat', () => {
  it('recognizes the supported formats by their magic bytes, whatever the file is called', () => {
    expect(sniffImageFormat(readImage('portrait.jpg'))).toBe('jpeg');
    expect(sniffImageFormat(readImage('tiny.png'))).toBe('png');
    expect(sniffImageFormat(readImage('rocket.webp'))).toBe('webp');
    expect(sniffImageFormat(readImage('hubble.gif'))).toBe('gif');
    expect(sniffImageFormat(Buffer.from('II*\0xxxx'))).toBe('tiff');
    expect(sniffImageFormat(Buffer.from('\0\0\0\x1cftypavif'))).toBe('heif');
    expect(sniffImageFormat(Buffer.from('BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0'))).toBe('bmp');
    expect(sniffImageFormat(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from([0xff, 0xd8]))).toBeUndefined();
  });
});

describe('decodeImage on bad input', () => {
  it.each(badInputs().map((b) => [b.name, b] as const))('%s -> typed DetectError', async (_, bad) => {
    const error = await decodeImage(bad.bytes).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DetectError);
    expect((error as DetectError).code).toBe(bad.code);
  });

  it('checks the pixel limit from the header, before decoding', async () => {
    await expect(decodeImage(pngClaiming(2000, 2000), { maxPixels: 1000 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
    await expect(decodeImage(readImage('tiny.png'), { maxPixels: 40 * 30 })).resolves.toMatchObject({ width: 40, height: 30 });
    await expect(decodeImage(readImage('tiny.png'), { maxPixels: 40 * 30 - 1 })).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
  });
});
