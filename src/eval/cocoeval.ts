/**
 * COCO bbox evaluation, equal to pycocotools' `COCOeval.evaluate()` + `accumulate()`.
 *
 * pycocotools evaluates every (image, category) pair for every area range, then accumulates per
 * (category, area range, maxDets). We do the same work with typed arrays, one category at a time:
 * IoUs are computed once per (image, category) and reused for the four area ranges, and each
 * detection's outcome (true positive / false positive / ignored) per (area range, IoU threshold)
 * goes into a byte table that accumulation walks in score order.
 * The rules that must be copied exactly are listed in docs/eval.md.
 */
import type { Detections } from './detections';
import type { GroundTruth, GroundTruthAnnotations } from './ground-truth';
import { DEFAULT_PARAMS, type EvalParams } from './params';

export interface CocoEvaluation {
  params: EvalParams;
  /** Ground-truth category ids, ascending: index k of the arrays below. */
  categoryIds: number[];
  categoryNames: string[];
  /** precision[t][r][k][a][m] (numpy C order), -1 where the category has no non-ignored GT. */
  precision: Float64Array;
  /** recall[t][k][a][m], -1 likewise. */
  recall: Float64Array;
  /** Non-ignored ground truths per [k][a]: non-crowd GT whose `area` is in the range. */
  gtCount: Int32Array;
  /** Detections per category after the per-(image, category) maxDets cut. */
  detectionCount: Int32Array;
  dims: { T: number; R: number; K: number; A: number; M: number };
}

const FALSE_POSITIVE = 0;
const TRUE_POSITIVE = 1;
const IGNORED = 2;
/** np.spacing(1): keeps tp / (tp + fp) defined when both are 0. */
const EPS = 2.220446049250313e-16;

/** Stable counting sort of `order` by `key[order[i]]` in [0, numKeys). */
function stableSortByKey(order: Uint32Array, key: Int32Array, numKeys: number): Uint32Array {
  const starts = new Int32Array(numKeys + 1);
  for (let i = 0; i < order.length; i++) starts[key[order[i]!]! + 1]!++;
  for (let k = 0; k < numKeys; k++) starts[k + 1]! += starts[k]!;
  const out = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) {
    const item = order[i]!;
    out[starts[key[item]!]!++] = item;
  }
  return out;
}

/** Start offsets of each key's run in an array sorted by key: runs[k]..runs[k+1]. */
function runStarts(order: Uint32Array, key: Int32Array, numKeys: number): Int32Array {
  const starts = new Int32Array(numKeys + 1);
  for (let i = 0; i < order.length; i++) starts[key[order[i]!]! + 1]!++;
  for (let k = 0; k < numKeys; k++) starts[k + 1]! += starts[k]!;
  return starts;
}

function identity(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/** Scratch arrays sized for the largest (image, category) pair. */
interface PairScratch {
  ious: Float64Array;
  sortedGt: Int32Array;
  sortedIgnored: Uint8Array;
  sortedCrowd: Uint8Array;
  sortedIdZero: Uint8Array;
  matched: Uint8Array;
}

/** One (image, category) pair: its detections (score order, after the cut) and its GT (file order). */
interface Pair {
  detOrder: Uint32Array;
  d0: number;
  D: number;
  gtOrder: Uint32Array;
  g0: number;
  G: number;
}

/** pycocotools' bbIou for every (detection i, GT j) of a pair, into ious[i * G + j]. */
function computeIous(pair: Pair, detBbox: Float64Array, gta: GroundTruthAnnotations, ious: Float64Array): void {
  const { detOrder, d0, D, gtOrder, g0, G } = pair;
  const gtBbox = gta.bbox;
  for (let i = 0; i < D; i++) {
    const db = 4 * detOrder[d0 + i]!;
    const dx = detBbox[db]!;
    const dy = detBbox[db + 1]!;
    const dw = detBbox[db + 2]!;
    const dh = detBbox[db + 3]!;
    const detArea = dw * dh;
    for (let j = 0; j < G; j++) {
      const g = gtOrder[g0 + j]!;
      const gb = 4 * g;
      const gx = gtBbox[gb]!;
      const gy = gtBbox[gb + 1]!;
      const gw = gtBbox[gb + 2]!;
      const gh = gtBbox[gb + 3]!;
      let iou = 0;
      const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
      if (w > 0) {
        const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
        if (h > 0) {
          const inter = w * h;
          // For a crowd region the union is the detection alone.
          const union = gta.crowd[g] === 1 ? detArea : detArea + gw * gh - inter;
          iou = inter / union;
        }
      }
      ious[i * G + j] = iou;
    }
  }
}

/**
 * Orders a pair's GT for one area range: non-ignored first, file order kept within each part
 * (pycocotools' stable argsort of the ignore flags). Returns the number of non-ignored GT.
 */
function sortGtForArea(pair: Pair, gta: GroundTruthAnnotations, lo: number, hi: number, scratch: PairScratch): number {
  const { gtOrder, g0, G } = pair;
  let s = 0;
  let nonIgnored = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < G; j++) {
      const g = gtOrder[g0 + j]!;
      const area = gta.area[g]!;
      const ignored = gta.crowd[g] === 1 || area < lo || area > hi ? 1 : 0;
      if (ignored !== pass) continue;
      scratch.sortedGt[s] = j;
      scratch.sortedIgnored[s] = ignored;
      scratch.sortedCrowd[s] = gta.crowd[g]!;
      scratch.sortedIdZero[s] = gta.idIsZero[g]!;
      s++;
      if (ignored === 0) nonIgnored++;
    }
  }
  return nonIgnored;
}

