/**
 * What the server needs from a loaded detector: `detect` and the parsed model.json
 * (docs/model-format.md). `Detector` from src/detection satisfies it; the server reads only
 * the model.json fields named here.
 */
import { usableClasses } from '../detection/classes';
import { isSpeedOnly } from '../detection/model';
import type { DetectOptions, DetectionResult } from '../detection/types';

export interface ServedModel {
  name: string;
  architecture: string;
  format_version: number;
  width?: number;
  context?: string;
  parameters?: number;
  classes: readonly string[];
  transform: { min_size: number; max_size: number; size_divisible: number };
  roi_heads: { score_thresh: number; detections_per_img: number };
  /** The graphs' sha256 (model.json `graphs`): clients such as `eval --server` check the model's identity with them. */
  graphs?: { backbone_rpn: { sha256: string }; box_head: { sha256: string } };
  /** `"fp32"` or `"int8"`; absent (older readers) means fp32. */
  precision?: string;
  /** int8 only; `speed_only: true` marks a benchmark twin whose detections were never checked. */
  calibration?: Record<string, unknown>;
  provenance?: unknown;
}

export interface ServedDetector {
  readonly model: ServedModel;
  detect(image: Uint8Array, options?: DetectOptions): Promise<DetectionResult>;
}

/** The model description of GET /v1/models. */
export function describeModel(model: ServedModel): Record<string, unknown> {
  return {
    name: model.name,
    architecture: model.architecture,
    width: model.width ?? null,
    context: model.context ?? null,
    parameters: model.parameters ?? null,
    classes: usableClasses(model.classes),
    input: {
      min_size: model.transform.min_size,
      max_size: model.transform.max_size,
      size_divisible: model.transform.size_divisible,
    },
    defaults: {
      score_threshold: model.roi_heads.score_thresh,
      max_detections: model.roi_heads.detections_per_img,
    },
    graphs:
      model.graphs === undefined
        ? null
        : { backbone_rpn: { sha256: model.graphs.backbone_rpn.sha256 }, box_head: { sha256: model.graphs.box_head.sha256 } },
    precision: model.precision ?? 'fp32',
    speed_only: isSpeedOnly(model),
    provenance: model.provenance ?? null,
  };
}
