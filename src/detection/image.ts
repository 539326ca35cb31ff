import sharp from 'sharp';
import { decodeBmp } from './bmp';
import { DetectError } from './errors';
import { sniffImageFormat, type ImageFormat } from './formats';
import { checkTiff } from './tiff';

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

/**
 * Decodes an encoded image to 8-bit RGB the way every part of cpwc-detect sees it
 * (the export's reference fixtures decode through this same function), in any format of FORMATS
 * (src/detection/formats.ts): libvips for most, our own decoder for BMP (src/detection/bmp.ts).
 * EXIF orientation applied; grayscale, CMYK and 16-bit inputs converted to 8-bit sRGB;
 * alpha dropped (not composited), as PIL's `convert("RGB")` does; GIF: first frame.
 * The format is detected from the bytes, never from a file name or content type.
 *
 * Errors (DetectError): IMAGE_EMPTY (0 bytes), IMAGE_UNSUPPORTED_FORMAT (not a format of FORMATS, or
 * a variant of one that is not decoded: HEVC-coded HEIF, BMP with embedded JPEG...),
 * IMAGE_DECODE_FAILED (a supported format, but corrupt or truncated; a TIFF whose first page's strips
 * or tiles end past the end of the file), IMAGE_TOO_LARGE (over `maxPixels`, checked from the header
 * before any pixel is decoded; a TIFF of more than MAX_TIFF_PAGES pages).
 *
 * @example
 * const { data, width, height } = await decodeImage(await fs.promises.readFile('dog.jpg'));
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = checkFormat(bytes);
  if (format === 'bmp') return decodeBmp(bytes, maxPixels);
  await readHeader(bytes, format, maxPixels);
  try {
    const { data, info } = await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels, pages: 1 })
      .rotate()
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    // caught below and reported as IMAGE_DECODE_FAILED: libvips gave something other than RGB
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (cause) {
    throw new DetectError('IMAGE_DECODE_FAILED', `the ${format} image could not be decoded: ${firstLine(cause)}`, { cause });
  }
}

/** An image decoded straight to a smaller size, and the size it has before that (after EXIF orientation). */
export interface ResizedDecode {
  image: RgbImage;
  original: { width: number; height: number };
}

/**
 * Decodes and resizes in one libvips pipeline: JPEGs are shrunk while decoding (libjpeg's DCT scaling,
 * "shrink-on-load"), then libvips' linear reduce brings the image to `targetSize(original)` exactly.
 * Faster than `decodeImage` + `transformImage`'s bilinear resize, and APPROXIMATE: the pixels differ
 * from torchvision's resize (libvips averages over the shrink instead of sampling two taps), so it is
 * opt-in (`DetectorOptions.fastResize`); its AP effect is measured in docs/performance.md.
 * Same checks and errors as `decodeImage`; an image not smaller than the target is decoded as it is.
 */
export async function decodeImageResized(
  bytes: Uint8Array,
  targetSize: (original: { width: number; height: number }) => { width: number; height: number },
  options: DecodeOptions = {},
): Promise<ResizedDecode> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = checkFormat(bytes);
  if (format === 'bmp') return resizeDecoded(decodeBmp(bytes, maxPixels), targetSize);
  const { width, height, orientation } = await readHeader(bytes, format, maxPixels);
  const swapped = orientation !== undefined && orientation >= 5;
  const original = swapped ? { width: height, height: width } : { width, height };
  const target = targetSize(original);
  if (target.width >= original.width || target.height >= original.height) return { image: await decodeImage(bytes, options), original };
  try {
    const { data, info } = await sharp(bytes, { failOn: 'truncated', limitInputPixels: maxPixels, pages: 1 })
      .rotate()
      .resize(target.width, target.height, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    // caught below and reported as IMAGE_DECODE_FAILED: libvips gave something other than RGB
    // caught below and reported as IMAGE_DECODE_FAILED: libvips gave something other than RGB
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return {
      image: { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height },
      original,
    };
  } catch (cause) {
    throw new DetectError('IMAGE_DECODE_FAILED', `the ${format} image could not be decoded: ${firstLine(cause)}`, { cause });
  }
}

/**
 * An image our own decoder produced (BMP), resized the way decodeImageResized resizes in libvips
 * (linear reduce to the target); no EXIF, so the original size is the decoded size.
 */
async function resizeDecoded(
  image: RgbImage,
  targetSize: (original: { width: number; height: number }) => { width: number; height: number },
): Promise<ResizedDecode> {
  const original = { width: image.width, height: image.height };
  const target = targetSize(original);
  if (target.width >= original.width || target.height >= original.height) return { image, original };
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(target.width, target.height, { fit: 'fill', kernel: 'linear' })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return {
    image: { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height },
    original,
  };
}

/** The format of the bytes (FORMATS), or IMAGE_EMPTY / IMAGE_UNSUPPORTED_FORMAT. */
function checkFormat(bytes: Uint8Array): ImageFormat {
  if (bytes.length === 0) throw new DetectError('IMAGE_EMPTY');
  const format = sniffImageFormat(bytes);
  if (format === undefined) throw new DetectError('IMAGE_UNSUPPORTED_FORMAT');
  return format;
}

/** The header fields of an encoded image of a sniffed `format` (checkFormat), with decodeImage's size checks. */
async function readHeader(
  bytes: Uint8Array,
  format: ImageFormat,
  maxPixels: number,
): Promise<{ width: number; height: number; orientation: number | undefined }> {
  // strips past the end of the file would decode as zeros, and metadata() walks every page
  if (format === 'tiff') checkTiff(bytes);
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (cause) {
    if (format === 'heif') {
      throw new DetectError('IMAGE_UNSUPPORTED_FORMAT', 'this HEIF image cannot be read: only AVIF-coded HEIF is supported', { cause });
    }
    throw new DetectError('IMAGE_DECODE_FAILED', `the ${format} image could not be decoded: ${firstLine(cause)}`, { cause });
  }
  // libheif reads an HEVC-coded HEIC's header but this build cannot decode its pixels ("bad seek")
  if (format === 'heif' && meta.compression !== undefined && meta.compression !== 'av1') {
    throw new DetectError(
      'IMAGE_UNSUPPORTED_FORMAT',
      `this HEIF image is ${meta.compression}-coded: only AVIF-coded (av1) HEIF is supported`,
    );
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new DetectError('IMAGE_DECODE_FAILED', `the ${format} image has no valid dimensions`);
  if (width * height > maxPixels) {
    throw new DetectError('IMAGE_TOO_LARGE', `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }
  return { width, height, orientation: meta.orientation };
}

function firstLine(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const end = cause.message.indexOf('\n');
  return end === -1 ? cause.message : cause.message.slice(0, end);
}
