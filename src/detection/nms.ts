/**
 * Non-maximum suppression with torchvision's CPU semantics (torchvision/csrc/ops/cpu/nms_kernel.cpp):
 * boxes are visited in descending score order, ties in input order (a stable sort); a kept box
 * suppresses every later box whose float32 IoU with it is > iouThreshold. A zero-area pair has
 * IoU 0/0 = NaN, which suppresses nothing.
 */

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { fround, max, min } = Math;

/** Indices of boxes sorted by descending score; equal scores keep input order. */
export function argsortDescending(scores: Float32Array, indices?: Int32Array): Int32Array {
  const order = indices ? Int32Array.from(indices) : Int32Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
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
export function nms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, candidates?: Int32Array, maxKeep = Infinity): Int32Array {
  const order = argsortDescending(scores, candidates);
  const n = order.length;
  if (n === 0) return new Int32Array(0);
  // Coordinates copied into sort order: the inner loop then reads memory sequentially.
  const x1 = new Float32Array(n);
  const y1 = new Float32Array(n);
  const x2 = new Float32Array(n);
  const y2 = new Float32Array(n);
  const area = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    const o = order[k] * 4;
    x1[k] = boxes[o];
    y1[k] = boxes[o + 1];
    x2[k] = boxes[o + 2];
    y2[k] = boxes[o + 3];
    area[k] = fround(x2[k] - x1[k]) * fround(y2[k] - y1[k]);
  }
  // Disjoint boxes have IoU 0 (0/0 = NaN for two empty ones), which only a negative threshold exceeds.
  const skipDisjoint = iouThreshold >= 0;
  const suppressed = new Uint8Array(n);
  const keep = new Int32Array(n);
  let kept = 0;
  for (let i = 0; i < n && kept < maxKeep; i++) {
    if (suppressed[i] === 1) continue;
    keep[kept++] = order[i];
    const ix1 = x1[i];
    const iy1 = y1[i];
    const ix2 = x2[i];
    const iy2 = y2[i];
    const iarea = area[i];
    for (let j = i + 1; j < n; j++) {
      if (suppressed[j] === 1) continue;
      // std::max(0, d) in torchvision's kernel: a NaN difference counts as 0.
      const dw = fround(min(ix2, x2[j]) - max(ix1, x1[j]));
      const w = dw > 0 ? dw : 0;
      if (w === 0 && skipDisjoint) continue;
      const dh = fround(min(iy2, y2[j]) - max(iy1, y1[j]));
      const h = dh > 0 ? dh : 0;
      if (h === 0 && skipDisjoint) continue;
      const inter = fround(w * h);
      const iou = fround(inter / fround(fround(iarea + area[j]) - inter));
      if (iou > iouThreshold) suppressed[j] = 1;
    }
  }
  return keep.slice(0, kept);
}

/**
 * NMS independently per group (class or level): torchvision `batched_nms`, including its choice of
 * algorithm, because the two differ in float32 rounding: up to 1000 boxes it offsets each group's
 * boxes by `group * (max coordinate + 1)` and runs one NMS (the "coordinate trick"); above that it
 * runs NMS per group and merges by descending score.
 * Returns kept indices in descending score order (the first `maxKeep` of them).
 */
export function batchedNms(boxes: Float32Array, scores: Float32Array, groups: Int32Array, iouThreshold: number, maxKeep = Infinity): Int32Array {
  const count = scores.length;
  if (count === 0) return new Int32Array(0);
  if (count * 4 > 4000) return batchedNmsPerGroup(boxes, scores, groups, iouThreshold, maxKeep);
  let maxCoordinate = -Infinity;
  for (let i = 0; i < boxes.length; i++) if (boxes[i] > maxCoordinate) maxCoordinate = boxes[i];
  const groupSpan = fround(maxCoordinate + 1);
  const shifted = new Float32Array(boxes.length);
  for (let i = 0; i < count; i++) {
    const offset = fround(groups[i] * groupSpan);
    for (let k = 0; k < 4; k++) shifted[i * 4 + k] = boxes[i * 4 + k] + offset;
  }
  return nms(shifted, scores, iouThreshold, undefined, maxKeep);
}

function batchedNmsPerGroup(boxes: Float32Array, scores: Float32Array, groups: Int32Array, iouThreshold: number, maxKeep: number): Int32Array {
  const members = new Map<number, number[]>();
  for (let i = 0; i < groups.length; i++) {
    const list = members.get(groups[i]);
    if (list) list.push(i);
    else members.set(groups[i], [i]);
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
