/**
 * The request parameters of the HTTP API, declared once: name, JSON-schema type and bounds or
 * values. request-params.ts validates by these declarations and openapi.ts documents them, so a
 * bound or an allowed value is written in one place.
 */
import { MAX_DETECTIONS_LIMIT } from '../detection/limits';

/** A number (or integer) in [minimum, maximum]. */
export interface NumberParameter {
  readonly name: string;
  readonly schema: { readonly type: 'number' | 'integer'; readonly minimum: number; readonly maximum: number };
}

/** One of a fixed list of strings. */
export interface EnumParameter<V extends string = string> {
  readonly name: string;
  readonly schema: { readonly type: 'string'; readonly enum: readonly V[] };
}

/** Any text; `minLength` when an empty value is refused. */
export interface TextParameter {
  readonly name: string;
  readonly schema: { readonly type: 'string'; readonly minLength?: number };
}

/** `score_threshold`: keep detections with score >= it (native and KServe v2). */
export const SCORE_THRESHOLD = {
  name: 'score_threshold',
  schema: { type: 'number', minimum: 0, maximum: 1 },
} as const satisfies NumberParameter;

/** `max_detections`: at most this many detections, best first (native and KServe v2). */
export const MAX_DETECTIONS = {
  name: 'max_detections',
  schema: { type: 'integer', minimum: 1, maximum: MAX_DETECTIONS_LIMIT },
} as const satisfies NumberParameter;

/** `classes`: comma-separated labels or class ids to keep. */
export const CLASSES = { name: 'classes', schema: { type: 'string', minLength: 1 } } as const satisfies TextParameter;

/** `model`: the model to run (query parameter or multipart field). */
export const MODEL = { name: 'model', schema: { type: 'string' } } as const satisfies TextParameter;

/** `render`: the rendered image instead of JSON; values compared case-insensitively. */
export const RENDER = {
  name: 'render',
  schema: { type: 'string', enum: ['1', '0', 'true', 'false', 'png', 'jpeg', 'jpg'] },
} as const satisfies EnumParameter;

export type RenderValue = (typeof RENDER.schema.enum)[number];

/** DeepStack's `min_confidence` (multipart field or query), with DeepStack's default. */
export const MIN_CONFIDENCE = {
  name: 'min_confidence',
  schema: { type: 'number', minimum: 0, maximum: 1 },
  default: 0.45,
} as const satisfies NumberParameter & { default: number };

/** Hugging Face's `parameters.threshold` in a JSON body. */
export const HF_THRESHOLD = {
  name: 'parameters.threshold',
  schema: { type: 'number', minimum: 0, maximum: 1 },
} as const satisfies NumberParameter;
