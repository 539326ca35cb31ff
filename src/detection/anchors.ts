/**
 * torchvision `AnchorGenerator` (models/detection/anchor_utils.py), float32 throughout.
 * Anchor `a` of grid cell (x, y) on a level is at index `((y * gridWidth) + x) * A + a`, with
 * `A = aspectRatios.length * sizes.length` ordered ratio-major (torchvision's order).
 */

import { DetectError } from './errors';
import { roundHalfToEven } from './float32';

// Math's functions bound once: inside a vm context (jest) every global lookup is slow.
const { floor, fround, sqrt } = Math;

export interface AnchorLevelConfig {
  /** Anchor sizes (sqrt of area, pixels) on this level. */
  sizes: readonly number[];
  /** Height / width ratios. */
  aspectRatios: readonly number[];
}

/** Per-level anchor stride in graph-input pixels: torchvision uses `padded // feature` per axis. */
export interface LevelStride {
  strideHeight: number;
  strideWidth: number;
}

/**
 * Base anchors centred on (0, 0), `[A, 4]` packed: torchvision `generate_anchors`, including
 * the rounding of the half sides to integers.
 */
export function cellAnchors(level: AnchorLevelConfig): Float32Array {
  const out = new Float32Array(level.aspectRatios.length * level.sizes.length * 4);
  let o = 0;
  for (const ratio of level.aspectRatios) {
    const hRatio = fround(sqrt(fround(ratio)));
    const wRatio = fround(1 / hRatio);
    for (const size of level.sizes) {
      const ws = fround(wRatio * fround(size));
      const hs = fround(hRatio * fround(size));
      out[o++] = roundHalfToEven(fround(-ws / 2));
      out[o++] = roundHalfToEven(fround(-hs / 2));
      out[o++] = roundHalfToEven(fround(ws / 2));
      out[o++] = roundHalfToEven(fround(hs / 2));
    }
  }
  return out;
}

/** Stride of a level, as torchvision computes it from the padded input and the feature map size. */
export function levelStride(paddedHeight: number, paddedWidth: number, gridHeight: number, gridWidth: number): LevelStride {
  return { strideHeight: floor(paddedHeight / gridHeight), strideWidth: floor(paddedWidth / gridWidth) };
}

const GRID_CACHE_ENTRIES = 32;

export class AnchorGenerator {
  /** Base anchors per level, `[A_l, 4]` packed. */
  readonly cellAnchors: readonly Float32Array[];
  private readonly gridCache = new Map<string, Float32Array>();

  constructor(readonly levels: readonly AnchorLevelConfig[]) {
    this.cellAnchors = levels.map(cellAnchors);
  }

  /** Anchors per location on `level`. */
  anchorsPerLocation(level: number): number {
    return this.levelAnchors(level).length / 4;
  }

  /** The base anchors of `level`; a level the generator was not configured with is a model error. */
  private levelAnchors(level: number): Float32Array {
    const base = this.cellAnchors[level];
    if (base === undefined) {
      throw new DetectError('MODEL_INVALID', `RPN level ${level} has no anchors: the model configures ${this.cellAnchors.length} levels`);
    }
    return base;
  }

  /**
   * Writes anchor `index` of `level` (flattened as described above) into `out` at `offset`,
   * without materializing the level's grid: the RPN only needs its top-scoring anchors.
   */
  writeAnchor(level: number, index: number, gridWidth: number, stride: LevelStride, out: Float32Array, offset: number): void {
    const base = this.levelAnchors(level);
    const perLocation = base.length / 4;
    // a in [0, perLocation): base holds 4 values per anchor, so a * 4 + 3 < base.length.
    const a = index % perLocation;
    const location = (index - a) / perLocation;
    const x = location % gridWidth;
    const y = (location - x) / gridWidth;
    const shiftX = x * stride.strideWidth;
    const shiftY = y * stride.strideHeight;
    out[offset] = shiftX + base[a * 4]!;
    out[offset + 1] = shiftY + base[a * 4 + 1]!;
    out[offset + 2] = shiftX + base[a * 4 + 2]!;
    out[offset + 3] = shiftY + base[a * 4 + 3]!;
  }

  /**
   * All anchors of `level` for a grid, `[gridHeight * gridWidth * A, 4]` packed (torchvision `grid_anchors`).
   * The most recent grids are cached (images of one size share them).
   */
  gridAnchors(level: number, gridHeight: number, gridWidth: number, stride: LevelStride): Float32Array {
    const key = `${level}:${gridHeight}x${gridWidth}:${stride.strideHeight}x${stride.strideWidth}`;
    const cached = this.gridCache.get(key);
    if (cached) return cached;
    const count = gridHeight * gridWidth * this.anchorsPerLocation(level);
    const anchors = new Float32Array(count * 4);
    for (let i = 0; i < count; i++) this.writeAnchor(level, i, gridWidth, stride, anchors, i * 4);
    this.gridCache.set(key, anchors);
    if (this.gridCache.size > GRID_CACHE_ENTRIES) this.gridCache.delete(this.gridCache.keys().next().value as string);
    return anchors;
  }
}
