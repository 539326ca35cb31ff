/**
 * Public data types of the detection library. Plain data in, plain data out.
 * Boxes are in original-image pixels (after EXIF orientation), continuous convention:
 * pixel (i, j) covers [i, i+1) x [j, j+1). See docs/model-format.md.
 */
import type { ExecutionProvider } from './execution-provider';
import type { SessionOptions } from './session';

export interface Box {
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
}

/** One detection, Hugging Face object-detection shape plus `class_id` (index into model classes). */
export interface Detection {
  label: string;
  class_id: number;
  score: number;
  box: Box;
}

export interface DetectOptions {
  /** Keep detections with score >= this (default: the model's roi_heads.score_thresh). */
  scoreThreshold?: number;
  /** At most this many detections, highest score first, 1..MAX_DETECTIONS_LIMIT (default: the model's detections_per_img). */
  maxDetections?: number;
  /**
   * Only these classes, by label ('circle') or class_id (2 or '2'); the background and 'N/A'
   * placeholders are not classes (src/detection/classes.ts resolves them).
   */
  classes?: ReadonlyArray<string | number>;
  /** Aborts the request before the next stage starts (e.g. the HTTP client went away). */
  signal?: AbortSignal;
}

/** Per-stage wall-clock durations of one `detect` call, in milliseconds. */
export interface StageTimings {
  decode: number;
  transform: number;
  backbone_rpn: number;
  rpn_postprocess: number;
  box_head: number;
  postprocess: number;
  total: number;
}

export interface DetectionResult {
  /** Original image size after EXIF orientation. */
  width: number;
  height: number;
  detections: Detection[];
  timings_ms: StageTimings;
}

export interface DetectorOptions {
  /** ONNX Runtime intra-op threads per session (default: the cores available, at most 4). */
  intraOpThreads?: number;
  /**
   * Where ONNX Runtime runs the graphs: 'cpu' (default), 'cuda' or 'webgpu'. A provider whose binaries
   * or device are missing fails the load with EXECUTION_PROVIDER_UNAVAILABLE (no silent CPU fall-back).
   */
  executionProvider?: ExecutionProvider;
  /** Refuse images with more pixels than this (decompression-bomb guard; default 40 megapixels). */
  maxPixels?: number;
  /**
   * Resize while decoding (libvips, JPEG shrink-on-load) instead of torchvision's bilinear resize
   * (default false). Faster on large photos, but APPROXIMATE: not bit-exact with torchvision; its AP
   * effect is measured in docs/performance.md.
   */
  fastResize?: boolean;
  /** Check the graphs' sha256 against model.json at load (default true). */
  verifyChecksums?: boolean;
  /** Other ONNX Runtime session options; the defaults were chosen by measurement (see src/detection/session.ts). */
  session?: Omit<SessionOptions, 'intraOpThreads' | 'executionProvider'>;
}
