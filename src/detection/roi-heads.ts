/**
 * What surrounds graph B in torchvision's `RoIHeads` at inference (models/detection/roi_heads.py and
 * ops/poolers.py): `LevelMapper` assigns proposals to feature levels (graph B takes one RoI input per
 * level), and `postprocess_detections` turns class logits and box regression into detections.
 */
import { BoxCoder, type BoxCoderWeights } from './box-coder';
import { boxCount, clipBoxToImage } from './boxes';
import { expf } from './float32';
import { batchedNms } from './nms';
import type { Size } from './transform';
import { DetectError } from './errors';

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { floor, fround, log2, max, min, sqrt } = Math;

export interface LevelMapperConfig {
  kMin: number;
  kMax: number;
  canonicalScale: number;
  canonicalLevel: number;
  eps: number;
}

/**
 * FPN level index (0 = k_min) of each box: `floor(lvl0 + log2(sqrt(area) / s0) + eps)` clamped to
 * [k_min, k_max], float32 as torchvision's `LevelMapper`.
 */
export function mapLevels(boxes: Float32Array, mapper: LevelMapperConfig): Int32Array {
  const count = boxCount(boxes);
  const levels = new Int32Array(count);
  const lvl0 = fround(mapper.canonicalLevel);
  const s0 = fround(mapper.canonicalScale);
  const eps = fround(mapper.eps);
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    const area = fround(fround(boxes[o + 2] - boxes[o]) * fround(boxes[o + 3] - boxes[o + 1]));
    const side = fround(sqrt(area));
    const level = floor(fround(fround(lvl0 + fround(log2(fround(side / s0)))) + eps));
    levels[i] = min(max(level, mapper.kMin), mapper.kMax) - mapper.kMin;
  }
  return levels;
}

/** Proposals split by level for graph B's `rois_<level>` inputs. */
export interface LevelAssignment {
  /** Per level, `[K_l, 4]` packed RoIs in proposal order. */
  rois: Float32Array[];
  /** Graph B output row r belongs to proposal `proposalOfRow[r]` (rows are in level order). */
  proposalOfRow: Int32Array;
}

/** Splits proposals by level (one level when `mapper` is null: a single-feature-map head such as C4). */
export function assignLevels(proposals: Float32Array, levelCount: number, mapper: LevelMapperConfig | null): LevelAssignment {
  const count = boxCount(proposals);
  const levels = mapper === null || levelCount === 1 ? new Int32Array(count) : mapLevels(proposals, mapper);
  const sizes = new Int32Array(levelCount);
  for (const level of levels) sizes[level]++;
  const rois = Array.from(sizes, (size) => new Float32Array(size * 4));
  const starts = new Int32Array(levelCount);
  for (let l = 1; l < levelCount; l++) starts[l] = starts[l - 1] + sizes[l - 1];
  const filled = new Int32Array(levelCount);
  const proposalOfRow = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const level = levels[i];
    const k = filled[level]++;
    rois[level].set(proposals.subarray(i * 4, i * 4 + 4), k * 4);
    proposalOfRow[starts[level] + k] = i;
  }
  return { rois, proposalOfRow };
}

export interface RoiHeadsConfig {
  numClasses: number;
  scoreThresh: number;
  nmsThresh: number;
  detectionsPerImg: number;
  minSize: number;
  boxCoderWeights: BoxCoderWeights;
  bboxXformClip: number;
}

/** Per-request changes to the model's postprocessing (see DetectOptions). */
export interface PostprocessOptions {
  /** Keep detections with score >= this; when absent, torchvision's `score > score_thresh`. */
  scoreThreshold?: number;
  /** Keep at most this many (default: `detections_per_img`). */
  maxDetections?: number;
  /** Keep only these class ids. */
  classIds?: ReadonlySet<number>;
}

export interface PackedDetections {
  /** `[N, 4]` packed, in the coordinates of the proposals (graph-input pixels). */
  boxes: Float32Array;
  scores: Float32Array;
  labels: Int32Array;
}

/** Softmax over each row of `[rows, columns]` logits, float32 as ATen's CPU kernel: `exp(x - max) * (1 / sum)`. */
export function softmaxRows(logits: Float32Array, columns: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let o = 0; o < logits.length; o += columns) {
    let rowMax = -Infinity;
    for (let c = 0; c < columns; c++) if (logits[o + c] > rowMax) rowMax = logits[o + c];
    let sum = 0;
    for (let c = 0; c < columns; c++) {
      const e = expf(logits[o + c] - rowMax);
      out[o + c] = e;
      sum = fround(sum + e);
    }
    const inverse = fround(1 / sum);
    for (let c = 0; c < columns; c++) out[o + c] = fround(out[o + c] * inverse);
  }
  return out;
}

