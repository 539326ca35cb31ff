/**
 * The image formats cpwc-detect decodes: ONE table. Format sniffing, the supported-formats text of
 * IMAGE_UNSUPPORTED_FORMAT (library and server), the OpenAPI image description and the docs all
 * derive from it. The format is always decided from the bytes (magic numbers), never from a file
 * name or a content type.
 */

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'heif' | 'bmp';

export interface FormatSpec {
  /** Our id, as in IMAGE_DECODE_FAILED messages ("the png image could not be decoded"). */
  id: ImageFormat;
  /** The name shown to users. */
  name: string;
  /** Who decodes it: sharp's libvips loader of that name, or our own decoder (src/detection/bmp.ts). */
  decoder: { kind: 'libvips'; loader: string } | { kind: 'own'; module: string };
  /** The MIME types of the format (first = canonical). Informational: the bytes decide. */
  mimeTypes: readonly string[];
  /** What is decoded, for docs and API descriptions. */
  note: string;
  /** The magic-number test on the first bytes. */
  matches(bytes: Uint8Array): boolean;
}

function ascii(bytes: Uint8Array, start: number, text: string): boolean {
  if (bytes.length < start + text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

const HEIF_BRANDS = ['avif', 'avis', 'mif1', 'msf1', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx'];
/** DIB header sizes: OS/2 core (12), OS/2 v2 (16, 64), BITMAPINFOHEADER (40), V2 (52), V3 (56), V4 (108), V5 (124). */
const BMP_HEADER_SIZES = [12, 16, 40, 52, 56, 64, 108, 124];

export const FORMATS: readonly FormatSpec[] = [
  {
    id: 'jpeg',
    name: 'JPEG',
    decoder: { kind: 'libvips', loader: 'jpegload' },
    mimeTypes: ['image/jpeg'],
    note: 'baseline and progressive; EXIF orientation applied; CMYK and grayscale converted to sRGB',
    matches: (b) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff,
  },
  {
    id: 'png',
    name: 'PNG',
    decoder: { kind: 'libvips', loader: 'pngload' },
    mimeTypes: ['image/png'],
    note: '8 and 16 bits, palette, grayscale; alpha dropped',
    matches: (b) => ascii(b, 0, '\x89PNG\r\n\x1a\n'),
  },
  {
    id: 'webp',
    name: 'WebP',
    decoder: { kind: 'libvips', loader: 'webpload' },
    mimeTypes: ['image/webp'],
    note: 'lossy and lossless; alpha dropped; animated: first frame',
    matches: (b) => ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP'),
  },
  {
    id: 'gif',
    name: 'GIF',
    decoder: { kind: 'libvips', loader: 'gifload' },
    mimeTypes: ['image/gif'],
    note: 'first frame',
    matches: (b) => ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a'),
  },
  {
    id: 'tiff',
    name: 'TIFF',
    decoder: { kind: 'libvips', loader: 'tiffload' },
    mimeTypes: ['image/tiff'],
    note: 'first page; strips and tiles checked against the file size',
    matches: (b) => ascii(b, 0, 'II*\x00') || ascii(b, 0, 'MM\x00*'),
  },
  {
    id: 'heif',
    name: 'AVIF',
    decoder: { kind: 'libvips', loader: 'heifload' },
    mimeTypes: ['image/avif'],
    note: 'AV1-coded HEIF only (an HEVC-coded HEIC is refused as unsupported)',
    matches: (b) => ascii(b, 4, 'ftyp') && HEIF_BRANDS.some((brand) => ascii(b, 8, brand)),
  },
  {
    id: 'bmp',
    name: 'BMP',
    decoder: { kind: 'own', module: 'src/detection/bmp.ts' },
    mimeTypes: ['image/bmp', 'image/x-ms-bmp'],
    note: '1/4/8-bit palette, 16/24/32-bit, bitfields, RLE4/RLE8, bottom-up and top-down; alpha dropped',
    // 'BM' and a known DIB header size; a file too short to hold that size is a truncated BMP
    matches: (b) => ascii(b, 0, 'BM') && (b.length < 18 || BMP_HEADER_SIZES.includes(readUint32LE(b, 14))),
  },
];

function readUint32LE(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16)) + (b[at + 3] ?? 0) * 0x1000000;
}

/** The supported formats as named in errors, API descriptions and docs: "JPEG, PNG, WebP, GIF, TIFF, AVIF, BMP". */
export const SUPPORTED_FORMATS_TEXT: string = FORMATS.map((f) => f.name).join(', ');

/** Each format with what is decoded, for API descriptions and docs: "JPEG (baseline and progressive; …); PNG (…); …". */
export const SUPPORTED_FORMATS_DETAIL: string = FORMATS.map((f) => `${f.name} (${f.note})`).join('; ');

/** The MIME types of the supported formats, canonical ones first. */
export const SUPPORTED_MIME_TYPES: readonly string[] = FORMATS.flatMap((f) => f.mimeTypes);

/** The table row of a format id. */
export function formatSpec(id: ImageFormat): FormatSpec {
  const spec = FORMATS.find((f) => f.id === id);
  // an invariant, not input: the ImageFormat union and FORMATS are the same list
  if (spec === undefined) throw new Error(`no FORMATS row for ${id}`);
  return spec;
}

/**
 * The image format from the first bytes (magic numbers), or undefined for anything else.
 * Deciding the format before decoding lets a damaged image of a known format be reported as
 * IMAGE_DECODE_FAILED rather than as an unsupported format.
 */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  return FORMATS.find((f) => f.matches(bytes))?.id;
}
