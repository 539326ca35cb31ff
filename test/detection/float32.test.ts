import { expf, roundHalfToEven } from '../../src/detection/float32';
import { float32FromBase64, readTorchvisionFixture } from './hash-values';

interface Float32Fixture {
  exp_inputs: string;
  exp: string;
  round_inputs: number[];
  round: number[];
}

const fixture = readTorchvisionFixture<Float32Fixture>('float32.json');

describe('expf', () => {
  it('equals torch.exp bit for bit on edge values and 4000 values in [-32, 32)', () => {
    const inputs = float32FromBase64(fixture.exp_inputs);
    const expected = float32FromBase64(fixture.exp);
    const mismatches: string[] = [];
    inputs.forEach((x, i) => {
      if (!Object.is(expf(x), expected[i])) mismatches.push(`exp(${x}) = ${expf(x)}, torch ${expected[i]}`);
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

describe('roundHalfToEven', () => {
  it('equals torch.round', () => {
    expect(fixture.round_inputs.map(roundHalfToEven)).toEqual(fixture.round);
    expect(Object.is(roundHalfToEven(-0.5), -0)).toBe(true);
  });
});
