/**
 * The proposal half of torchvision's `RegionProposalNetwork` at inference (models/detection/rpn.py):
 * graph A computes the head's logits and deltas; this module does what follows them —
 * per-level top-k on logits, decode against anchors, sigmoid, clip, remove small, score threshold,
 * NMS per level, keep the best `post_nms_top_n` (`filter_proposals`).
 */
import { type AnchorGenerator, levelStride } from './anchors';
import { BoxCoder, type BoxCoderWeights } from './box-coder';
import { clipBoxesToImage, removeSmallBoxes } from './boxes';
import { DetectError } from './errors';
import { expf, expfNearest } from './float32';
import { batchedNms } from './nms';
import type { Size } from './transform';

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { fround, min } = Math;

export interface RpnConfig {
  preNmsTopN: number;
  postNmsTopN: number;
  nmsThresh: number;
  scoreThresh: number;
  minSize: number;
  boxCoderWeights: BoxCoderWeights;
  bboxXformClip: number;
}

/** The grid of a `[1, C, height, width]` RPN output; the graph decides its shape, so any other shape is MODEL_INVALID. */
export function rpnLevelGrid(dims: readonly number[], name: string): { height: number; width: number } {
  const [batch, , height, width] = dims;
  if (dims.length !== 4 || batch !== 1 || height === undefined || width === undefined) {
    throw new DetectError('MODEL_INVALID', `backbone_rpn output ${name} must be [1, C, height, width], got [${dims.join(', ')}]`);
  }
  return { height, width };
}

/** Graph A's RPN outputs for one level. */
export interface RpnLevelOutput {
  /** `[1, A, height, width]` logits. */
  objectness: Float32Array;
  /** `[1, 4A, height, width]` deltas, channel `4a + k`. */
  bboxDeltas: Float32Array;
  height: number;
  width: number;
}

export interface Proposals {
  /** `[N, 4]` packed, graph-input pixels, descending score. */
  boxes: Float32Array;
  /** Objectness probabilities. */
  scores: Float32Array;
}

/** Logistic sigmoid as torch's vectorized kernel computes it in float32: `1 / (1 + exp(-x))`, each step rounded, SLEEF's exp. */
export function sigmoid(x: number): number {
  return fround(1 / fround(1 + expf(-x)));
}

/** The same through ATen's scalar function (`std::exp`: glibc's `expf`, correctly rounded but for rare near-ties). */
export function sigmoidScalar(x: number): number {
  return fround(1 / fround(1 + expfNearest(-x)));
}

/**
 * ATen's element-wise loop on a contiguous float32 tensor runs its vectorized kernel over blocks of
 * 2 vectors and the scalar function over the last `n mod block` elements: 32 on the AVX-512 build
 * (torch's choice on a CPU that has it; 16 on AVX2), for tensors up to 32,768 elements (one task).
 * Measured on torch.sigmoid, torch 2.15.
 */
export const ATEN_VECTOR_BLOCK = 32;

/** torch.sigmoid of a contiguous float32 tensor of `length` elements, element `index`. */
export function sigmoidAt(x: number, index: number, length: number): number {
  return index < length - (length % ATEN_VECTOR_BLOCK) ? sigmoid(x) : sigmoidScalar(x);
}

/**
 * Indices of the `k` largest values, in descending value order (ties: lower index first).
 * Runs in O(n + k log k): a quickselect finds the k-th value, then only the winners are sorted.
 */
export function topKIndices(values: Float32Array, k: number): Int32Array {
  const n = values.length;
  const count = min(k, n);
  if (count <= 0) return new Int32Array(0);
  const scratch = Float32Array.from(values);
  const kth = selectKthLargest(scratch, count);
  const selected = new Int32Array(count);
  let filled = 0;
  let equalAllowed = count;
  for (let i = 0; i < n; i++) if (values[i]! > kth) equalAllowed--;
  for (let i = 0; i < n && filled < count; i++) {
    const v = values[i]!;
    if (v > kth) selected[filled++] = i;
    else if (v === kth && equalAllowed > 0) {
      selected[filled++] = i;
      equalAllowed--;
    }
  }
  selected.sort((a, b) => values[b]! - values[a]! || a - b);
  return selected;
}

/**
 * The value that would be at position `k - 1` if `values` were sorted descending; reorders `values`.
 * The caller (topKIndices) passes 1 <= k <= values.length, so every index below stays in [0, length).
 */
function selectKthLargest(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! > pivot) i++;
      while (values[j]! < pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return values[target]!;
  }
  return values[target]!;
}

export class RegionProposalFilter {
  private readonly boxCoder: BoxCoder;

