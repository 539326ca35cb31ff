/**
 * Non-maximum suppression with torchvision's CPU semantics (torchvision/csrc/ops/cpu/nms_kernel.cpp):
 * boxes are visited in descending score order, ties in input order (a stable sort); a kept box
 * suppresses every later box whose float32 IoU with it is > iouThreshold. A zero-area pair has
 * IoU 0/0 = NaN, which suppresses nothing.
 */

import { checkPacked } from './packed';

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { floor, fround, max, min, sqrt } = Math;

/** Indices of boxes sorted by descending score; equal scores keep input order. */
export function argsortDescending(scores: Float32Array, indices?: Int32Array): Int32Array {
  const order = indices ? Int32Array.from(indices) : Int32Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return order;
}

/**
 * Greedy NMS over the boxes listed in `candidates` (all boxes when omitted).
 * Returns the kept box indices in descending score order (torchvision `nms`); with `maxKeep`, only
 * the first `maxKeep` of them (the same prefix, found sooner: later boxes cannot change it).
 *
 * @example
 * const keep = nms(new Float32Array([0, 0, 10, 10, 1, 1, 10, 10]), new Float32Array([0.9, 0.8]), 0.5); // [0]
 */
export function nms(
  boxes: Float32Array,
  scores: Float32Array,
  iouThreshold: number,
  candidates?: Int32Array,
  maxKeep = Infinity,
): Int32Array {
  const sorted = sortedBoxes(boxes, scores, candidates);
  if (sorted.order.length === 0) return new Int32Array(0);
  return sweepApplies(sorted, iouThreshold) ? greedySwept(sorted, iouThreshold, maxKeep) : greedyAllPairs(sorted, iouThreshold, maxKeep);
}

/**
 * The same NMS, always comparing every pair (the reference the swept form is tested against).
 * Same arguments and result as `nms`.
 */
export function nmsAllPairs(
  boxes: Float32Array,
  scores: Float32Array,
  iouThreshold: number,
  candidates?: Int32Array,
  maxKeep = Infinity,
): Int32Array {
  const sorted = sortedBoxes(boxes, scores, candidates);
  if (sorted.order.length === 0) return new Int32Array(0);
  return greedyAllPairs(sorted, iouThreshold, maxKeep);
}

/** Boxes in descending score order, coordinates copied so the inner loops read memory sequentially. */
interface SortedBoxes {
  order: Int32Array;
  x1: Float32Array;
  y1: Float32Array;
  x2: Float32Array;
  y2: Float32Array;
  area: Float32Array;
}

/** `boxes` is `[N, 4]` packed for N = scores.length; `candidates` (default all) are indices into scores. */
function sortedBoxes(boxes: Float32Array, scores: Float32Array, candidates: Int32Array | undefined): SortedBoxes {
  checkPacked('boxes', boxes, scores.length, 4);
  const order = argsortDescending(scores, candidates);
  const n = order.length;
  const sorted: SortedBoxes = {
    order,
    x1: new Float32Array(n),
    y1: new Float32Array(n),
    x2: new Float32Array(n),
    y2: new Float32Array(n),
    area: new Float32Array(n),
  };
  const { x1, y1, x2, y2, area } = sorted;
  for (let k = 0; k < n; k++) {
    const o = order[k]! * 4;
    x1[k] = boxes[o]!;
    y1[k] = boxes[o + 1]!;
    x2[k] = boxes[o + 2]!;
    y2[k] = boxes[o + 3]!;
    area[k] = fround(x2[k]! - x1[k]!) * fround(y2[k]! - y1[k]!);
  }
  return sorted;
}

/**
 * Whether box `j` is suppressed by box `i` (both indices in score order), with the float32 arithmetic
 * of torchvision's kernel: std::max(0, d) (a NaN difference counts as 0), inter / (area_i + area_j - inter).
 */
