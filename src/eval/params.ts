/**
 * pycocotools' default bbox evaluation parameters (`Params.setDetParams`).
 *
 * The thresholds are numpy `linspace` values, not round decimals: `linspace` computes
 * `i * step + start` with `step = (stop - start) / (num - 1)` and then sets the last entry to
 * `stop`, so e.g. iouThrs[8] is 0.8999999999999999 and recThrs[35] is 0.35000000000000003.
 * Recall values are compared with these exact doubles, so round decimals would change results.
 */
export interface EvalParams {
  readonly iouThrs: Float64Array;
  readonly recThrs: Float64Array;
  /** Inclusive [min, max] GT/detection area per range; an area equal to a bound is inside. */
  readonly areaRanges: ReadonlyArray<readonly [number, number]>;
  readonly areaLabels: readonly string[];
  /** Sorted ascending; the last one is the per (image, category) cut applied before matching. */
  readonly maxDets: readonly number[];
}

/** numpy.linspace(start, stop, num) with endpoint=True, bit for bit. */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

export const DEFAULT_PARAMS: EvalParams = Object.freeze({
  iouThrs: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
  recThrs: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
  areaRanges: [
    [0, 1e10],
    [0, 32 ** 2],
    [32 ** 2, 96 ** 2],
    [96 ** 2, 1e10],
  ] as const,
  areaLabels: ['all', 'small', 'medium', 'large'],
  maxDets: [1, 10, 100],
});

export const AREA_ALL = 0;
