/**
 * Test inputs generated identically here and in tools/fixtures/make_torchvision_unit_fixtures.py
 * (hash24, hash_value, hash_boxes there), so the torchvision fixtures need not store them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Knuth multiplicative hash of (index, salt), top 24 bits. */
export function hash24(index: number, salt: number): number {
  return Math.imul(index + salt * 1000003, 2654435761 | 0) >>> 8;
}

/** float32-exact value in [low, high); high - low must be a power of two. */
export function hashValue(index: number, salt: number, low: number, high: number): number {
  return low + (hash24(index, salt) * (high - low)) / 2 ** 24;
}

export function hashArray(count: number, salt: number, low: number, high: number): Float32Array {
  return Float32Array.from({ length: count }, (_, i) => hashValue(i, salt, low, high));
}

/** Quarter-pixel boxes: x1, y1 in [0, extent), sides in [0, maxSide). */
export function hashBoxes(count: number, salt: number, extent: number, maxSide: number): Float32Array {
  const quarter = (v: number): number => Math.floor(v * 4) / 4;
  const boxes = new Float32Array(count * 4);
  for (let i = 0; i < count; i++) {
    const x1 = quarter(hashValue(i, salt, 0, extent));
    const y1 = quarter(hashValue(i, salt + 1, 0, extent));
    boxes[i * 4] = x1;
    boxes[i * 4 + 1] = y1;
    boxes[i * 4 + 2] = x1 + quarter(hashValue(i, salt + 2, 0, maxSide));
    boxes[i * 4 + 3] = y1 + quarter(hashValue(i, salt + 3, 0, maxSide));
  }
  return boxes;
}

/** float32 little-endian base64, as the fixture script writes large arrays. */
export function float32FromBase64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** The indices where `actual` differs from `expected`, by !== (exact values; NaN never equal, -0 equal to 0). */
export function unequalIndices(actual: ArrayLike<number>, expected: ArrayLike<number>): number[] {
  const indices: number[] = [];
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) indices.push(i);
  return indices;
}

export const TORCHVISION_FIXTURES = path.join(__dirname, '..', 'fixtures', 'torchvision');

export function readTorchvisionFixture<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(TORCHVISION_FIXTURES, name), 'utf8')) as T;
}

/** Units in the last place between two float32 values (0 when equal). */
export function ulpDistance(a: number, b: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat32(0, a);
  view.setFloat32(4, b);
  const ia = view.getInt32(0);
  const ib = view.getInt32(4);
  const ordered = (i: number): number => (i < 0 ? -(i & 0x7fffffff) : i);
  return Math.abs(ordered(ia) - ordered(ib));
}