function suppresses(b: SortedBoxes, i: number, j: number, iouThreshold: number, skipDisjoint: boolean): boolean {
  const dw = fround(min(b.x2[i]!, b.x2[j]!) - max(b.x1[i]!, b.x1[j]!));
  // biome-ignore lint/complexity/useMathMinMax: Math.max(dw, 0) is NaN for a NaN difference; std::max(0, d) and this give 0
  const w = dw > 0 ? dw : 0;
  if (w === 0 && skipDisjoint) return false;
  const dh = fround(min(b.y2[i]!, b.y2[j]!) - max(b.y1[i]!, b.y1[j]!));
  // biome-ignore lint/complexity/useMathMinMax: as for w
  const h = dh > 0 ? dh : 0;
  if (h === 0 && skipDisjoint) return false;
  const inter = fround(w * h);
  const iou = fround(inter / fround(fround(b.area[i]! + b.area[j]!) - inter));
  return iou > iouThreshold;
}

function greedyAllPairs(b: SortedBoxes, iouThreshold: number, maxKeep: number): Int32Array {
  const n = b.order.length;
  // Disjoint boxes have IoU 0 (0/0 = NaN for two empty ones), which only a negative threshold exceeds.
  const skipDisjoint = iouThreshold >= 0;
  const suppressed = new Uint8Array(n);
  const keep = new Int32Array(n);
  let kept = 0;
  for (let i = 0; i < n && kept < maxKeep; i++) {
    if (suppressed[i] === 1) continue;
    keep[kept++] = b.order[i]!;
    for (let j = i + 1; j < n; j++) {
      if (suppressed[j] === 0 && suppresses(b, i, j, iouThreshold, skipDisjoint)) suppressed[j] = 1;
    }
  }
  return keep.slice(0, kept);
}

/**
 * Lowest threshold the swept form takes: its window grows like 1/t, and just above it the margin
 * below (SWEEP_MARGIN) must stay small against t.
 */
const SWEEP_MIN_THRESHOLD = 0.05;
/** How far below the threshold the window's bound is taken, to cover float32 rounding of the IoU (relative error < 1e-6). */
const SWEEP_MARGIN = 1e-4;

function sweepApplies(b: SortedBoxes, iouThreshold: number): boolean {
  if (!(iouThreshold >= SWEEP_MIN_THRESHOLD) || b.order.length < 64) return false;
  for (let k = 0; k < b.order.length; k++) {
    if (!(Number.isFinite(b.x1[k]) && Number.isFinite(b.x2[k]) && Number.isFinite(b.y1[k]) && Number.isFinite(b.y2[k]))) return false;
  }
  return true;
}

/**
 * Greedy NMS that compares a kept box only with the boxes whose top-left corner is near its own;
 * exactly the result of `greedyAllPairs` (the pairs it skips have IoU below the threshold, with room
 * for float32 rounding).
 *
 * Why: for axis-aligned boxes IoU <= IoU of their x-intervals (i ∩ j = ix·iy, and iy <= each height gives
 * ix·iy·(wi + wj - ix) <= ix·(areai + areaj - ix·iy)). An x-IoU above t needs
 * |x1i - x1j| + |x2i - x2j| = union - inter < (1 - t)·union <= (1 - t)·(wi + wj), and wj < wi / t
 * (x-IoU <= min(w) / max(w)); so a suppressed box has |x1i - x1j| < (1 - t)·(1 + 1/t)·wi, and the same
 * in y with the heights. The boxes are put in a grid by (x1, y1); a kept box looks only at the cells its
 * window touches. Each pair is decided by the same float32 test as before, and whether `i` suppresses
 * one box does not depend on the others, so the visiting order changes nothing.
 */
