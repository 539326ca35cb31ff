/**
 * The models a server answers for, as its routes see them. Every route that detects goes through
 * `resolve(name)`: the single-model server has one entry (model.json's name plus aliases such as
 * its directory name); a model repository (model-repository.ts) has several, added and replaced
 * while serving.
 */
import type { DetectOptions } from '../detection/types';
import { HttpError } from './errors';
import type { InferenceOutcome, InferenceService } from './inference';
import { describeModel, type ServedDetector, type ServedModel } from './served-model';

export interface ModelEndpoint {
  /** The name clients use for this model. */
  readonly name: string;
  /** model.json of the version that answers now. */
  readonly model: ServedModel;
  /**
   * One detection through the server's shared inference pool, under the request's signal. It runs
   * on the version current when it is called, even if a newer one takes over meanwhile.
   */
  detect(image: Uint8Array, options: Omit<DetectOptions, 'signal'>, signal: AbortSignal): Promise<InferenceOutcome>;
}

/** A model's state: loading (first load running), ready, failed (no working version), unloaded. */
export type ModelState = 'loading' | 'ready' | 'failed' | 'unloaded';

/** One row of GET /v1/models. */
export interface ModelStatus {
  name: string;
  state: ModelState;
  /** Why the last load failed (a working older version may still answer: state stays ready). */
  error: string | null;
  /** Whether this model answers routes that name none. */
  default: boolean;
  /** describeModel() of the answering version, null when none is loaded. */
  metadata: Record<string, unknown> | null;
}

export interface ModelCatalog {
  /** The model of routes that name none (/v1/detect, /v1/vision/detection, the demo page). */
  readonly defaultName: string;
  /** Names of the models that can answer now, sorted. */
  names(): string[];
  /** The model called `name` (undefined: the default), or HttpError MODEL_NOT_FOUND. */
  resolve(name?: string): ModelEndpoint;
  /** Every known model with its state, sorted by name. */
  list(): ModelStatus[];
  /** Whether the default model can answer (readiness). */
  defaultReady(): boolean;
}

/** A catalog of one model, known by model.json's name and by each alias. */
export function singleModelCatalog(detector: ServedDetector, inference: InferenceService, aliases: readonly string[] = []): ModelCatalog {
  const model = detector.model;
  const endpoint: ModelEndpoint = {
    name: model.name,
    model,
    detect: (image, options, signal) => inference.detect(detector, image, options, signal, model.name),
  };
  const accepted = new Set([model.name, ...aliases]);
  return {
    defaultName: model.name,
    names: () => [model.name],
    resolve(name?: string): ModelEndpoint {
      if (name === undefined || accepted.has(name)) return endpoint;
      throw new HttpError('MODEL_NOT_FOUND', `unknown model '${name}'; this server serves '${model.name}'`);
    },
    list: () => [{ name: model.name, state: 'ready', error: null, default: true, metadata: describeModel(model) }],
    defaultReady: () => true,
  };
}