/**
 * Greedy matching of a pair in one area range at every IoU threshold (pycocotools' evaluateImg
 * inner loops). Writes each detection's outcome to outcome[(areaIndex * T + t) * capacity + position].
 */
function matchForArea(
  pair: Pair,
  detBbox: Float64Array,
  thresholds: Float64Array,
  lo: number,
  hi: number,
  scratch: PairScratch,
  outcome: Outcomes,
  areaIndex: number,
): void {
  const { detOrder, d0, D, G } = pair;
  const { ious, sortedGt, sortedIgnored, sortedCrowd, sortedIdZero, matched } = scratch;
  const T = thresholds.length;
  for (let t = 0; t < T; t++) {
    const threshold = thresholds[t]!;
    const columnBase = (areaIndex * T + t) * outcome.capacity;
    matched.fill(0, 0, G);
    for (let i = 0; i < D; i++) {
      let best = threshold;
      let m = -1;
      const iouRow = i * G;
      for (let s = 0; s < G; s++) {
        // A crowd region can absorb any number of detections.
        if (matched[s] === 1 && sortedCrowd[s] === 0) continue;
        // Once matched to a real GT, never move on to an ignored one.
        if (m > -1 && sortedIgnored[m] === 0 && sortedIgnored[s] === 1) break;
        const iou = ious[iouRow + sortedGt[s]!]!;
        if (iou < best) continue;
        // ">=": IoU equal to the threshold matches, and on equal IoU the later GT wins.
        best = iou;
        m = s;
      }
      const det = detOrder[d0 + i]!;
      const detArea = detBbox[4 * det + 2]! * detBbox[4 * det + 3]!;
      const outsideRange = detArea < lo || detArea > hi;
      let result: number;
      if (m === -1) {
        result = outsideRange ? IGNORED : FALSE_POSITIVE;
      } else {
        matched[m] = 1;
        if (sortedIdZero[m] === 1) {
          // pycocotools records the matched GT's id, so a match to id 0 reads as "unmatched".
          result = sortedIgnored[m] === 1 || outsideRange ? IGNORED : FALSE_POSITIVE;
        } else {
          result = sortedIgnored[m] === 1 ? IGNORED : TRUE_POSITIVE;
        }
      }
      outcome.table[columnBase + outcome.position[det]!] = result;
    }
  }
}

/**
 * Outcome of each kept detection of the current category, column-major: one column per
 * (area range, IoU threshold), rows in accumulation order so accumulation reads sequentially.
 */
interface Outcomes {
  table: Uint8Array;
  capacity: number;
  /** Row of each detection (indexed by detection) in accumulation order. */
  position: Int32Array;
  /** Rank inside its (image, category) pair of the detection at each row. */
  rankAt: Int32Array;
}