  constructor(
    readonly anchorGenerator: AnchorGenerator,
    readonly config: RpnConfig,
  ) {
    this.boxCoder = new BoxCoder(config.boxCoderWeights, config.bboxXformClip);
  }

  /**
   * torchvision `filter_proposals` for one image. `padded` is graph A's input size (anchor strides are
   * `padded // feature size`), `resized` the image region inside it (boxes are clipped to it).
   */
  filterProposals(levels: readonly RpnLevelOutput[], padded: Size, resized: Size): Proposals {
    const perLevel = levels.map((level, index) => this.topProposals(level, index, padded));
    const total = perLevel.reduce((sum, level) => sum + level.logits.length, 0);
    const boxes = new Float32Array(total * 4);
    const scores = new Float32Array(total);
    const levelIds = new Int32Array(total);
    let offset = 0;
    perLevel.forEach((level, index) => {
      boxes.set(level.boxes, offset * 4);
      for (let i = 0; i < level.logits.length; i++) scores[offset + i] = sigmoidAt(level.logits[i]!, offset + i, total);
      levelIds.fill(index, offset, offset + level.logits.length);
      offset += level.logits.length;
    });
    clipBoxesToImage(boxes, resized.height, resized.width);

    const large = removeSmallBoxes(boxes, this.config.minSize);
    const candidates: number[] = [];
    const scoreThresh = fround(this.config.scoreThresh); // torch compares float32 scores with a float32-cast threshold
    for (const i of large) if (scores[i]! >= scoreThresh) candidates.push(i);
    const candidateBoxes = new Float32Array(candidates.length * 4);
    const candidateScores = new Float32Array(candidates.length);
    const candidateLevels = new Int32Array(candidates.length);
    candidates.forEach((i, k) => {
      candidateBoxes.set(boxes.subarray(i * 4, i * 4 + 4), k * 4);
      candidateScores[k] = scores[i]!;
      candidateLevels[k] = levelIds[i]!;
    });

    const keep = batchedNms(candidateBoxes, candidateScores, candidateLevels, this.config.nmsThresh, this.config.postNmsTopN);
    const kept = min(keep.length, this.config.postNmsTopN);
    const result: Proposals = { boxes: new Float32Array(kept * 4), scores: new Float32Array(kept) };
    for (let k = 0; k < kept; k++) {
      const i = keep[k]!;
      result.boxes.set(candidateBoxes.subarray(i * 4, i * 4 + 4), k * 4);
      result.scores[k] = candidateScores[i]!;
    }
    return result;
  }

  /** The level's `pre_nms_top_n` anchors by logit, decoded: `{ boxes [k, 4], logits [k] }` in descending logit order. */
  private topProposals(level: RpnLevelOutput, levelIndex: number, padded: Size): { boxes: Float32Array; logits: Float32Array } {
    const { height, width, objectness, bboxDeltas } = level;
    const perLocation = this.anchorGenerator.anchorsPerLocation(levelIndex);
    const plane = height * width;
    const anchorCount = plane * perLocation;
    if (objectness.length !== anchorCount || bboxDeltas.length !== anchorCount * 4) {
      const expected = `${anchorCount} logits and ${anchorCount * 4} deltas for a ${height}x${width} grid with ${perLocation} anchors`;
      const got = `${objectness.length} and ${bboxDeltas.length}`;
      throw new DetectError('MODEL_INVALID', `RPN level ${levelIndex}: expected ${expected}, got ${got}`);
    }
    // Graph layout [A, h, w] -> torchvision's flattened order ((y * w) + x) * A + a.
    const flatLogits = new Float32Array(anchorCount);
    for (let a = 0; a < perLocation; a++) {
      const channel = a * plane;
      for (let p = 0; p < plane; p++) flatLogits[p * perLocation + a] = objectness[channel + p]!;
    }
    const top = topKIndices(flatLogits, this.config.preNmsTopN);
    const stride = levelStride(padded.height, padded.width, height, width);
    const anchors = new Float32Array(top.length * 4);
    const deltas = new Float32Array(top.length * 4);
    const logits = new Float32Array(top.length);
    for (let k = 0; k < top.length; k++) {
      const index = top[k]!;
      const a = index % perLocation;
      const p = (index - a) / perLocation;
      logits[k] = flatLogits[index]!;
      this.anchorGenerator.writeAnchor(levelIndex, index, width, stride, anchors, k * 4);
      for (let d = 0; d < 4; d++) deltas[k * 4 + d] = bboxDeltas[(a * 4 + d) * plane + p]!;
    }
    return { boxes: this.boxCoder.decode(deltas, anchors), logits };
  }
}
