/** Real test photographs (test/fixtures/images) and deliberately broken inputs made from them. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deflateSync } from 'node:zlib';

export const IMAGES_DIR = path.join(__dirname, '..', 'fixtures', 'images');

export function readImage(name: string): Buffer {
  return fs.readFileSync(path.join(IMAGES_DIR, name));
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/**
 * A small, valid-looking PNG whose header claims `width` x `height` RGB pixels (a decompression bomb's
 * header), its IDAT `pixelBytes` deflated zero bytes.
 */
export function pngClaiming(width: number, height: number, pixelBytes = 1024): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.alloc(pixelBytes))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The 54 bytes of a 24-bit BMP's headers claiming `width` x `height` pixels, and no pixel data. */
function bmpHeader(width: number, height: number): Buffer {
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  return header;
}

/** The broken inputs every entry point must reject with a typed error. */
export function badInputs(): Array<{ name: string; bytes: Buffer; code: string }> {
  const jpeg = readImage('portrait.jpg');
  const corrupt = Buffer.from(jpeg);
  corrupt.fill(0x55, 200, corrupt.length - 2); // keeps SOI and EOI, destroys the rest
  return [
    { name: 'zero bytes', bytes: Buffer.alloc(0), code: 'IMAGE_EMPTY' },
    { name: 'text, not an image', bytes: Buffer.from('hello, this is not an image\n'), code: 'IMAGE_UNSUPPORTED_FORMAT' },
    {
      name: "'BM' without a DIB header (not a BMP)",
      bytes: Buffer.concat([Buffer.from('BM'), Buffer.alloc(64)]),
      code: 'IMAGE_UNSUPPORTED_FORMAT',
    },
    { name: 'truncated BMP (header only)', bytes: bmpHeader(40, 30), code: 'IMAGE_DECODE_FAILED' },
    { name: 'BMP header claiming 100000 x 100000 pixels', bytes: bmpHeader(100000, 100000), code: 'IMAGE_TOO_LARGE' },
    { name: 'truncated JPEG (first half)', bytes: jpeg.subarray(0, jpeg.length >> 1), code: 'IMAGE_DECODE_FAILED' },
    { name: 'JPEG magic then garbage', bytes: Buffer.concat([jpeg.subarray(0, 3), Buffer.alloc(500, 7)]), code: 'IMAGE_DECODE_FAILED' },
    { name: 'corrupt JPEG body', bytes: corrupt, code: 'IMAGE_DECODE_FAILED' },
    { name: 'truncated PNG', bytes: readImage('tiny.png').subarray(0, 200), code: 'IMAGE_DECODE_FAILED' },
    { name: 'PNG header claiming 100000 x 100000 pixels', bytes: pngClaiming(100000, 100000), code: 'IMAGE_TOO_LARGE' },
  ];
}
