/**
 * The models a server answers for, as its routes see them. Every route that detects goes through
 * `resolve(name)`: the single-model server has one entry (model.json's name plus aliases such as
 * its directory name); a model repository has several, added and replaced while serving.
 */
import type { DetectOptions } from '../detection/types';
import { HttpError } from './errors';
import type { InferenceOutcome, InferenceService } from './inference';
import type { ServedModel } from './model';

export interface ModelEndpoint {
  /** The name clients use for this model. */
  readonly name: string;
  readonly model: ServedModel;
  /** One detection through the server's shared inference pool, under the request's signal. */
  detect(image: Uint8Array, options: Omit<DetectOptions, 'signal'>, signal: AbortSignal): Promise<InferenceOutcome>;
}

export interface ModelCatalog {
  /** The model of routes that name none (/v1/detect, /v1/vision/detection, the demo page). */
  readonly defaultName: string;
  /** Names of the models that can answer now, sorted. */
  names(): string[];
  /** The model called `name` (undefined: the default), or HttpError MODEL_NOT_FOUND. */
  resolve(name?: string): ModelEndpoint;
}

/** A catalog of one model, known by model.json's name and by each alias. */
export function singleModelCatalog(model: ServedModel, inference: InferenceService, aliases: readonly string[] = []): ModelCatalog {
  const endpoint: ModelEndpoint = {
    name: model.name,
    model,
    detect: (image, options, signal) => inference.detect(image, options, signal),
  };
  const accepted = new Set([model.name, ...aliases]);
  return {
    defaultName: model.name,
    names: () => [model.name],
    resolve(name?: string): ModelEndpoint {
      if (name === undefined || accepted.has(name)) return endpoint;
      throw new HttpError('MODEL_NOT_FOUND', `unknown model '${name}'; this server serves '${model.name}'`);
    },
  };
}
