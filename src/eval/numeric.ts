/**
 * Floating-point helpers that reproduce numpy/Python results bit for bit, so that our
 * numbers equal pycocotools' to the last digit rather than within a tolerance.
 */

/** numpy's pairwise_sum_DOUBLE (8 accumulators, blocks of 128, split at multiples of 8). */
function pairwiseSum(values: Float64Array, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += values[start + i]!;
    return res;
  }
  if (n <= 128) {
    let r0 = values[start]!;
    let r1 = values[start + 1]!;
    let r2 = values[start + 2]!;
    let r3 = values[start + 3]!;
    let r4 = values[start + 4]!;
    let r5 = values[start + 5]!;
    let r6 = values[start + 6]!;
    let r7 = values[start + 7]!;
    let i = 8;
    const unrolledEnd = n - (n % 8);
    for (; i < unrolledEnd; i += 8) {
      const p = start + i;
      r0 += values[p]!;
      r1 += values[p + 1]!;
      r2 += values[p + 2]!;
      r3 += values[p + 3]!;
      r4 += values[p + 4]!;
      r5 += values[p + 5]!;
      r6 += values[p + 6]!;
      r7 += values[p + 7]!;
    }
    let res = r0 + r1 + (r2 + r3) + (r4 + r5 + (r6 + r7));
    for (; i < n; i++) res += values[start + i]!;
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(values, start, n2) + pairwiseSum(values, start + n2, n - n2);
}

/** numpy's reduction iterator hands the add loop at most this many contiguous elements at a time. */
const NUMPY_BUFSIZE = 8192;

/**
 * `np.mean` of the first `n` entries of a contiguous float64 array (numpy 1.24): the sum is
 * accumulated block by block (8192 elements), each block summed pairwise, then divided by n.
 * Verified against numpy 1.24.2 for sizes from 1 to 300 001.
 */
export function numpyMean(values: Float64Array, n: number = values.length): number {
  let sum = 0;
  for (let start = 0; start < n; start += NUMPY_BUFSIZE) {
    sum += pairwiseSum(values, start, Math.min(NUMPY_BUFSIZE, n - start));
  }
  return sum / n;
}

/**
 * Python's `'{:0.<digits>f}'.format(x)`: correctly rounded, ties to even. `Number#toFixed` is
 * also exact but rounds ties away from zero; a decimal tie at d digits is only possible for
 * x = j / 2^(d+1) with j odd, so only those values need fixing.
 */
export function formatFixed(x: number, digits: number): string {
  const text = x.toFixed(digits);
  const scaled = Math.abs(x) * 2 ** (digits + 1);
  if (!Number.isInteger(scaled) || scaled % 2 !== 1 || scaled > Number.MAX_SAFE_INTEGER) return text;
  const last = text.charCodeAt(text.length - 1) - 48;
  if (last % 2 === 0) return text;
  // toFixed rounded the magnitude up to an odd last digit; ties-to-even wants the one below.
  return text.slice(0, -1) + String(last - 1);
}
