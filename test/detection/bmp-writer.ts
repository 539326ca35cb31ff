/**
 * Builds BMP files of the variants Pillow does not write (RLE8/RLE4, bitfields, 16-bit, 4-bit,
 * top-down, OS/2 core and V4/V5 headers), for the decoder tests. Written from the Microsoft BMP
 * specification, independently of src/detection/bmp.ts.
 */

export type BmpCompression = 'rgb' | 'rle8' | 'rle4' | 'bitfields' | 'alphabitfields';

export interface BmpSpec {
  width: number;
  height: number;
  bitsPerPixel: 1 | 4 | 8 | 16 | 24 | 32;
  compression?: BmpCompression;
  /** 12 (OS/2 core), 40 (BITMAPINFOHEADER), 56 (V3), 108 (V4), 124 (V5); default 40. */
  headerSize?: 12 | 40 | 56 | 108 | 124;
  topDown?: boolean;
  /** Palette (RGB triples) and one index a pixel, top row first: bit depths <= 8. */
  palette?: Uint8Array;
  indices?: Uint8Array;
  /** RGB, top row first: 16/24/32 bits. */
  rgb?: Uint8Array;
  /** Red, green, blue, alpha masks for bitfields (alpha 0 = none). */
  masks?: [number, number, number, number];
  /** Pre-encoded RLE data (instead of encoding `indices`). */
  rleData?: Uint8Array;
}

const COMPRESSION_ID: Record<BmpCompression, number> = { rgb: 0, rle8: 1, rle4: 2, bitfields: 3, alphabitfields: 6 };

export function writeBmp(spec: BmpSpec): Buffer {
  const { width, height, bitsPerPixel } = spec;
  const compression = spec.compression ?? 'rgb';
  const headerSize = spec.headerSize ?? 40;
  const core = headerSize === 12;
  const paletteColors = bitsPerPixel <= 8 ? (spec.palette?.length ?? 0) / 3 : 0;
  const masks = spec.masks ?? [0, 0, 0, 0];
  const bitfields = compression === 'bitfields' || compression === 'alphabitfields';
  const extraMasks = bitfields && headerSize === 40 ? (compression === 'alphabitfields' ? 16 : 12) : 0;

  const pixels =
    compression === 'rle8' || compression === 'rle4'
      ? (spec.rleData ?? encodeRle(spec, compression === 'rle4'))
      : packRows(spec, bitfields ? masks : undefined);

  const header = Buffer.alloc(headerSize);
  if (core) {
    header.writeUInt32LE(12, 0);
    header.writeUInt16LE(width, 4);
    header.writeUInt16LE(height, 6);
    header.writeUInt16LE(1, 8);
    header.writeUInt16LE(bitsPerPixel, 10);
  } else {
    header.writeUInt32LE(headerSize, 0);
    header.writeInt32LE(width, 4);
    header.writeInt32LE(spec.topDown === true ? -height : height, 8);
    header.writeUInt16LE(1, 12);
    header.writeUInt16LE(bitsPerPixel, 14);
    header.writeUInt32LE(COMPRESSION_ID[compression], 16);
    header.writeUInt32LE(pixels.length, 20);
    header.writeInt32LE(2835, 24);
    header.writeInt32LE(2835, 28);
    header.writeUInt32LE(paletteColors, 32);
    if (headerSize >= 56 && bitfields) {
      masks.forEach((m, i) => {
        header.writeUInt32LE(m >>> 0, 40 + i * 4);
      });
    }
    if (headerSize >= 108) header.write('BGRs', 56, 'latin1');
  }
  const maskBytes = Buffer.alloc(extraMasks);
  for (let i = 0; i < extraMasks / 4; i++) maskBytes.writeUInt32LE((masks[i] ?? 0) >>> 0, i * 4);
  const entry = core ? 3 : 4;
  const palette = Buffer.alloc(paletteColors * entry);
  for (let i = 0; i < paletteColors; i++) {
    const p = spec.palette as Uint8Array;
    palette[i * entry] = p[i * 3 + 2] ?? 0;
    palette[i * entry + 1] = p[i * 3 + 1] ?? 0;
    palette[i * entry + 2] = p[i * 3] ?? 0;
  }
  const offset = 14 + headerSize + extraMasks + palette.length;
  const file = Buffer.alloc(14);
  file.write('BM', 0, 'latin1');
  file.writeUInt32LE(offset + pixels.length, 2);
  file.writeUInt32LE(offset, 10);
  return Buffer.concat([file, header, maskBytes, palette, pixels]);
}

