/**
 * TIFFs that lie about their size, against a real listening server: strips past the end of the
 * file, many pages. Each gets a typed 4xx before any pixel is decoded; real TIFFs still decode.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { MAX_TIFF_PAGES } from '../../src/detection/tiff';
import { IMAGES, type ErrorBody, useFixtureServer } from '../helpers/server';

const fixture = useFixtureServer();

type Entry = [tag: number, type: 3 | 4, value: number];

/**
 * A little-endian classic TIFF of 8-bit grayscale pages: each page's directory holds `entries`
 * (single values, inline) and they all share one strip of `stripBytes` bytes after the header.
 */
function buildTiff(pages: number, entriesFor: (stripOffset: number) => Entry[], stripBytes: number): Buffer {
  const stripOffset = 8;
  const entries = entriesFor(stripOffset).sort((a, b) => a[0] - b[0]);
  const ifdSize = 2 + 12 * entries.length + 4;
  const firstIfd = stripOffset + stripBytes + (stripBytes % 2);
  const out = Buffer.alloc(firstIfd + pages * ifdSize);
  out.write('II', 0, 'latin1');
  out.writeUInt16LE(42, 2);
  out.writeUInt32LE(firstIfd, 4);
  out.fill(0x80, stripOffset, stripOffset + stripBytes);
  for (let page = 0; page < pages; page++) {
    const at = firstIfd + page * ifdSize;
    out.writeUInt16LE(entries.length, at);
    entries.forEach(([tag, type, value], i) => {
      const entry = at + 2 + 12 * i;
      out.writeUInt16LE(tag, entry);
      out.writeUInt16LE(type, entry + 2);
      out.writeUInt32LE(1, entry + 4);
      if (type === 3) out.writeUInt16LE(value, entry + 8);
      else out.writeUInt32LE(value, entry + 8);
    });
    out.writeUInt32LE(page + 1 < pages ? at + ifdSize : 0, at + 2 + 12 * entries.length);
  }
  return out;
}

function grayPage(width: number, height: number, stripByteCount: number): (stripOffset: number) => Entry[] {
  return (stripOffset) => [
    [256, 4, width],
    [257, 4, height],
    [258, 3, 8],
    [259, 3, 1],
    [262, 3, 1],
    [273, 4, stripOffset],
    [277, 3, 1],
    [278, 4, height],
    [279, 4, stripByteCount],
  ];
}

async function detect(body: Buffer): Promise<{ status: number; body: ErrorBody & { width?: number; height?: number } }> {
  const response = await fetch(`${fixture.server.url}/v1/detect`, { method: 'POST', body, headers: { 'Content-Type': 'image/tiff' } });
  return { status: response.status, body: (await response.json()) as ErrorBody & { width?: number; height?: number } };
}

describe('TIFF structure checks', () => {
  it('refuses a 6000x6000 TIFF whose only strip ends past the end of the file with 400 IMAGE_DECODE_FAILED', async () => {
    const bomb = buildTiff(1, grayPage(6000, 6000, 36_000_000), 4);
    expect(bomb.length).toBeLessThan(140);
    const { status, body } = await detect(bomb);
    expect(status).toBe(400);
    expect(body.error.code).toBe('IMAGE_DECODE_FAILED');
    expect(body.error.message).toMatch(/strip 0 ends at byte 36000008, past the end of the file/);
  });

  it('refuses an uncompressed TIFF whose strip byte count is shorter than its pixels', async () => {
    const short = buildTiff(1, grayPage(64, 64, 100), 100);
    const { status, body } = await detect(short);
    expect(status).toBe(400);
    expect(body.error.message).toMatch(/hold 100 bytes, 64x64 pixels need 4096/);
  });

  it.each([
    ['uncompressed', { compression: 'none' as const }],
    ['LZW', { compression: 'lzw' as const }],
    ['deflate, tiled', { compression: 'deflate' as const, tile: true, tileWidth: 64, tileHeight: 64 }],
  ])('refuses a real %s TIFF cut short, and decodes it whole', async (_name, options) => {
    const whole = await sharp(readFileSync(path.join(IMAGES, 'landscape.jpg')))
      .tiff(options)
      .toBuffer();
    const ok = await detect(whole);
    expect(ok.status).toBe(200);
    expect([ok.body.width, ok.body.height]).toEqual([600, 400]);
    const cut = await detect(whole.subarray(0, Math.floor(whole.length * 0.6)));
    expect(cut.status).toBe(400);
    expect(cut.body.error.code).toBe('IMAGE_DECODE_FAILED');
  });

  it(`decodes the first page of a TIFF with ${MAX_TIFF_PAGES} pages, refuses ${MAX_TIFF_PAGES + 1} with 413 IMAGE_TOO_LARGE`, async () => {
    const atLimit = await detect(buildTiff(MAX_TIFF_PAGES, grayPage(2, 2, 4), 4));
    expect(atLimit.status).toBe(200);
    expect([atLimit.body.width, atLimit.body.height]).toEqual([2, 2]);
    const over = await detect(buildTiff(MAX_TIFF_PAGES + 1, grayPage(2, 2, 4), 4));
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('IMAGE_TOO_LARGE');
    expect(over.body.error.message).toContain(`more than ${MAX_TIFF_PAGES} pages`);
  });

  it('refuses 165,000 pages without walking them', async () => {
    const { status, body } = await detect(buildTiff(165_000, grayPage(2, 2, 4), 4));
    expect(status).toBe(413);
    expect(body.error.code).toBe('IMAGE_TOO_LARGE');
  });

  it('refuses a directory chain that loops', async () => {
    const looped = buildTiff(2, grayPage(2, 2, 4), 4);
    // point page 2's next-directory offset back at page 1
    const first = looped.readUInt32LE(4);
    const entries = looped.readUInt16LE(first);
    const second = first + 2 + 12 * entries + 4;
    looped.writeUInt32LE(first, second + 2 + 12 * entries);
    const { status, body } = await detect(looped);
    expect(status).toBe(400);
    expect(body.error.message).toMatch(/loops back/);
  });
});
