/**
 * A BMP decoder (sharp's prebuilt libvips has no BMP loader). Reads the Windows BITMAPINFOHEADER
 * and its V2–V5 extensions, the OS/2 1.x core header (12 bytes) and OS/2 2.x headers (16/64 bytes);
 * 1/4/8-bit palette, 16-bit (5-5-5 or bitfields such as 5-6-5), 24-bit, 32-bit (BGRX or bitfields),
 * RLE8 and RLE4; bottom-up and top-down rows. Alpha is dropped, as for every format. Pixels that an
 * RLE stream skips (delta, early end of line or of bitmap) are palette index 0, as Pillow reads them.
 * A bitfield of n bits is scaled to 8 bits as `v * 255 / (2^n - 1)` truncated, as Pillow does.
 *
 * Errors (DetectError): IMAGE_DECODE_FAILED (truncated or corrupt: header, palette or pixel data
 * past the end of the file, impossible fields), IMAGE_UNSUPPORTED_FORMAT (a variant named in the
 * message: embedded JPEG/PNG, 2- or 64-bit, OS/2 Huffman or RLE24, CMYK), IMAGE_TOO_LARGE (over
 * `maxPixels`, checked from the header before any pixel buffer is allocated).
 */
import { DetectError } from './errors';
import type { RgbImage } from './image';

const FILE_HEADER_SIZE = 14;
const BI_RGB = 0;
const BI_RLE8 = 1;
const BI_RLE4 = 2;
const BI_BITFIELDS = 3;
const BI_JPEG = 4;
const BI_PNG = 5;
const BI_ALPHABITFIELDS = 6;

const UNSUPPORTED_COMPRESSION: Readonly<Record<number, string>> = {
  [BI_JPEG]: 'BMP with an embedded JPEG (BI_JPEG)',
  [BI_PNG]: 'BMP with an embedded PNG (BI_PNG)',
  11: 'CMYK BMP (BI_CMYK)',
  12: 'CMYK BMP (BI_CMYKRLE8)',
  13: 'CMYK BMP (BI_CMYKRLE4)',
};

/** What the headers say, checked against the file size. */
export interface BmpHeader {
  width: number;
  height: number;
  bitsPerPixel: number;
  compression: number;
  topDown: boolean;
  /** Byte offset of the pixel data. */
  dataOffset: number;
  /** Palette entries as [r, g, b] (bit depths <= 8). */
  palette: Uint8Array[];
  /** Red, green, blue masks (16/24/32-bit). */
  masks: [number, number, number];
}

function corrupt(detail: string): DetectError {
  return new DetectError('IMAGE_DECODE_FAILED', `the bmp image is truncated or corrupt: ${detail}`);
}

function unsupported(variant: string): DetectError {
  return new DetectError('IMAGE_UNSUPPORTED_FORMAT', `this BMP variant is not supported: ${variant}`);
}

class Reader {
  private readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(offset: number, size: number, what: string): void {
    if (offset + size > this.bytes.length) {
      throw corrupt(`${what} (bytes ${offset}..${offset + size}) is past the end of the file (${this.bytes.length} bytes)`);
    }
  }

  u16(offset: number, what: string): number {
    this.need(offset, 2, what);
    return this.view.getUint16(offset, true);
  }

  u32(offset: number, what: string): number {
    this.need(offset, 4, what);
    return this.view.getUint32(offset, true);
  }

  i32(offset: number, what: string): number {
    this.need(offset, 4, what);
    return this.view.getInt32(offset, true);
  }
}