export class RoiHeadsPostprocessor {
  private readonly boxCoder: BoxCoder;

  constructor(readonly config: RoiHeadsConfig) {
    this.boxCoder = new BoxCoder(config.boxCoderWeights, config.bboxXformClip);
  }

  /**
   * torchvision `postprocess_detections` for one image: softmax, per-class decode, clip to `resized`,
   * drop background, score threshold, remove small boxes, NMS per class, best `detections_per_img`.
   * `classLogits` `[K, C]` and `boxRegression` `[K, 4C]` rows follow `proposals` `[K, 4]`.
   */
  postprocess(
    classLogits: Float32Array,
    boxRegression: Float32Array,
    proposals: Float32Array,
    resized: Size,
    options: PostprocessOptions = {},
  ): PackedDetections {
    const { numClasses } = this.config;
    const count = boxCount(proposals);
    if (classLogits.length !== count * numClasses || boxRegression.length !== count * numClasses * 4) {
      // the graph's outputs do not have the shapes model.json implies
      throw new DetectError(
        'MODEL_INVALID',
        `box head: expected ${count}x${numClasses} class logits and ${count}x${numClasses * 4} box regression values, got ${classLogits.length} and ${boxRegression.length}`,
      );
    }
    const scores = softmaxRows(classLogits, numClasses);

    // Candidates in torchvision's order (proposal-major, class-minor, background dropped); a lower
    // user threshold admits more candidates, a higher one filters after NMS (same result: NMS never
    // lets a lower score suppress a higher one). Thresholds are rounded to float32, as torch does
    // when it compares a float32 tensor with a Python float.
    const userThreshold = options.scoreThreshold === undefined ? undefined : fround(options.scoreThreshold);
    const modelThreshold = fround(this.config.scoreThresh);
    const admitsBelowModel = userThreshold !== undefined && userThreshold < modelThreshold;
    const passes = (flat: number): boolean => {
      const s = scores[flat];
      return (
        (admitsBelowModel ? s >= (userThreshold as number) : s > modelThreshold) &&
        (options.classIds === undefined || options.classIds.has(flat % numClasses))
      );
    };
    let passing = 0;
    for (let i = 0; i < count; i++) for (let c = 1; c < numClasses; c++) if (passes(i * numClasses + c)) passing++;

    // Only passing predictions are decoded: decoding is per (proposal, class), so the others cannot matter.
    const minSize = fround(this.config.minSize);
    const candidateBoxes = new Float32Array(passing * 4);
    const candidateScores = new Float32Array(passing);
    const candidateLabels = new Int32Array(passing);
    let n = 0;
    for (let i = 0; i < count; i++) {
      for (let c = 1; c < numClasses; c++) {
        const flat = i * numClasses + c;
        if (!passes(flat)) continue;
        const o = n * 4;
        this.boxCoder.decodeOne(boxRegression, flat * 4, proposals, i, candidateBoxes, o);
        clipBoxToImage(candidateBoxes, n, resized.height, resized.width);
        if (
          fround(candidateBoxes[o + 2] - candidateBoxes[o]) >= minSize &&
          fround(candidateBoxes[o + 3] - candidateBoxes[o + 1]) >= minSize
        ) {
          candidateScores[n] = scores[flat];
          candidateLabels[n] = c;
          n++;
        }
      }
    }
    const kept = {
      boxes: candidateBoxes.subarray(0, n * 4),
      scores: candidateScores.subarray(0, n),
      labels: candidateLabels.subarray(0, n),
    };

    const limit = options.maxDetections ?? this.config.detectionsPerImg;
    // Candidates below a user threshold come last in the kept order, so the first `limit` kept suffice.
    const keep = batchedNms(kept.boxes, kept.scores, kept.labels, this.config.nmsThresh, limit);
    const selected: number[] = [];
    for (const k of keep) {
      if (selected.length >= limit) break;
      if (userThreshold !== undefined && !(kept.scores[k] >= userThreshold)) continue;
      selected.push(k);
    }
    const result: PackedDetections = {
      boxes: new Float32Array(selected.length * 4),
      scores: new Float32Array(selected.length),
      labels: new Int32Array(selected.length),
    };
    selected.forEach((k, i) => {
      result.boxes.set(kept.boxes.subarray(k * 4, k * 4 + 4), i * 4);
      result.scores[i] = kept.scores[k];
      result.labels[i] = kept.labels[k];
    });
    return result;
  }
}
