/**
 * pycocotools' `COCOeval.summarize()`: the 12 standard numbers and their text lines, plus the
 * per-category numbers detectron2/mmdet print. Means are numpy's (pairwise, blockwise), so every
 * value equals pycocotools' bit for bit.
 */
import type { CocoEvaluation } from './cocoeval';
import { formatFixed, numpyMean } from './numeric';
import { CocoEvalError } from './errors';

interface StatSpec {
  /** Average precision (true) or average recall (false). */
  ap: boolean;
  /** One IoU threshold (selected by exact equality, as pycocotools does) or all of them. */
  iouThr?: number;
  area: string;
  maxDets: number;
}

const STAT_SPECS: readonly StatSpec[] = [
  { ap: true, area: 'all', maxDets: 100 },
  { ap: true, iouThr: 0.5, area: 'all', maxDets: 100 },
  { ap: true, iouThr: 0.75, area: 'all', maxDets: 100 },
  { ap: true, area: 'small', maxDets: 100 },
  { ap: true, area: 'medium', maxDets: 100 },
  { ap: true, area: 'large', maxDets: 100 },
  { ap: false, area: 'all', maxDets: 1 },
  { ap: false, area: 'all', maxDets: 10 },
  { ap: false, area: 'all', maxDets: 100 },
  { ap: false, area: 'small', maxDets: 100 },
  { ap: false, area: 'medium', maxDets: 100 },
  { ap: false, area: 'large', maxDets: 100 },
];

export const STAT_LABELS: readonly string[] = [
  'AP@[.50:.95] all maxDets=100',
  'AP@.50 all maxDets=100',
  'AP@.75 all maxDets=100',
  'AP@[.50:.95] small maxDets=100',
  'AP@[.50:.95] medium maxDets=100',
  'AP@[.50:.95] large maxDets=100',
  'AR@[.50:.95] all maxDets=1',
  'AR@[.50:.95] all maxDets=10',
  'AR@[.50:.95] all maxDets=100',
  'AR@[.50:.95] small maxDets=100',
  'AR@[.50:.95] medium maxDets=100',
  'AR@[.50:.95] large maxDets=100',
];

export interface CategoryMetrics {
  category_id: number;
  name: string;
  /** AP@[.50:.95], area all, maxDets 100; -1 when the category has no non-crowd GT. */
  ap: number;
  ap50: number;
  ap75: number;
  ap_small: number;
  ap_medium: number;
  ap_large: number;
  ar1: number;
  ar10: number;
  ar100: number;
  ar_small: number;
  ar_medium: number;
  ar_large: number;
  num_gt_non_crowd: number;
  /** Detections scored (after the per image maxDets cut). */
  num_detections: number;
}

export interface EvalSummary {
  /** The 12 `COCOeval.stats`, in pycocotools order (see STAT_LABELS); -1 where undefined. */
  stats: number[];
  /** Mean precision per IoU threshold (area all, maxDets 100). */
  ap_per_iou_threshold: number[];
  per_category: CategoryMetrics[];
  /** The 12 lines `summarize()` prints. */
  summary_text: string[];
}

/** Which slice of precision/recall to average: entries > -1 in numpy C order. */
interface Slice {
  ap: boolean;
  /** IoU threshold indices to include. */
  ts: readonly number[];
  /** Category indices to include. */
  ks: readonly number[];
  a: number;
  m: number;
}

function sliceMean(ev: CocoEvaluation, slice: Slice, scratch: Float64Array): number {
  const n = slice.ap ? gatherPrecision(ev, slice, scratch) : gatherRecall(ev, slice, scratch);
  return n === 0 ? -1 : numpyMean(scratch, n);
}

function gatherPrecision(ev: CocoEvaluation, slice: Slice, out: Float64Array): number {
  const { R, K, A, M } = ev.dims;
  const precision = ev.precision;
  let n = 0;
  for (const t of slice.ts) {
    for (let r = 0; r < R; r++) {
      for (const k of slice.ks) {
        const v = precision[(((t * R + r) * K + k) * A + slice.a) * M + slice.m]!;
        if (v > -1) out[n++] = v;
      }
    }
  }
  return n;
}