/** Reads and checks the headers, the palette and the bit masks; refuses what cannot be decoded. */
export function readBmpHeader(bytes: Uint8Array, maxPixels: number): BmpHeader {
  const r = new Reader(bytes);
  const dataOffset = r.u32(10, 'the file header');
  const headerSize = r.u32(FILE_HEADER_SIZE, 'the DIB header size');
  r.need(FILE_HEADER_SIZE, headerSize, `the ${headerSize}-byte DIB header`);
  const core = headerSize === 12;
  const os2 = headerSize === 16 || headerSize === 64;
  let width: number;
  let rawHeight: number;
  let bitsPerPixel: number;
  let compression = BI_RGB;
  let colorsUsed = 0;
  if (core) {
    width = r.u16(18, 'the core header');
    rawHeight = r.u16(20, 'the core header');
    bitsPerPixel = r.u16(24, 'the core header');
  } else {
    width = r.i32(18, 'the info header');
    rawHeight = r.i32(22, 'the info header');
    bitsPerPixel = r.u16(28, 'the info header');
    if (headerSize >= 20) compression = r.u32(30, 'the info header');
    if (headerSize >= 36) colorsUsed = r.u32(46, 'the info header');
  }
  if (os2 && compression === 3) throw unsupported('OS/2 Huffman 1D compression');
  if (os2 && compression === 4) throw unsupported('OS/2 RLE24 compression');
  const named = UNSUPPORTED_COMPRESSION[compression];
  if (named !== undefined) throw unsupported(named);
  if (![BI_RGB, BI_RLE8, BI_RLE4, BI_BITFIELDS, BI_ALPHABITFIELDS].includes(compression))
    throw corrupt(`unknown compression ${compression}`);
  if (![1, 4, 8, 16, 24, 32].includes(bitsPerPixel)) {
    if (bitsPerPixel === 2 || bitsPerPixel === 64) throw unsupported(`${bitsPerPixel} bits per pixel`);
    throw corrupt(`${bitsPerPixel} bits per pixel`);
  }
  if (compression === BI_RLE8 && bitsPerPixel !== 8) throw corrupt(`RLE8 needs 8 bits per pixel, got ${bitsPerPixel}`);
  if (compression === BI_RLE4 && bitsPerPixel !== 4) throw corrupt(`RLE4 needs 4 bits per pixel, got ${bitsPerPixel}`);
  const bitfields = compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS;
  if (bitfields && bitsPerPixel < 16) throw corrupt(`bitfields need 16, 24 or 32 bits per pixel, got ${bitsPerPixel}`);

  const topDown = rawHeight < 0;
  const height = Math.abs(rawHeight);
  if (!(width > 0 && height > 0)) throw new DetectError('IMAGE_DECODE_FAILED', 'the bmp image has no valid dimensions');
  if (width * height > maxPixels) {
    throw new DetectError('IMAGE_TOO_LARGE', `the image is ${width}x${height} = ${width * height} pixels, over the limit of ${maxPixels}`);
  }

  // masks: in the V2+ header, or right after a 40-byte header (12 bytes, 16 with alpha)
  let masks: [number, number, number] = bitsPerPixel === 16 ? [0x7c00, 0x03e0, 0x001f] : [0xff0000, 0x00ff00, 0x0000ff];
  let afterHeader = FILE_HEADER_SIZE + headerSize;
  if (bitfields) {
    const at = headerSize >= 52 ? 54 : afterHeader;
    masks = [r.u32(at, 'the bit masks'), r.u32(at + 4, 'the bit masks'), r.u32(at + 8, 'the bit masks')];
    if (headerSize < 52) afterHeader += compression === BI_ALPHABITFIELDS ? 16 : 12;
    for (const mask of masks) checkMask(mask, bitsPerPixel);
  }

  const palette: Uint8Array[] = [];
  if (bitsPerPixel <= 8) {
    const count = colorsUsed === 0 ? 2 ** bitsPerPixel : colorsUsed;
    if (count > 2 ** bitsPerPixel) throw corrupt(`${count} palette colors for ${bitsPerPixel} bits per pixel`);
    const entrySize = core ? 3 : 4;
    r.need(afterHeader, count * entrySize, `the ${count}-color palette`);
    for (let i = 0; i < count; i++) {
      const at = afterHeader + i * entrySize;
      palette.push(Uint8Array.of(bytes[at + 2] ?? 0, bytes[at + 1] ?? 0, bytes[at] ?? 0));
    }
  }
  if (dataOffset >= bytes.length) throw corrupt(`the pixel data offset ${dataOffset} is past the end of the file (${bytes.length} bytes)`);
  return { width, height, bitsPerPixel, compression, topDown, dataOffset, palette, masks };
}

function checkMask(mask: number, bitsPerPixel: number): void {
  if (mask === 0) throw unsupported('a bitfield mask of 0');
  if (bitsPerPixel < 32 && mask >= 2 ** bitsPerPixel) throw corrupt(`bitfield mask 0x${mask.toString(16)} exceeds ${bitsPerPixel} bits`);
  const shifted = mask / 2 ** trailingZeros(mask);
  if (!Number.isInteger(Math.log2(shifted + 1))) throw unsupported(`a non-contiguous bitfield mask 0x${mask.toString(16)}`);
}

function trailingZeros(mask: number): number {
  let n = 0;
  while (n < 32 && Math.floor(mask / 2 ** n) % 2 === 0) n++;
  return n;
}

/** A mask turned into shift + maximum, and the scaling of its values to 8 bits (a table up to 16-bit fields). */
function channelOf(mask: number): (pixel: number) => number {
  const shift = trailingZeros(mask);
  const max = mask / 2 ** shift;
  if (max <= 0xffff) {
    const table = new Uint8Array(max + 1);
    for (let v = 0; v <= max; v++) table[v] = Math.floor((v * 255) / max);
    return (pixel) => table[(pixel >>> shift) & max] ?? 0;
  }
  return (pixel) => Math.floor(((Math.floor(pixel / 2 ** shift) % (max + 1)) * 255) / max);
}

