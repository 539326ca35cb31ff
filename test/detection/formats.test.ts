import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FORMATS,
  formatSpec,
  sniffImageFormat,
  SUPPORTED_FORMATS_DETAIL,
  SUPPORTED_FORMATS_TEXT,
  SUPPORTED_MIME_TYPES,
} from '../../src/detection/formats';
import { DETECT_ERROR_MESSAGES } from '../../src/detection/errors';
import { ERRORS } from '../../src/server/errors';

describe('FORMATS: the one table of supported formats', () => {
  it('names every format once, in the text that errors show', () => {
    expect(SUPPORTED_FORMATS_TEXT).toBe('JPEG, PNG, WebP, GIF, TIFF, AVIF, BMP');
    expect(new Set(FORMATS.map((f) => f.id)).size).toBe(FORMATS.length);
    expect(SUPPORTED_FORMATS_DETAIL.startsWith('JPEG (baseline and progressive')).toBe(true);
    expect(SUPPORTED_FORMATS_DETAIL).toContain('; BMP (1/4/8-bit palette');
    expect(SUPPORTED_MIME_TYPES).toEqual([
      'image/jpeg',
      'image/png',
      'image/webp',
      'image/gif',
      'image/tiff',
      'image/avif',
      'image/bmp',
      'image/x-ms-bmp',
    ]);
  });

  it('drives the IMAGE_UNSUPPORTED_FORMAT message of the library and of the server', () => {
    expect(DETECT_ERROR_MESSAGES.IMAGE_UNSUPPORTED_FORMAT).toContain(`(${SUPPORTED_FORMATS_TEXT})`);
    expect(ERRORS.IMAGE_UNSUPPORTED_FORMAT.message).toBe(DETECT_ERROR_MESSAGES.IMAGE_UNSUPPORTED_FORMAT);
  });

  it('the docs name the formats of the table', () => {
    const root = path.join(__dirname, '..', '..');
    const serverDoc = fs.readFileSync(path.join(root, 'docs', 'server.md'), 'utf8');
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const serverLine = serverDoc.split('\n').find((line) => line.includes('in the formats of `FORMATS`')) ?? '';
    expect(serverLine.replace(' (first frame)', '').match(/JPEG.*BMP/)?.[0]).toBe(SUPPORTED_FORMATS_TEXT);
    for (const f of FORMATS) expect(readme).toContain(f.name);
  });

  it('formatSpec finds each row', () => {
    for (const f of FORMATS) expect(formatSpec(f.id)).toBe(f);
    expect(formatSpec('bmp').decoder).toEqual({ kind: 'own', module: 'src/detection/bmp.ts' });
  });

  it('sniffs BMP by "BM" and a known DIB header size', () => {
    const bmp = (headerSize: number): Buffer => {
      const b = Buffer.alloc(64);
      b.write('BM', 0, 'latin1');
      b.writeUInt32LE(headerSize, 14);
      return b;
    };
    expect([12, 40, 56, 108, 124].map((size) => sniffImageFormat(bmp(size)))).toEqual(['bmp', 'bmp', 'bmp', 'bmp', 'bmp']);
    expect(sniffImageFormat(bmp(0))).toBeUndefined();
    expect(sniffImageFormat(bmp(41))).toBeUndefined();
    // too short to hold the header size: a truncated BMP (decoding says so)
    expect(sniffImageFormat(Buffer.from('BM\x10\x00'))).toBe('bmp');
    expect(sniffImageFormat(Buffer.from('BMP is a format'))).toBe('bmp');
    expect(sniffImageFormat(Buffer.from('BMW cars are built in Munich and Dingolfing'))).toBeUndefined();
  });
});