/**
 * pycocotools' accumulate for one (category, area, maxDets, IoU threshold) over the category's
 * `count` kept detections: precision at each recall threshold into
 * `precisionOut[precisionOffset + r * precisionStride]`; returns the recall.
 */
function accumulateCurve(
  outcome: Outcomes,
  count: number,
  column: number,
  maxDet: number,
  npig: number,
  recThrs: Float64Array,
  rc: Float64Array,
  pr: Float64Array,
  precisionOut: Float64Array,
  precisionOffset: number,
  precisionStride: number,
): number {
  const { table, rankAt } = outcome;
  const base = column * outcome.capacity;
  let tp = 0;
  let fp = 0;
  let nd = 0;
  for (let i = 0; i < count; i++) {
    if (rankAt[i]! >= maxDet) continue;
    const result = table[base + i]!;
    // Ignored detections are neither TP nor FP; dropping them leaves every precision value unchanged.
    if (result === IGNORED) continue;
    if (result === TRUE_POSITIVE) tp++;
    else fp++;
    rc[nd] = tp / npig;
    pr[nd] = tp / (fp + tp + EPS);
    nd++;
  }
  for (let i = nd - 1; i > 0; i--) if (pr[i]! > pr[i - 1]!) pr[i - 1] = pr[i]!;
  // searchsorted(rc, recThrs, side='left'); thresholds past the last recall keep precision 0.
  let p = 0;
  for (let r = 0; r < recThrs.length; r++) {
    const threshold = recThrs[r]!;
    while (p < nd && rc[p]! < threshold) p++;
    precisionOut[precisionOffset + r * precisionStride] = p < nd ? pr[p]! : 0;
  }
  return nd > 0 ? rc[nd - 1]! : 0;
}

/** Largest number of GT in one (image, category) pair (GT sorted by category, then image). */
function largestPair(gtOrder: Uint32Array, gta: GroundTruthAnnotations): number {
  let largest = 0;
  let runStart = 0;
  for (let i = 1; i <= gtOrder.length; i++) {
    if (
      i < gtOrder.length &&
      gta.categoryIndex[gtOrder[i]!] === gta.categoryIndex[gtOrder[runStart]!] &&
      gta.imageIndex[gtOrder[i]!] === gta.imageIndex[gtOrder[runStart]!]
    ) {
      continue;
    }
    largest = Math.max(largest, i - runStart);
    runStart = i;
  }
  return largest;
}

/**
 * Evaluates detections against ground truth with pycocotools' bbox rules.
 *
 * @example
 *   const gt = loadGroundTruthFile('instances_val2017.json');
 *   const dets = loadDetectionsFile('results.json', gt);
 *   const evaluation = evaluateDetections(gt, dets);
 *   console.log(summarize(evaluation).stats[0]); // AP@[.50:.95]
 */
