import { formatFixed, numpyMean } from '../../src/eval/numeric';
import { linspace } from '../../src/eval/params';

/** values[i] = ((i * mult) % 1000003) / 997, the inputs the numpy references below were computed from. */
function series(n: number, mult: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => ((i * mult) % 1000003) / 997);
}

describe('numpyMean', () => {
  // Reference values: numpy 1.24.2, float(np.mean(np.array(values))).
  it.each([
    [10, 7919, 35.74272818455366],
    [200, 7919, 424.21204112337017], // pairwise differs from a left-to-right sum here
    [20000, 7919, 500.7567104814444], // blockwise (8192) differs from one pairwise sum here
    [80800, 15485863, 501.52078656762376],
  ])('equals numpy for %i values', (n, mult, expected) => {
    expect(numpyMean(series(n, mult))).toBe(expected);
  });

  it('averages only the first n entries when n is given', () => {
    expect(numpyMean(Float64Array.of(1, 2, 3, 100), 3)).toBe(2);
  });
});

describe('formatFixed (Python format spec .Nf)', () => {
  it.each([
    [0.0625, 3, '0.062'],
    [0.1875, 3, '0.188'],
    [0.3125, 3, '0.312'],
    [0.4375, 3, '0.438'],
    [-0.0625, 3, '-0.062'],
    [2.5, 0, '2'],
    [1.5, 0, '2'],
    [0.125, 2, '0.12'],
    [0.375, 2, '0.38'],
    [-1, 3, '-1.000'],
    [0.2872686963542299, 3, '0.287'],
    [0.0005, 3, '0.001'],
    [0.9995, 3, '1.000'],
    [0.8999999999999999, 2, '0.90'],
  ])('%d with %i digits is %s (as Python prints it)', (value, digits, text) => {
    expect(formatFixed(value, digits)).toBe(text);
  });
});

describe('linspace', () => {
  it('reproduces numpy.linspace values, not round decimals', () => {
    const iou = linspace(0.5, 0.95, 10);
    expect(iou[8]).toBe(0.8999999999999999);
    expect(iou[9]).toBe(0.95);
    expect(linspace(0, 1, 101)[35]).toBe(0.35000000000000003);
  });
});
