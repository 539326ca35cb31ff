/**
 * Box helpers on packed `(x1, y1, x2, y2)` float32 rows (box i at `[4i, 4i + 4)`), each one the
 * twin of a torchvision.ops.boxes function. Arithmetic is float32 (Math.fround) where torchvision's
 * is, so thresholds compare the same numbers torchvision compares.
 */

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { fround, max, min } = Math;

/**
 * Number of boxes in a packed box array: floor(length / 4), so for i < boxCount(boxes) every
 * `boxes[4i + c]` (c in 0..3) is in range; the loops here rely on that and assert it with `!`.
 */
export function boxCount(boxes: Float32Array): number {
  return boxes.length >>> 2;
}

/**
 * Clamps x to [0, width] and y to [0, height], in place (torchvision `clip_boxes_to_image`).
 * Returns `boxes` for chaining.
 */
export function clipBoxesToImage(boxes: Float32Array, height: number, width: number): Float32Array {
  for (let i = 0; i < boxes.length; i += 4) clipBoxToImage(boxes, i >> 2, height, width);
  return boxes;
}

/** `clipBoxesToImage` for box `index` only. */
export function clipBoxToImage(boxes: Float32Array, index: number, height: number, width: number): void {
  const o = index * 4;
  boxes[o] = min(max(boxes[o]!, 0), width);
  boxes[o + 1] = min(max(boxes[o + 1]!, 0), height);
  boxes[o + 2] = min(max(boxes[o + 2]!, 0), width);
  boxes[o + 3] = min(max(boxes[o + 3]!, 0), height);
}

/**
 * Indices (ascending) of the boxes whose width and height are both >= minSize
 * (torchvision `remove_small_boxes`; a NaN side is removed, as in torch). Like torch comparing a
 * float32 tensor with a Python float, the threshold is rounded to float32 first.
 */
export function removeSmallBoxes(boxes: Float32Array, minSize: number): Int32Array {
  const threshold = fround(minSize);
  const count = boxCount(boxes);
  const keep = new Int32Array(count);
  let kept = 0;
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    const w = fround(boxes[o + 2]! - boxes[o]!);
    const h = fround(boxes[o + 3]! - boxes[o + 1]!);
    if (w >= threshold && h >= threshold) keep[kept++] = i;
  }
  return keep.slice(0, kept);
}

/** `(x2 - x1) * (y2 - y1)` in float32 (torchvision `box_area`). */
export function boxArea(boxes: Float32Array, index: number): number {
  const o = index * 4;
  return fround(fround(boxes[o + 2]! - boxes[o]!) * fround(boxes[o + 3]! - boxes[o + 1]!));
}

/** Intersection over union of box `i` of `a` and box `j` of `b`, float32 as torchvision `box_iou`. */
export function boxIou(a: Float32Array, i: number, b: Float32Array, j: number): number {
  const ao = i * 4;
  const bo = j * 4;
  const w = max(fround(min(a[ao + 2]!, b[bo + 2]!) - max(a[ao]!, b[bo]!)), 0);
  const h = max(fround(min(a[ao + 3]!, b[bo + 3]!) - max(a[ao + 1]!, b[bo + 1]!)), 0);
  const inter = fround(w * h);
  const union = fround(fround(boxArea(a, i) + boxArea(b, j)) - inter);
  return fround(inter / union);
}

/** Rows `indices` of packed boxes, in that order. */
export function gatherBoxes(boxes: Float32Array, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * 4);
  for (let k = 0; k < indices.length; k++) {
    const o = indices[k]! * 4;
    out[k * 4] = boxes[o]!;
    out[k * 4 + 1] = boxes[o + 1]!;
    out[k * 4 + 2] = boxes[o + 2]!;
    out[k * 4 + 3] = boxes[o + 3]!;
  }
  return out;
}

/** Elements `indices` of a per-box array, in that order. */
export function gather<T extends Float32Array | Int32Array>(values: T, indices: ArrayLike<number>): T {
  const out = new (values.constructor as { new (length: number): T })(indices.length);
  for (let k = 0; k < indices.length; k++) out[k] = values[indices[k]!]!;
  return out;
}
