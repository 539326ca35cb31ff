import { expf, expfNearest, roundHalfToEven } from '../../src/detection/float32';
import { sigmoidAt } from '../../src/detection/rpn';
import { float32FromBase64, readTorchvisionFixture } from './hash-values';

interface Float32Fixture {
  exp_inputs: string;
  exp: string;
  sigmoid: string;
  round_inputs: number[];
  round: number[];
}

const fixture = readTorchvisionFixture<Float32Fixture>('float32.json');

describe('expf', () => {
  it("is the exp of torch.sigmoid (ATen's vectorized SLEEF exp): sigmoid equals torch bit for bit on 4019 values", () => {
    const inputs = float32FromBase64(fixture.exp_inputs);
    const expected = float32FromBase64(fixture.sigmoid);
    const mismatches: string[] = [];
    inputs.forEach((x, i) => {
      const ours = sigmoidAt(x, i, inputs.length);
      if (!Object.is(ours, expected[i])) mismatches.push(`sigmoid(${x}) = ${ours}, torch ${expected[i]}`);
    });
    expect(mismatches).toEqual([]);
  });

  it('differs from a correctly rounded exp on some inputs (why it exists)', () => {
    const inputs = float32FromBase64(fixture.exp_inputs);
    const differing = Array.from(inputs).filter((x) => expf(x) !== Math.fround(Math.exp(x)));
    expect(differing.length).toBeGreaterThan(0);
  });

  it('returns NaN for NaN', () => {
    expect(expf(NaN)).toBeNaN();
  });
});

describe('expfNearest', () => {
  // torch.exp goes to Intel MKL (closed source): it equals the correctly rounded value except where exp(x)
  // lies within 0.06 ulp of the midpoint between two float32s.
  it('equals torch.exp on edge values and 4000 values in [-32, 32), except 1 ulp at near-ties', () => {
    const inputs = float32FromBase64(fixture.exp_inputs);
    const expected = float32FromBase64(fixture.exp);
    let nearTies = 0;
    const mismatches: string[] = [];
    inputs.forEach((x, i) => {
      const ours = expfNearest(x);
      if (Object.is(ours, expected[i])) return;
      const exact = Math.exp(x);
      const midpoint = (ours + expected[i]!) / 2;
      const oneUlp = Math.fround(midpoint) === ours || Math.fround(midpoint) === expected[i];
      const step = Math.abs(ours - expected[i]!);
      if (oneUlp && Math.abs(exact - midpoint) < step / 16) nearTies++;
      else mismatches.push(`exp(${x}) = ${ours}, torch ${expected[i]}`);
    });
    expect(mismatches).toEqual([]);
    expect(nearTies).toBeLessThan(inputs.length / 50);
  });

  it('overflows to Infinity and underflows through the subnormals to 0, as torch.exp does', () => {
    const inputs = float32FromBase64(fixture.exp_inputs);
    const expected = float32FromBase64(fixture.exp);
    const edges = Array.from(inputs.subarray(0, 19), (x, i) => [expfNearest(x), expected[i]]);
    expect(edges.map(([ours]) => ours)).toEqual(edges.map(([, torch]) => torch));
  });
});

describe('roundHalfToEven', () => {
  it('equals torch.round', () => {
    expect(fixture.round_inputs.map(roundHalfToEven)).toEqual(fixture.round);
    expect(Object.is(roundHalfToEven(-0.5), -0)).toBe(true);
  });
});
