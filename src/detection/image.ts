import sharp from 'sharp';
import { DetectError } from './errors';

/** An 8-bit RGB image, row-major HWC: pixel (x, y) channel c is at `(y * width + x) * 3 + c`. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this before decoding them (default 40 megapixels). */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

const SUPPORTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'avif', 'bmp']);

/**
 * Decodes an encoded image to 8-bit RGB the way every part of cpwc-detect sees it
 * (the export's reference fixtures decode through this same function):
 * EXIF orientation applied; grayscale, CMYK and 16-bit inputs converted to 8-bit sRGB;
 * alpha dropped (not composited), as PIL's `convert("RGB")` does; GIF: first frame.
 * The format is detected from the bytes, never from a file name or content type.
 *
 * @example
 * const { data, width, height } = await decodeImage(await fs.promises.readFile('dog.jpg'));
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) throw new DetectError('IMAGE_EMPTY', 'the image is empty (0 bytes)');
  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    format = meta.format;
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch (cause) {
    throw new DetectError('IMAGE_UNSUPPORTED_FORMAT', 'the bytes are not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIF, BMP)', { cause });
  }
  if (format === undefined || !SUPPORTED_FORMATS.has(format)) {
    throw new DetectError('IMAGE_UNSUPPORTED_FORMAT', `unsupported image format '${format ?? 'unknown'}'`);
  }
  if (!(width > 0 && height > 0)) throw new DetectError('IMAGE_DECODE_FAILED', `the ${format} image has no valid dimensions`);
  if (width * height > maxPixels) {
    throw new DetectError('IMAGE_TOO_LARGE', `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
  try {
    const { data, info } = await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels, pages: 1 })
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new DetectError('IMAGE_DECODE_FAILED', `the ${format} image could not be decoded: ${detail}`, { cause });
  }
}
