/**
 * torchvision `BoxCoder.decode_single` (models/detection/_utils.py), float32 step by step.
 */
import { expfNearest } from './float32';
import { DetectError } from './errors';

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { fround, log, min } = Math;

export type BoxCoderWeights = readonly [number, number, number, number];

/** torchvision's default clip on dw/dh: log(1000 / 16). */
export const DEFAULT_BBOX_XFORM_CLIP = log(1000 / 16);

export class BoxCoder {
  private readonly wx: number;
  private readonly wy: number;
  private readonly ww: number;
  private readonly wh: number;
  /** torch.clamp casts its bound to the tensor's dtype. */
  private readonly clip: number;

  constructor(weights: BoxCoderWeights, bboxXformClip: number = DEFAULT_BBOX_XFORM_CLIP) {
    [this.wx, this.wy, this.ww, this.wh] = weights.map((w) => fround(w));
    this.clip = fround(bboxXformClip);
  }

  /**
   * Applies deltas to reference boxes. `relCodes` is `[N, 4 * perBox]` (deltas `(dx, dy, dw, dh)` for each
   * of `perBox` predictions of a box, e.g. one per class), `boxes` is `[N, 4]`.
   * Returns `[N, 4 * perBox]` decoded `(x1, y1, x2, y2)`.
   */
  decode(relCodes: Float32Array, boxes: Float32Array): Float32Array {
    const count = boxes.length / 4;
    const perBox = count === 0 ? 0 : relCodes.length / boxes.length;
    if (!Number.isInteger(perBox))
      throw new DetectError('MODEL_INVALID', `relCodes length ${relCodes.length} is not a multiple of 4 * ${count} boxes`);
    const out = new Float32Array(relCodes.length);
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < perBox; k++) this.decodeOne(relCodes, (i * perBox + k) * 4, boxes, i, out, (i * perBox + k) * 4);
    }
    return out;
  }

  /**
   * Decodes the 4 deltas at `relCodes[codeOffset]` against box `boxIndex` of `boxes` into `out[outOffset]`
   * (the same arithmetic as `decode`, for callers that need only some of the predictions).
   */
  decodeOne(relCodes: Float32Array, codeOffset: number, boxes: Float32Array, boxIndex: number, out: Float32Array, outOffset: number): void {
    const { wx, wy, ww, wh, clip } = this;
    const bx1 = boxes[boxIndex * 4];
    const by1 = boxes[boxIndex * 4 + 1];
    const width = fround(boxes[boxIndex * 4 + 2] - bx1);
    const height = fround(boxes[boxIndex * 4 + 3] - by1);
    const ctrX = fround(bx1 + fround(0.5 * width));
    const ctrY = fround(by1 + fround(0.5 * height));
    const dx = fround(relCodes[codeOffset] / wx);
    const dy = fround(relCodes[codeOffset + 1] / wy);
    const dw = min(fround(relCodes[codeOffset + 2] / ww), clip);
    const dh = min(fround(relCodes[codeOffset + 3] / wh), clip);
    const predCtrX = fround(fround(dx * width) + ctrX);
    const predCtrY = fround(fround(dy * height) + ctrY);
    const halfW = fround(0.5 * fround(expfNearest(dw) * width));
    const halfH = fround(0.5 * fround(expfNearest(dh) * height));
    out[outOffset] = predCtrX - halfW;
    out[outOffset + 1] = predCtrY - halfH;
    out[outOffset + 2] = predCtrX + halfW;
    out[outOffset + 3] = predCtrY + halfH;
  }
}