/** Decodes a BMP to 8-bit RGB (see the file comment for what is read). */
export function decodeBmp(bytes: Uint8Array, maxPixels: number): RgbImage {
  const header = readBmpHeader(bytes, maxPixels);
  const { width, height } = header;
  const rgb = new Uint8Array(width * height * 3);
  if (header.compression === BI_RLE8 || header.compression === BI_RLE4) {
    const indices = decodeRle(bytes, header);
    for (let p = 0; p < indices.length; p++) setPalette(rgb, p, header.palette, indices[p] ?? 0);
    return { data: rgb, width, height };
  }
  const stride = Math.ceil((width * header.bitsPerPixel) / 32) * 4;
  // the last row needs only its pixels, not its padding (some writers drop it)
  const needed = stride * (height - 1) + Math.ceil((width * header.bitsPerPixel) / 8);
  if (header.dataOffset + needed > bytes.length) {
    throw corrupt(`the pixel data needs ${needed} bytes from byte ${header.dataOffset}, the file has ${bytes.length - header.dataOffset}`);
  }
  const read = pixelReader(bytes, header);
  for (let row = 0; row < height; row++) {
    const y = header.topDown ? row : height - 1 - row;
    const start = header.dataOffset + row * stride;
    for (let x = 0; x < width; x++) read(start, x, rgb, (y * width + x) * 3);
  }
  return { data: rgb, width, height };
}

type PixelReader = (rowStart: number, x: number, out: Uint8Array, at: number) => void;

function pixelReader(bytes: Uint8Array, header: BmpHeader): PixelReader {
  const { bitsPerPixel, palette } = header;
  if (bitsPerPixel <= 8) {
    const perByte = 8 / bitsPerPixel;
    const valueMask = 2 ** bitsPerPixel - 1;
    return (rowStart, x, out, at) => {
      const byte = bytes[rowStart + Math.floor(x / perByte)] ?? 0;
      const index = (byte >> (8 - bitsPerPixel * ((x % perByte) + 1))) & valueMask;
      setPalette(out, at / 3, palette, index);
    };
  }
  const bytesPerPixel = bitsPerPixel / 8;
  const [r, g, b] = header.masks;
  if (bitsPerPixel >= 24 && r === 0xff0000 && g === 0x00ff00 && b === 0x0000ff) {
    // BGR / BGRX bytes: the common case, without the generic bitfield arithmetic
    return (rowStart, x, out, at) => {
      const o = rowStart + x * bytesPerPixel;
      out[at] = bytes[o + 2] ?? 0;
      out[at + 1] = bytes[o + 1] ?? 0;
      out[at + 2] = bytes[o] ?? 0;
    };
  }
  const red = channelOf(r);
  const green = channelOf(g);
  const blue = channelOf(b);
  return (rowStart, x, out, at) => {
    const o = rowStart + x * bytesPerPixel;
    // unsigned 32-bit: 2 to 4 little-endian bytes
    const pixel =
      ((bytes[o] ?? 0) | ((bytes[o + 1] ?? 0) << 8) | (bytesPerPixel > 2 ? (bytes[o + 2] ?? 0) << 16 : 0)) +
      (bytesPerPixel > 3 ? (bytes[o + 3] ?? 0) * 0x1000000 : 0);
    out[at] = red(pixel);
    out[at + 1] = green(pixel);
    out[at + 2] = blue(pixel);
  };
}

/** Palette index → RGB; an index past the palette is black. */
function setPalette(out: Uint8Array, pixel: number, palette: readonly Uint8Array[], index: number): void {
  const color = palette[index];
  if (color !== undefined) out.set(color, pixel * 3);
  else out.fill(0, pixel * 3, pixel * 3 + 3);
}

/**
 * RLE8/RLE4 to palette indices, top row first. Runs past a row's end are cut at it; a stream that
 * ends (no more bytes) before the end-of-bitmap marker with pixels still missing is truncated.
 */
function decodeRle(bytes: Uint8Array, header: BmpHeader): Uint8Array {
  const { width, height, dataOffset } = header;
  const rle4 = header.compression === BI_RLE4;
  const indices = new Uint8Array(width * height);
  let x = 0;
  let line = 0; // in file order (bottom-up unless topDown)
  let at = dataOffset;
  const put = (index: number): void => {
    if (x < width && line < height) {
      const y = header.topDown ? line : height - 1 - line;
      indices[y * width + x] = index;
    }
    x++;
  };
  const byteAt = (offset: number): number => {
    const value = bytes[offset];
    if (value === undefined) throw corrupt(`the RLE data ends at byte ${bytes.length} before the end-of-bitmap marker`);
    return value;
  };
  while (line < height) {
    if (at >= bytes.length && line === height - 1 && x >= width) break;
    const count = byteAt(at);
    const value = byteAt(at + 1);
    at += 2;
    if (count > 0) {
      for (let i = 0; i < count; i++) put(rle4 ? (i % 2 === 0 ? value >> 4 : value & 0x0f) : value);
    } else if (value === 0) {
      x = 0;
      line++;
    } else if (value === 1) {
      break;
    } else if (value === 2) {
      x += byteAt(at);
      line += byteAt(at + 1);
      at += 2;
    } else {
      const size = rle4 ? Math.ceil(value / 2) : value;
      if (at + size > bytes.length) throw corrupt(`an RLE absolute run of ${value} pixels is past the end of the file`);
      for (let i = 0; i < value; i++) {
        const byte = bytes[at + (rle4 ? i >> 1 : i)] ?? 0;
        put(rle4 ? (i % 2 === 0 ? byte >> 4 : byte & 0x0f) : byte);
      }
      at += size + (size % 2);
    }
  }
  return indices;
}
