/**
 * Comparison of decoded boxes with torch 2.15's, whose `torch.exp` (Intel MKL, closed source) is
 * reproduced by `expfNearest` except at near-ties, where it is 1 ulp apart (src/detection/float32.ts).
 * Such a 1-ulp difference in `exp(dw)` moves `x1 = ctr - w/2` and `x2 = ctr + w/2` by at most one ulp
 * of the half side plus one rounding of the coordinate: 2 ulps of max(|coordinate|, side).
 */

const scratch = new Float32Array(1);
const bits = new Int32Array(scratch.buffer);

/** The spacing of float32 values at `value` (the ulp). */
export function ulp32(value: number): number {
  scratch[0] = Math.abs(value);
  const next = bits[0]! + 1;
  const here = scratch[0];
  bits[0] = next;
  return scratch[0] - here;
}

/**
 * Indices (into the flat [N, 4] arrays) where `actual` and `expected` boxes differ by more than an MKL
 * near-tie in exp can explain, and the number of coordinates that differ within that bound.
 */
export function compareDecodedBoxes(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): { beyond: number[]; withinExpRounding: number } {
  if (actual.length !== expected.length || expected.length % 4 !== 0) {
    throw new Error(`expected two [N, 4] arrays of one length, got ${actual.length} and ${expected.length} values`);
  }
  const beyond: number[] = [];
  let withinExpRounding = 0;
  for (let i = 0; i < expected.length; i++) {
    if (Object.is(actual[i], expected[i])) continue;
    const box = i - (i % 4);
    // In range: both arrays hold whole boxes of 4 (checked above), and box + 3 < length.
    const side = Math.max(expected[box + 2]! - expected[box]!, expected[box + 3]! - expected[box + 1]!);
    if (Math.abs(actual[i]! - expected[i]!) <= 2 * ulp32(Math.max(Math.abs(expected[i]!), side))) withinExpRounding++;
    else beyond.push(i);
  }
  return { beyond, withinExpRounding };
}