function greedySwept(b: SortedBoxes, iouThreshold: number, maxKeep: number): Int32Array {
  const n = b.order.length;
  const t = iouThreshold - SWEEP_MARGIN;
  const reach = (1 - t) * (1 + 1 / t) * (1 + SWEEP_MARGIN);
  const grid = boxGrid(b, reach);
  const { x1, y1, x2, y2, area, rank, position, cellStart, columns, rows, cellSize, originX, originY } = grid;
  const suppressed = new Uint8Array(n);
  const keep = new Int32Array(n);
  let kept = 0;
  for (let i = 0; i < n && kept < maxKeep; i++) {
    const p = position[i]!;
    if (suppressed[p] === 1) continue;
    keep[kept++] = b.order[i]!;
    const ix1 = x1[p]!;
    const iy1 = y1[p]!;
    const ix2 = x2[p]!;
    const iy2 = y2[p]!;
    const iarea = area[p]!;
    const spanX = reach * (ix2 - ix1);
    const spanY = reach * (iy2 - iy1);
    if (!(spanX > 0 && spanY > 0)) continue; // a box of no width or height overlaps nothing
    const c0 = max(0, floor((ix1 - spanX - originX) / cellSize));
    const c1 = min(columns - 1, floor((ix1 + spanX - originX) / cellSize));
    const r0 = max(0, floor((iy1 - spanY - originY) / cellSize));
    const r1 = min(rows - 1, floor((iy1 + spanY - originY) / cellSize));
    for (let r = r0; r <= r1; r++) {
      const end = cellStart[r * columns + c1 + 1]!;
      for (let q = cellStart[r * columns + c0]!; q < end; q++) {
        if (suppressed[q] === 1 || rank[q]! <= i) continue;
        const dx = x1[q]! - ix1;
        const dy = y1[q]! - iy1;
        if (dx >= spanX || -dx >= spanX || dy >= spanY || -dy >= spanY) continue;
        // torchvision's float32 test, as in greedyAllPairs (no NaN here: sweepApplies checked).
        const dw = fround(min(ix2, x2[q]!) - max(ix1, x1[q]!));
        if (!(dw > 0)) continue;
        const dh = fround(min(iy2, y2[q]!) - max(iy1, y1[q]!));
        if (!(dh > 0)) continue;
        const inter = fround(dw * dh);
        if (fround(inter / fround(fround(iarea + area[q]!) - inter)) > iouThreshold) suppressed[q] = 1;
      }
    }
  }
  return keep.slice(0, kept);
}

/** The boxes bucketed by the grid cell of (x1, y1), row-major cells, each cell's boxes contiguous. */
interface BoxGrid {
  x1: Float32Array;
  y1: Float32Array;
  x2: Float32Array;
  y2: Float32Array;
  area: Float32Array;
  /** Score rank of the box at each grid position, and the grid position of each rank. */
  rank: Int32Array;
  position: Int32Array;
  /** Boxes of cell c are at positions cellStart[c] .. cellStart[c + 1] - 1. */
  cellStart: Int32Array;
  columns: number;
  rows: number;
  cellSize: number;
  originX: number;
  originY: number;
}