/** Uncompressed rows, bottom-up unless topDown, each padded to 4 bytes. */
function packRows(spec: BmpSpec, masks: [number, number, number, number] | undefined): Buffer {
  const { width, height, bitsPerPixel } = spec;
  const stride = Math.ceil((width * bitsPerPixel) / 32) * 4;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const row = (spec.topDown === true ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (bitsPerPixel <= 8) {
        const index = (spec.indices as Uint8Array)[p] ?? 0;
        const bit = x * bitsPerPixel;
        out[row + (bit >> 3)] = (out[row + (bit >> 3)] ?? 0) | (index << (8 - bitsPerPixel - (bit & 7)));
        continue;
      }
      const rgb = spec.rgb as Uint8Array;
      const [r, g, b] = [rgb[p * 3] ?? 0, rgb[p * 3 + 1] ?? 0, rgb[p * 3 + 2] ?? 0];
      const bytes = bitsPerPixel / 8;
      let value: number;
      if (masks !== undefined) {
        value = quantize(r, masks[0]) + quantize(g, masks[1]) + quantize(b, masks[2]) + quantize(255 - x, masks[3]);
      } else if (bitsPerPixel === 16) {
        value = quantize(r, 0x7c00) + quantize(g, 0x03e0) + quantize(b, 0x001f);
      } else {
        value = b + g * 256 + r * 65536 + (bitsPerPixel === 32 ? 0x77 * 2 ** 24 : 0); // the X byte is ignored
      }
      for (let i = 0; i < bytes; i++) out[row + x * bytes + i] = Math.floor(value / 2 ** (8 * i)) % 256;
    }
  }
  return out;
}

/** An 8-bit value put in a mask's bits (rounded to the mask's depth). */
function quantize(value: number, mask: number): number {
  if (mask === 0) return 0;
  let shift = 0;
  while (Math.floor(mask / 2 ** shift) % 2 === 0) shift++;
  const max = mask / 2 ** shift;
  return Math.round((value * max) / 255) * 2 ** shift;
}

/**
 * RLE8/RLE4 from indices, bottom-up: runs of 3+ equal pixels encoded; otherwise RLE8 collects
 * literal pixels in absolute runs (odd lengths too, so the word padding is exercised) and RLE4
 * encodes pixel pairs as 2-pixel runs, with an absolute run of 4 where four pixels differ.
 */
function encodeRle(spec: BmpSpec, rle4: boolean): Buffer {
  const { width, height } = spec;
  const indices = spec.indices as Uint8Array;
  const out: number[] = [];
  for (let line = 0; line < height; line++) {
    const y = height - 1 - line;
    const row = Array.from(indices.subarray(y * width, (y + 1) * width));
    let x = 0;
    const runAt = (i: number): number => {
      let n = 1;
      while (i + n < width && row[i + n] === row[i] && n < 255) n++;
      return n;
    };
    while (x < width) {
      const run = runAt(x);
      const v = row[x] ?? 0;
      if (run >= 3) {
        out.push(run, rle4 ? (v << 4) | v : v);
        x += run;
        continue;
      }
      if (rle4) {
        const four = row.slice(x, x + 4);
        if (four.length === 4 && new Set(four).size === 4) {
          out.push(0, 4, ((four[0] ?? 0) << 4) | (four[1] ?? 0), ((four[2] ?? 0) << 4) | (four[3] ?? 0));
          x += 4;
        } else if (x + 1 < width) {
          out.push(2, (v << 4) | (row[x + 1] ?? 0));
          x += 2;
        } else {
          out.push(1, v << 4);
          x += 1;
        }
        continue;
      }
      let end = x;
      while (end < width && runAt(end) < 3 && end - x < 255) end++;
      const literal = row.slice(x, end);
      if (literal.length >= 3) {
        out.push(0, literal.length, ...literal);
        if (literal.length % 2 === 1) out.push(0);
      } else {
        for (const value of literal) out.push(1, value);
      }
      x = end;
    }
    out.push(0, 0);
  }
  out.push(0, 1);
  return Buffer.from(out);
}
