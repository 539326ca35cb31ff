/**
 * Float32 primitives that reproduce PyTorch's CPU results where JavaScript's Math would differ:
 * torch.round (half to even); the exp inside ATen's vectorized kernels (sigmoid, softmax), SLEEF's
 * `expf_u10` (max error 1 ulp, so not always the correctly rounded value that Math.exp gives), bit
 * for bit against torch 1.13 and 2.15; and torch.exp itself, which torch 2.15's PyPI x86-64 build
 * computes with Intel MKL's `vsExp` (closed source), approximated by the correctly rounded value.
 */

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { abs, exp, floor, fround } = Math;

/** torch.round / IEEE rint: halves go to the even neighbour (JavaScript's Math.round rounds them up). */
export function roundHalfToEven(value: number): number {
  const magnitude = abs(value);
  const whole = floor(magnitude);
  const diff = magnitude - whole;
  const rounded = diff < 0.5 || (diff === 0.5 && whole % 2 === 0) ? whole : whole + 1;
  return value < 0 || Object.is(value, -0) ? -rounded : rounded;
}

// SLEEF's constants as its source writes them (more digits than a double holds); fround keeps their float32.
// biome-ignore-start lint/correctness/noPrecisionLoss lint/suspicious/noApproximativeNumericConstant: SLEEF's constants
const R_LN2F = fround(1.442695040888963407359924681001892137426645954152985934135449406931);
const L2UF = fround(0.693145751953125);
const L2LF = fround(1.428606765330187045e-6);
const C0 = fround(0.000198527617612853646278381);
const C1 = fround(0.00139304355252534151077271);
const C2 = fround(0.00833336077630519866943359);
const C3 = fround(0.0416664853692054748535156);
const C4 = fround(0.166666671633720397949219);
// biome-ignore-end lint/correctness/noPrecisionLoss lint/suspicious/noApproximativeNumericConstant: SLEEF's constants

/** Adding and subtracting 1.5 * 2^52 rounds a double to an integer, halves to even (valid for |v| < 2^51). */
const RINT_SHIFT = 6755399441055744;

/** 2^k for the exponents SLEEF's ldexp2 uses on this domain, k in [-80, 80]. */
const POW2 = Float64Array.from({ length: 161 }, (_, i) => 2 ** (i - 80));

/**
 * `exp` of a float32 as torch computes it on CPU (SLEEF `xexpf`, u10, FMA build). Each fused
 * multiply-add `fround(a * b + c)` is exact in double (a float32 product has <= 48 bits).
 */
export function expf(value: number): number {
  const x = fround(value);
  if (!(x >= -104)) return Number.isNaN(x) ? NaN : 0;
  if (x > 100) return Infinity;
  const q = fround(x * R_LN2F) + RINT_SHIFT - RINT_SHIFT;
  let s = fround(q * -L2UF + x);
  s = fround(q * -L2LF + s);
  let u = C0;
  u = fround(u * s + C1);
  u = fround(u * s + C2);
  u = fround(u * s + C3);
  u = fround(u * s + C4);
  u = fround(u * s + 0.5);
  u = fround(1 + fround(fround(s * s) * u + s));
  // SLEEF's ldexp2: two power-of-two steps, so huge/tiny q scale without overflowing the exponent.
  const half = q >> 1;
  return fround(fround(u * POW2[half + 80]!) * POW2[q - half + 80]!);
}

/**
 * `torch.exp` of a float32 on torch 2.15's x86-64 PyPI build, which hands it to Intel MKL's `vsExp`
 * (high-accuracy mode; the same result under every ATEN_CPU_CAPABILITY and MKL_ENABLE_INSTRUCTIONS
 * setting). MKL's algorithm is not public; its result is the correctly rounded one except when exp(x)
 * lies within 0.06 ulp of a rounding midpoint (measured: 1.0 % of 1.5M random inputs in [-100, 100),
 * always 1 ulp), so this returns the correctly rounded value and is exact everywhere else.
 * (torchvision's box decoding calls torch.exp; SLEEF's `expf` differs from MKL on 9.4 % of those inputs.)
 */
export function expfNearest(value: number): number {
  return fround(exp(fround(value)));
}