/** Cells a third of a typical box's window (the median; measured: 1/2 to 1/4 alike, the whole window slower), at most ~4 per box. */
function boxGrid(b: SortedBoxes, reach: number): BoxGrid {
  const n = b.order.length;
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const spans = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    minX = min(minX, b.x1[k]!);
    maxX = max(maxX, b.x1[k]!);
    minY = min(minY, b.y1[k]!);
    maxY = max(maxY, b.y1[k]!);
    spans[k] = reach * max(b.x2[k]! - b.x1[k]!, b.y2[k]! - b.y1[k]!, 0);
  }
  spans.sort();
  const extent = max(maxX - minX, maxY - minY, 1e-6);
  const cellSize = max(spans[n >> 1]! / 3, extent / (2 * sqrt(n)), 1e-6);
  const columns = min(floor((maxX - minX) / cellSize) + 1, 4 * n);
  const rows = min(floor((maxY - minY) / cellSize) + 1, 4 * n);
  const cellOf = new Int32Array(n);
  const cellStart = new Int32Array(columns * rows + 1);
  for (let k = 0; k < n; k++) {
    const c = min(columns - 1, floor((b.x1[k]! - minX) / cellSize));
    const r = min(rows - 1, floor((b.y1[k]! - minY) / cellSize));
    cellOf[k] = r * columns + c;
    cellStart[cellOf[k]! + 1]!++;
  }
  for (let c = 0; c < columns * rows; c++) cellStart[c + 1]! += cellStart[c]!;
  const fill = cellStart.slice(0, columns * rows);
  const grid: BoxGrid = {
    x1: new Float32Array(n),
    y1: new Float32Array(n),
    x2: new Float32Array(n),
    y2: new Float32Array(n),
    area: new Float32Array(n),
    rank: new Int32Array(n),
    position: new Int32Array(n),
    cellStart,
    columns,
    rows,
    cellSize,
    originX: minX,
    originY: minY,
  };
  for (let k = 0; k < n; k++) {
    const q = fill[cellOf[k]!]!++;
    grid.rank[q] = k;
    grid.position[k] = q;
    grid.x1[q] = b.x1[k]!;
    grid.y1[q] = b.y1[k]!;
    grid.x2[q] = b.x2[k]!;
    grid.y2[q] = b.y2[k]!;
    grid.area[q] = b.area[k]!;
  }
  return grid;
}

/**
 * NMS independently per group (class or level): torchvision `batched_nms`, including its choice of
 * algorithm, because the two differ in float32 rounding: up to 1000 boxes it offsets each group's
 * boxes by `group * (max coordinate + 1)` and runs one NMS (the "coordinate trick"); above that it
 * runs NMS per group and merges by descending score.
 * Returns kept indices in descending score order (the first `maxKeep` of them).
 */
export function batchedNms(
  boxes: Float32Array,
  scores: Float32Array,
  groups: Int32Array,
  iouThreshold: number,
  maxKeep = Infinity,
): Int32Array {
  const count = scores.length;
  checkPacked('boxes', boxes, count, 4);
  checkPacked('groups', groups, count, 1);
  if (count === 0) return new Int32Array(0);
  if (count * 4 > 4000) return batchedNmsPerGroup(boxes, scores, groups, iouThreshold, maxKeep);
  let maxCoordinate = -Infinity;
  for (let i = 0; i < boxes.length; i++) if (boxes[i]! > maxCoordinate) maxCoordinate = boxes[i]!;
  const groupSpan = fround(maxCoordinate + 1);
  const shifted = new Float32Array(boxes.length);
  for (let i = 0; i < count; i++) {
    const offset = fround(groups[i]! * groupSpan);
    for (let k = 0; k < 4; k++) shifted[i * 4 + k] = boxes[i * 4 + k]! + offset;
  }
  return nms(shifted, scores, iouThreshold, undefined, maxKeep);
}

function batchedNmsPerGroup(
  boxes: Float32Array,
  scores: Float32Array,
  groups: Int32Array,
  iouThreshold: number,
  maxKeep: number,
): Int32Array {
  const members = new Map<number, number[]>();
  for (let i = 0; i < groups.length; i++) {
    const list = members.get(groups[i]!);
    if (list) list.push(i);
    else members.set(groups[i]!, [i]);
  }
  const keepMask = new Uint8Array(scores.length);
  for (const indices of members.values()) {
    // A group's boxes after its first maxKeep kept ones rank below maxKeep others: they cannot make the cut.
    for (const i of nms(boxes, scores, iouThreshold, Int32Array.from(indices), maxKeep)) keepMask[i] = 1;
  }
  const kept: number[] = [];
  for (let i = 0; i < keepMask.length; i++) if (keepMask[i] === 1) kept.push(i);
  const ordered = argsortDescending(scores, Int32Array.from(kept));
  return ordered.length > maxKeep ? ordered.slice(0, maxKeep) : ordered;
}
