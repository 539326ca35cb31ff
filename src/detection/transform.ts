/**
 * torchvision `GeneralizedRCNNTransform` at inference (models/detection/transform.py), for one image:
 * pixels / 255, normalize with mean/std, THEN resize (that is torchvision's order) with
 * `interpolate(scale_factor, mode="bilinear", align_corners=False, recompute_scale_factor=True)`,
 * then zero-pad bottom/right to a multiple of `size_divisible`. Reproduces the float32 results of torch 2.15 /
 * torchvision 0.29 on x86-64 (AVX2/AVX-512 build, more than one thread: torch's default) for a contiguous NCHW
 * tensor, bit for bit (test/detection/transform.test.ts; docs/cpwc.md "torch 2.15 and the unit fixtures").
 */
import type { RgbImage } from './image';
import { checkPacked } from './packed';

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { ceil, fround, max, min, trunc } = Math;

export interface TransformConfig {
  minSize: number;
  maxSize: number;
  /** Per-channel RGB mean and std on [0, 1] pixels. */
  imageMean: readonly [number, number, number];
  imageStd: readonly [number, number, number];
  sizeDivisible: number;
}

export interface Size {
  width: number;
  height: number;
}

/** The three sizes of one image on its way through the model; boxes move between them with `resizeBoxes`. */
export interface ImageGeometry {
  /** The decoded image. */
  original: Size;
  /** After resizing: the region of the graph input that holds the image (torchvision's `image_sizes`). */
  resized: Size;
  /** The graph input: `resized` zero-padded to multiples of `size_divisible`. */
  padded: Size;
}

export interface TransformedImage {
  /** `[1, 3, padded.height, padded.width]` float32, NCHW. */
  tensor: Float32Array;
  geometry: ImageGeometry;
}

/**
 * Resized size, as torchvision 0.29 computes it: `scale = min(min_size / short, max_size / long)` from
 * Python ints, in double, then `int(side * scale)` in double (torch.nn.functional.interpolate with
 * `recompute_scale_factor=True`). torchvision 0.14 computed the scale in float32 and gave e.g. 799x1201
 * for 333x500 at 800/1333. torch would fail on a side that rounds to 0 (an extreme aspect ratio); it is
 * kept at 1 pixel here.
 *
 * @example
 * resizedSize({ width: 333, height: 500 }, 800, 1333); // { width: 800, height: 1201 }
 */
export function resizedSize(original: Size, minSize: number, maxSize: number): Size {
  const short = min(original.width, original.height);
  const long = max(original.width, original.height);
  const scale = min(minSize / short, maxSize / long);
  return {
    width: max(1, trunc(original.width * scale)),
    height: max(1, trunc(original.height * scale)),
  };
}

/** `size` rounded up to multiples of `divisible` (torchvision `batch_images`). */
export function paddedSize(size: Size, divisible: number): Size {
  return {
    width: ceil(size.width / divisible) * divisible,
    height: ceil(size.height / divisible) * divisible,
  };
}

export function imageGeometry(original: Size, config: TransformConfig): ImageGeometry {
  const resized = resizedSize(original, config.minSize, config.maxSize);
  return { original: { ...original }, resized, padded: paddedSize(resized, config.sizeDivisible) };
}

/** Source indices and weights of linear interpolation along one axis. */
export interface AxisSampling {
  index0: Int32Array;
  index1: Int32Array;
  lambda0: Float32Array;
  lambda1: Float32Array;
}

/**
 * ATen's `compute_source_index_and_lambda` with align_corners=False and the scale recomputed as
 * `input / output` in float32; an axis that keeps its size is copied. The source coordinate
 * `ratio * (i + 0.5) - 0.5` is rounded to float32 once (`fused`: one fused multiply-add, ATen's
 * channels-last kernel) or twice (after the product and after the subtraction: its separable kernel),
 * as measured against torch 2.15 (AVX-512 build) on real photographs.
 */
export function axisSampling(inputSize: number, outputSize: number, fused = false): AxisSampling {
  const sampling: AxisSampling = {
    index0: new Int32Array(outputSize),
    index1: new Int32Array(outputSize),
    lambda0: new Float32Array(outputSize),
    lambda1: new Float32Array(outputSize),
  };
  const ratio = fround(inputSize / outputSize);
  for (let i = 0; i < outputSize; i++) {
    if (inputSize === outputSize) {
      sampling.index0[i] = i;
      sampling.index1[i] = i;
      sampling.lambda0[i] = 1;
      sampling.lambda1[i] = 0;
      continue;
    }
    // `ratio * (i + 0.5)` is exact in double (24 + 16 bits), so each fround is one float32 rounding.
    let source = fused ? fround(ratio * (i + 0.5) - 0.5) : fround(fround(ratio * (i + 0.5)) - 0.5);
    if (source < 0) source = 0;
    const index0 = min(trunc(source), inputSize - 1);
    const lambda1 = fround(min(max(source - index0, 0), 1));
    sampling.index0[i] = index0;
    sampling.index1[i] = index0 < inputSize - 1 ? index0 + 1 : index0;
    sampling.lambda1[i] = lambda1;
    sampling.lambda0[i] = fround(1 - lambda1);
  }
  return sampling;
}

