/**
 * An HEVC-coded HEIC against a real listening server: 415 IMAGE_UNSUPPORTED_FORMAT, as for any
 * format this build cannot decode (it used to be a 400 "bad seek" from the decoder). The HEIC is a
 * real AVIF from sharp re-boxed as HEVC: item type hvc1, an hvcC configuration record instead of
 * av1C, brand heic, box sizes and item offsets adjusted; libheif reads its header as HEVC.
 */
import sharp from 'sharp';
import { type ErrorBody, useFixtureServer } from '../helpers/server';

interface Box {
  at: number;
  size: number;
  type: string;
}

function children(bytes: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  for (let at = start; at + 8 <= end; ) {
    const size = bytes.readUInt32BE(at);
    out.push({ at, size, type: bytes.toString('latin1', at + 4, at + 8) });
    if (size < 8) break;
    at += size;
  }
  return out;
}

function child(bytes: Buffer, parent: Box, type: string, headerBytes = 8): Box {
  const found = children(bytes, parent.at + headerBytes, parent.at + parent.size).find((b) => b.type === type);
  if (found === undefined) throw new Error(`no ${type} box in ${parent.type}`);
  return found;
}

/** Adds `delta` to every item offset of an iloc box (the data moved by that many bytes). */
function shiftItemOffsets(bytes: Buffer, iloc: Box, delta: number): void {
  let at = iloc.at + 8;
  const version = bytes[at] ?? 0;
  at += 4;
  const offsetSize = (bytes[at] ?? 0) >> 4;
  const lengthSize = (bytes[at] ?? 0) & 15;
  const baseSize = (bytes[at + 1] ?? 0) >> 4;
  const indexSize = version > 0 ? (bytes[at + 1] ?? 0) & 15 : 0;
  at += 2;
  const read = (pos: number, size: number): number =>
    size === 4 ? bytes.readUInt32BE(pos) : size === 8 ? Number(bytes.readBigUInt64BE(pos)) : 0;
  const write = (pos: number, size: number, value: number): void => {
    if (size === 4) bytes.writeUInt32BE(value, pos);
    else if (size === 8) bytes.writeBigUInt64BE(BigInt(value), pos);
  };
  const items = version < 2 ? bytes.readUInt16BE(at) : bytes.readUInt32BE(at);
  at += version < 2 ? 2 : 4;
  for (let i = 0; i < items; i++) {
    at += (version < 2 ? 2 : 4) + (version > 0 ? 2 : 0) + 2;
    const base = read(at, baseSize);
    if (baseSize > 0 && base > 0) write(at, baseSize, base + delta);
    at += baseSize;
    const extents = bytes.readUInt16BE(at);
    at += 2;
    for (let e = 0; e < extents; e++) {
      at += indexSize;
      if (!(baseSize > 0 && base > 0) && offsetSize > 0) write(at, offsetSize, read(at, offsetSize) + delta);
      at += offsetSize + lengthSize;
    }
  }
}

async function hevcHeic(): Promise<Buffer> {
  const avif = Buffer.from(
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
      .avif()
      .toBuffer(),
  );
  const meta = children(avif, 0, avif.length).find((b) => b.type === 'meta');
  if (meta === undefined) throw new Error('no meta box');
  const iprp = child(avif, meta, 'iprp', 12);
  const ipco = child(avif, iprp, 'ipco');
  const av1C = child(avif, ipco, 'av1C');
  // HEVCDecoderConfigurationRecord: Main profile, level 3.1, 4:2:0, 8 bit, no parameter-set arrays
  const hvcC = Buffer.concat([
    Buffer.alloc(4),
    Buffer.from('hvcC', 'latin1'),
    Buffer.from([1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x5d, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0]),
  ]);
  hvcC.writeUInt32BE(hvcC.length, 0);
  const delta = hvcC.length - av1C.size;
  for (const box of [meta, iprp, ipco]) avif.writeUInt32BE(box.size + delta, box.at);
  shiftItemOffsets(avif, child(avif, meta, 'iloc', 12), delta);
  const heic = Buffer.concat([avif.subarray(0, av1C.at), hvcC, avif.subarray(av1C.at + av1C.size)]);
  for (let at = heic.indexOf('avif'); at >= 0 && at < 64; at = heic.indexOf('avif')) heic.write('heic', at, 'latin1');
  heic.write('hvc1', heic.indexOf('av01'), 'latin1');
  return heic;
}

const fixture = useFixtureServer();

it('refuses an HEVC-coded HEIC with 415 IMAGE_UNSUPPORTED_FORMAT naming the coding', async () => {
  const heic = await hevcHeic();
  // the precondition of the case: its header reads as HEVC
  expect(await sharp(heic).metadata()).toMatchObject({ format: 'heif', compression: 'hevc', width: 64, height: 48 });
  const response = await fetch(`${fixture.server.url}/v1/detect`, {
    method: 'POST',
    body: heic,
    headers: { 'Content-Type': 'image/heic' },
  });
  expect(response.status).toBe(415);
  const body = (await response.json()) as ErrorBody;
  expect(body.error.code).toBe('IMAGE_UNSUPPORTED_FORMAT');
  expect(body.error.message).toContain('hevc-coded');
});

it('still decodes the AVIF-coded original', async () => {
  const avif = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
    .avif()
    .toBuffer();
  const response = await fetch(`${fixture.server.url}/v1/detect`, { method: 'POST', body: avif });
  expect(response.status).toBe(200);
  expect(await response.json()).toMatchObject({ width: 64, height: 48 });
});