export function evaluateDetections(gt: GroundTruth, dets: Detections, params: EvalParams = DEFAULT_PARAMS): CocoEvaluation {
  const T = params.iouThrs.length;
  const R = params.recThrs.length;
  const K = gt.categoryIds.length;
  const A = params.areaRanges.length;
  const M = params.maxDets.length;
  const numImages = gt.images.length;
  const maxDetsLast = params.maxDets[M - 1]!;

  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  const gtCount = new Int32Array(K * A);
  const detectionCount = new Int32Array(K);

  // Accumulation order within a category is (score desc, image asc, file order). Grouping by
  // (category, image) from there keeps (score desc, file order) inside each pair, which is
  // pycocotools' stable mergesort by score.
  const n = dets.count;
  const score = dets.score;
  const detImage = dets.imageIndex;
  const detCategory = dets.categoryIndex;
  const byScore = identity(n).sort((a, b) => score[b]! - score[a]! || detImage[a]! - detImage[b]! || a - b);
  const accumulationOrder = stableSortByKey(byScore, detCategory, K);
  const pairOrder = stableSortByKey(stableSortByKey(byScore, detImage, numImages), detCategory, K);
  const detCategoryStarts = runStarts(pairOrder, detCategory, K);

  const gta = gt.annotations;
  const gtOrder = stableSortByKey(stableSortByKey(identity(gta.count), gta.imageIndex, numImages), gta.categoryIndex, K);
  const gtCategoryStarts = runStarts(gtOrder, gta.categoryIndex, K);

  let largestCategory = 1;
  for (let k = 0; k < K; k++) largestCategory = Math.max(largestCategory, detCategoryStarts[k + 1]! - detCategoryStarts[k]!);
  const rank = new Int32Array(n);
  const outcome: Outcomes = {
    table: new Uint8Array(largestCategory * A * T),
    capacity: largestCategory,
    position: new Int32Array(n),
    rankAt: new Int32Array(largestCategory),
  };
  const pairGt = Math.max(1, largestPair(gtOrder, gta));
  const scratch: PairScratch = {
    ious: new Float64Array(maxDetsLast * pairGt),
    sortedGt: new Int32Array(pairGt),
    sortedIgnored: new Uint8Array(pairGt),
    sortedCrowd: new Uint8Array(pairGt),
    sortedIdZero: new Uint8Array(pairGt),
    matched: new Uint8Array(pairGt),
  };
  const rc = new Float64Array(largestCategory);
  const pr = new Float64Array(largestCategory);
  const thresholds = params.iouThrs.map((t) => Math.min(t, 1 - 1e-10));
  const pair: Pair = { detOrder: pairOrder, d0: 0, D: 0, gtOrder, g0: 0, G: 0 };

  for (let k = 0; k < K; k++) {
    const dStart = detCategoryStarts[k]!;
    const dEnd = detCategoryStarts[k + 1]!;
    const gStart = gtCategoryStarts[k]!;
    const gEnd = gtCategoryStarts[k + 1]!;
    if (dStart === dEnd && gStart === gEnd) continue;

    // Rank of each detection inside its image (score order), then rows in accumulation order
    // for the detections that survive the maxDets cut.
    for (let i = dStart; i < dEnd; i++) {
      const det = pairOrder[i]!;
      rank[det] = i > dStart && detImage[pairOrder[i - 1]!] === detImage[det] ? rank[pairOrder[i - 1]!]! + 1 : 0;
    }
    let kept = 0;
    for (let i = dStart; i < dEnd; i++) {
      const det = accumulationOrder[i]!;
      if (rank[det]! >= maxDetsLast) continue;
      outcome.position[det] = kept;
      outcome.rankAt[kept] = rank[det]!;
      kept++;
    }
    detectionCount[k] = kept;

    // evaluateImg for every image of this category that has GT or detections.
    let d0 = dStart;
    let g0 = gStart;
    while (d0 < dEnd || g0 < gEnd) {
      const image = Math.min(d0 < dEnd ? detImage[pairOrder[d0]!]! : numImages, g0 < gEnd ? gta.imageIndex[gtOrder[g0]!]! : numImages);
      let d1 = d0;
      while (d1 < dEnd && detImage[pairOrder[d1]!] === image) d1++;
      let g1 = g0;
      while (g1 < gEnd && gta.imageIndex[gtOrder[g1]!] === image) g1++;
      pair.d0 = d0;
      pair.D = Math.min(d1 - d0, maxDetsLast);
      pair.g0 = g0;
      pair.G = g1 - g0;
      computeIous(pair, dets.bbox, gta, scratch.ious);
      for (let a = 0; a < A; a++) {
        const [lo, hi] = params.areaRanges[a]!;
        gtCount[k * A + a]! += sortGtForArea(pair, gta, lo, hi, scratch);
        matchForArea(pair, dets.bbox, thresholds, lo, hi, scratch, outcome, a);
      }
      d0 = d1;
      g0 = g1;
    }

    for (let a = 0; a < A; a++) {
      const npig = gtCount[k * A + a]!;
      if (npig === 0) continue;
      for (let m = 0; m < M; m++) {
        for (let t = 0; t < T; t++) {
          recall[((t * K + k) * A + a) * M + m] = accumulateCurve(
            outcome,
            kept,
            a * T + t,
            params.maxDets[m]!,
            npig,
            params.recThrs,
            rc,
            pr,
            precision,
            ((t * R * K + k) * A + a) * M + m,
            K * A * M,
          );
        }
      }
    }
  }

  return {
    params,
    categoryIds: gt.categoryIds,
    categoryNames: gt.categoryNames,
    precision,
    recall,
    gtCount,
    detectionCount,
    dims: { T, R, K, A, M },
  };
}