/**
 * Output height + width up to which torch 2.15 (multi-threaded, AVX2/AVX-512 build) resizes a contiguous
 * 3-channel NCHW image with its channels-last kernel; above it, with the separable kernel. Measured:
 * 50x78 and 64x64 go channels-last, 50x79 and 64x65 separable (on one thread torch always goes channels-last).
 */
export const CHANNELS_LAST_MAX_OUTPUT_SIDES = 128;

/** Per channel (R, G, B), a 256-entry table indexed by byte value: a table lookup of a byte is always in range. */
type NormalizationTables = readonly [Float32Array, Float32Array, Float32Array];

/** `(pixel / 255 - mean) / std` for one channel and every byte value (float32 as torch computes it). */
function normalizationTable(mean: number, std: number): Float32Array {
  const table = new Float32Array(256);
  const m = fround(mean);
  const s = fround(std);
  for (let v = 0; v < 256; v++) table[v] = fround(fround(fround(v / 255) - m) / s);
  return table;
}

function normalizationTables(config: TransformConfig): NormalizationTables {
  const [meanR, meanG, meanB] = config.imageMean;
  const [stdR, stdG, stdB] = config.imageStd;
  return [normalizationTable(meanR, stdR), normalizationTable(meanG, stdG), normalizationTable(meanB, stdB)];
}

/**
 * Normalizes, resizes and pads an RGB image into graph A's input tensor. With `original`, the image
 * was already resized on decode and `original` is the size it had before (boxes map back to it).
 *
 * @example
 * const { tensor, geometry } = transformImage(await decodeImage(bytes), config);
 * // tensor: Float32Array of 3 * geometry.padded.height * geometry.padded.width
 */
export function transformImage(image: RgbImage, config: TransformConfig, original?: Size): TransformedImage {
  // `original`: the size the image had before an approximate resize on decode (decodeImageResized);
  // the geometry is the original's, and the image is resampled from its own size to `resized`.
  // Packed RGB rows: every pixel index the resamplers compute (axisSampling keeps them below width and height) is in range.
  checkPacked('image.data', image.data, image.width * image.height, 3);
  const geometry = imageGeometry(original ?? { width: image.width, height: image.height }, config);
  const { resized, padded } = geometry;
  const tables = normalizationTables(config);
  const channelsLast = resized.height + resized.width <= CHANNELS_LAST_MAX_OUTPUT_SIDES;
  const rows = axisSampling(image.height, resized.height, channelsLast);
  const cols = axisSampling(image.width, resized.width, channelsLast);
  const tensor = new Float32Array(3 * padded.height * padded.width);
  const planeSize = padded.height * padded.width;
  if (image.width === resized.width && image.height === resized.height) {
    // No resize (both axes copied): the interpolation is `v * 1 + round(v * 0)` = v, a table lookup.
    copyNormalized(image, tables, tensor, padded.width, planeSize);
    return { tensor, geometry };
  }
  if (channelsLast) {
    resizeChannelsLast(image, tables, rows, cols, tensor, padded.width, planeSize);
    return { tensor, geometry };
  }
  // Per output pixel and channel: the two input rows it needs, each normalized and interpolated along x
  // (rounded to float32, as ATen stores its x pass), then the two combined along y. Computing the x pass
  // again for every output row instead of caching it per input row measured 2x faster for the default
  // model on a 1824x1216 photo and 1.35x for 1824x1216 -> 1216x800 (fewer loads and stores; a downscale
  // never reuses a row), and 0-15% slower for an upscale (600x400 -> 1200x800), interleaved, loaded machine.
  const [tr, tg, tb] = tables;
  const pixels = image.data;
  const stride = image.width * 3;
  const width = resized.width;
  const offset0 = new Int32Array(width);
  const offset1 = new Int32Array(width);
  for (let x = 0; x < width; x++) {
    offset0[x] = cols.index0[x]! * 3;
    offset1[x] = cols.index1[x]! * 3;
  }
  const { lambda0, lambda1 } = cols;
  for (let y = 0; y < resized.height; y++) {
    const top = rows.index0[y]! * stride;
    const bottom = rows.index1[y]! * stride;
    const wy0 = rows.lambda0[y]!;
    const wy1 = rows.lambda1[y]!;
    const outR = y * padded.width;
    const outG = outR + planeSize;
    const outB = outG + planeSize;
    for (let x = 0; x < width; x++) {
      const t0 = top + offset0[x]!;
      const t1 = top + offset1[x]!;
      const b0 = bottom + offset0[x]!;
      const b1 = bottom + offset1[x]!;
      const w0 = lambda0[x]!;
      const w1 = lambda1[x]!;
      // ATen's separable kernel (measured against torch 1.13 AVX2 and torch 2.15 AVX-512 builds on NCHW float
      // input): x is interpolated first, then y, each as fma(first, w0, round(second * w1)); a double
      // evaluates the fused step exactly.
      let t = fround(tr[pixels[t0]!]! * w0 + fround(tr[pixels[t1]!]! * w1));
      let b = fround(tr[pixels[b0]!]! * w0 + fround(tr[pixels[b1]!]! * w1));
      tensor[outR + x] = t * wy0 + fround(b * wy1);
      t = fround(tg[pixels[t0 + 1]!]! * w0 + fround(tg[pixels[t1 + 1]!]! * w1));
      b = fround(tg[pixels[b0 + 1]!]! * w0 + fround(tg[pixels[b1 + 1]!]! * w1));
      tensor[outG + x] = t * wy0 + fround(b * wy1);
      t = fround(tb[pixels[t0 + 2]!]! * w0 + fround(tb[pixels[t1 + 2]!]! * w1));
      b = fround(tb[pixels[b0 + 2]!]! * w0 + fround(tb[pixels[b1 + 2]!]! * w1));
      tensor[outB + x] = t * wy0 + fround(b * wy1);
    }
  }
  return { tensor, geometry };
}

