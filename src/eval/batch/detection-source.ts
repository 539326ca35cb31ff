/**
 * Where a batch run's detections come from: a model directory run in this process
 * (local-source.ts) or a pool of cpwc-detect servers (server-pool.ts). Both give the same
 * detections for the same model (model-identity.ts) and the same options.
 */
import type { Detection } from '../../detection/types';
import type { ModelIdentity } from './model-identity';

/** The detections of one image, or why the detector refused the image (it is then skipped). */
export type SourceResult = { ok: true; detections: Detection[] } | { ok: false; reason: string };

export interface DetectionSource {
  readonly identity: ModelIdentity;
  /** Index = class_id, as in model.json. */
  readonly classes: readonly string[];
  /** The model directory (local) or null (servers). */
  readonly modelDir: string | null;
  /** sha256 of model.json (local) or null (servers). */
  readonly modelJsonSha256: string | null;
  /** 'local' or the comma-separated server URLs. */
  readonly description: string;
  /** How many images may be in detection at once. */
  readonly concurrency: number;
  /** Detects with `scoreThreshold` (default: the model's) and the model's max detections. */
  detect(image: Buffer, scoreThreshold: number | undefined): Promise<SourceResult>;
  /** Counters for the summary (requests, retries…), or an empty object. */
  stats(): Record<string, unknown>;
  close(): Promise<void>;
}