function gatherRecall(ev: CocoEvaluation, slice: Slice, out: Float64Array): number {
  const { K, A, M } = ev.dims;
  const recall = ev.recall;
  let n = 0;
  for (const t of slice.ts) {
    for (const k of slice.ks) {
      const v = recall[((t * K + k) * A + slice.a) * M + slice.m]!;
      if (v > -1) out[n++] = v;
    }
  }
  return n;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function indexOrThrow(values: readonly number[] | readonly string[], wanted: number | string, what: string): number {
  const index = (values as readonly (number | string)[]).indexOf(wanted);
  // evaluation params without COCO's summary settings (e.g. maxDets without 100) cannot be summarized
  if (index < 0) throw new CocoEvalError('INVALID_ARGUMENT', `summarize: the evaluation has no ${what} ${String(wanted)}`);
  return index;
}

/** `COCOeval.summarize()` and per-category metrics. */
export function summarize(ev: CocoEvaluation): EvalSummary {
  const { T, R, K } = ev.dims;
  const p = ev.params;
  const scratch = new Float64Array(Math.max(1, T * R * K));
  const allT = range(T);
  const allK = range(K);
  const iouThrs = Array.from(p.iouThrs);
  const tsFor = (iouThr: number | undefined): number[] => (iouThr === undefined ? allT : allT.filter((t) => iouThrs[t] === iouThr));
  const area = (label: string): number => indexOrThrow(p.areaLabels, label, 'area range');
  const maxDet = (value: number): number => indexOrThrow(p.maxDets, value, 'maxDets');

  const stats = STAT_SPECS.map((spec) =>
    sliceMean(ev, { ap: spec.ap, ts: tsFor(spec.iouThr), ks: allK, a: area(spec.area), m: maxDet(spec.maxDets) }, scratch),
  );
  const all = area('all');
  const m100 = maxDet(100);
  const apPerIou = allT.map((t) => sliceMean(ev, { ap: true, ts: [t], ks: allK, a: all, m: m100 }, scratch));

  const perCategory = allK.map((k): CategoryMetrics => {
    const ks = [k];
    const ap = (iouThr: number | undefined, areaLabel: string): number =>
      sliceMean(ev, { ap: true, ts: tsFor(iouThr), ks, a: area(areaLabel), m: m100 }, scratch);
    const ar = (areaLabel: string, maxDets: number): number =>
      sliceMean(ev, { ap: false, ts: allT, ks, a: area(areaLabel), m: maxDet(maxDets) }, scratch);
    return {
      category_id: ev.categoryIds[k]!,
      name: ev.categoryNames[k]!,
      ap: ap(undefined, 'all'),
      ap50: ap(0.5, 'all'),
      ap75: ap(0.75, 'all'),
      ap_small: ap(undefined, 'small'),
      ap_medium: ap(undefined, 'medium'),
      ap_large: ap(undefined, 'large'),
      ar1: ar('all', 1),
      ar10: ar('all', 10),
      ar100: ar('all', 100),
      ar_small: ar('small', 100),
      ar_medium: ar('medium', 100),
      ar_large: ar('large', 100),
      num_gt_non_crowd: ev.gtCount[k * ev.dims.A + all]!,
      num_detections: ev.detectionCount[k]!,
    };
  });

  const iouRange = `${formatFixed(p.iouThrs[0]!, 2)}:${formatFixed(p.iouThrs[T - 1]!, 2)}`;
  const summaryText = STAT_SPECS.map((spec, i) => {
    const title = (spec.ap ? 'Average Precision' : 'Average Recall').padEnd(18);
    const type = spec.ap ? '(AP)' : '(AR)';
    const iou = (spec.iouThr === undefined ? iouRange : formatFixed(spec.iouThr, 2)).padEnd(9);
    const maxDets = String(spec.maxDets).padStart(3);
    return ` ${title} ${type} @[ IoU=${iou} | area=${spec.area.padStart(6)} | maxDets=${maxDets} ] = ${formatFixed(stats[i]!, 3)}`;
  });

  return { stats, ap_per_iou_threshold: apPerIou, per_category: perCategory, summary_text: summaryText };
}