/**
 * ATen's channels-last bilinear kernel (small outputs): per output pixel the four weights
 * `w_ab = round(h_lambda_a * w_lambda_b)` and `fma(t11, w11, fma(t10, w10, fma(t00, w00, round(t01 * w01))))`,
 * as measured against torch 2.15's AVX-512 build. Only used for outputs of at most 128 rows + columns.
 */
function resizeChannelsLast(
  image: RgbImage,
  tables: NormalizationTables,
  rows: AxisSampling,
  cols: AxisSampling,
  tensor: Float32Array,
  rowStride: number,
  planeSize: number,
): void {
  const pixels = image.data;
  const stride = image.width * 3;
  const height = rows.index0.length;
  const width = cols.index0.length;
  for (let y = 0; y < height; y++) {
    const top = rows.index0[y]! * stride;
    const bottom = rows.index1[y]! * stride;
    for (let x = 0; x < width; x++) {
      const w00 = fround(rows.lambda0[y]! * cols.lambda0[x]!);
      const w01 = fround(rows.lambda0[y]! * cols.lambda1[x]!);
      const w10 = fround(rows.lambda1[y]! * cols.lambda0[x]!);
      const w11 = fround(rows.lambda1[y]! * cols.lambda1[x]!);
      const left = cols.index0[x]! * 3;
      const right = cols.index1[x]! * 3;
      for (let c = 0; c < 3; c++) {
        const table = tables[c]!;
        const t00 = table[pixels[top + left + c]!]!;
        const t01 = table[pixels[top + right + c]!]!;
        const t10 = table[pixels[bottom + left + c]!]!;
        const t11 = table[pixels[bottom + right + c]!]!;
        const sum = fround(t10 * w10 + fround(t00 * w00 + fround(t01 * w01)));
        tensor[c * planeSize + y * rowStride + x] = t11 * w11 + sum;
      }
    }
  }
}

/** Normalizes every pixel into the (larger, zero-padded) NCHW tensor, no resampling. */
function copyNormalized(image: RgbImage, tables: NormalizationTables, tensor: Float32Array, rowStride: number, planeSize: number): void {
  const [tr, tg, tb] = tables;
  const pixels = image.data;
  for (let y = 0; y < image.height; y++) {
    let p = y * image.width * 3;
    const r = y * rowStride;
    const g = r + planeSize;
    const b = g + planeSize;
    for (let x = 0; x < image.width; x++, p += 3) {
      tensor[r + x] = tr[pixels[p]!]!;
      tensor[g + x] = tg[pixels[p + 1]!]!;
      tensor[b + x] = tb[pixels[p + 2]!]!;
    }
  }
}

/**
 * Scales boxes from an image of size `from` to one of size `to`, in place (torchvision `resize_boxes`:
 * per-axis ratio `to / from` in float32).
 */
export function resizeBoxes(boxes: Float32Array, from: Size, to: Size): Float32Array {
  const ratioWidth = fround(to.width / from.width);
  const ratioHeight = fround(to.height / from.height);
  for (let i = 0; i < boxes.length; i += 4) {
    boxes[i]! *= ratioWidth;
    boxes[i + 1]! *= ratioHeight;
    boxes[i + 2]! *= ratioWidth;
    boxes[i + 3]! *= ratioHeight;
  }
  return boxes;
}
