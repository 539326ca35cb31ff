/**
 * Validation of request parameters (query string or multipart text fields), in one place.
 * Every failure is an INVALID_PARAMETER naming the parameter, what was expected and what came.
 */
import { commaList, invalidParameterMessage, parseNumberText } from '../common/validate';
import { resolveClasses } from '../detection/classes';
import type { DetectOptions } from '../detection/types';
import { HttpError } from './errors';
import { CLASSES, MAX_DETECTIONS, type NumberParameter, RENDER, type RenderValue, SCORE_THRESHOLD } from './parameters';

/** Reads one parameter; `undefined` when absent. */
export type ParamSource = (name: string) => string | undefined;

function invalid(name: string, expected: string, got: string): HttpError {
  return new HttpError('INVALID_PARAMETER', invalidParameterMessage(name, expected, got));
}

/** A number parameter within its declared bounds (parameters.ts). */
export function parseNumber(source: ParamSource, parameter: NumberParameter): number | undefined {
  const raw = source(parameter.name);
  if (raw === undefined) return undefined;
  const { type, minimum, maximum } = parameter.schema;
  const parsed = parseNumberText(parameter.name, raw, { integer: type === 'integer', min: minimum, max: maximum });
  if (!parsed.ok) throw new HttpError('INVALID_PARAMETER', parsed.message);
  return parsed.value;
}

/**
 * `classes=circle,2`: labels or class ids of the model (resolved by src/detection/classes.ts:
 * background and "N/A" slots excluded). Returns class ids, duplicates removed, in the given order.
 */
export function parseClasses(source: ParamSource, name: string, modelClasses: readonly string[]): number[] | undefined {
  const raw = source(name);
  if (raw === undefined) return undefined;
  const entries = commaList(raw);
  if (entries.length === 0) throw invalid(name, 'a comma-separated list of class labels or ids', raw);
  // past the listed classes, the client finds the rest in GET /v1/models
  const resolved = resolveClasses(modelClasses, entries, '(GET /v1/models)');
  if (resolved.ok) return resolved.value;
  throw new HttpError('INVALID_PARAMETER', `${name}: ${resolved.message}`);
}

export interface NativeParams {
  options: Omit<DetectOptions, 'signal'>;
  /** Whether the caller asked for the rendered image instead of JSON (`render=1|png|jpeg`). */
  render: 'png' | 'jpeg' | undefined;
}

/** What each value of `render` (parameters.ts) asks for; `undefined`: JSON. */
const RENDER_VALUES: Readonly<Record<RenderValue, 'png' | 'jpeg' | undefined>> = {
  '1': 'png',
  true: 'png',
  png: 'png',
  jpeg: 'jpeg',
  jpg: 'jpeg',
  '0': undefined,
  false: undefined,
};

/** Parameters of POST /v1/detect (query string, or multipart fields for the same names). */
export function parseNativeParams(
  source: ParamSource,
  modelClasses: readonly string[],
  defaults: { scoreThreshold: number | undefined; maxDetections: number | undefined },
): NativeParams {
  const scoreThreshold = parseNumber(source, SCORE_THRESHOLD) ?? defaults.scoreThreshold;
  const maxDetections = parseNumber(source, MAX_DETECTIONS) ?? defaults.maxDetections;
  const classes = parseClasses(source, CLASSES.name, modelClasses);
  const renderRaw = source(RENDER.name);
  let render: 'png' | 'jpeg' | undefined;
  if (renderRaw !== undefined) {
    const key = renderRaw.trim().toLowerCase();
    const value = RENDER.schema.enum.find((v) => v === key);
    if (value === undefined) throw invalid(RENDER.name, 'one of 1, 0, png, jpeg', renderRaw);
    render = RENDER_VALUES[value];
  }
  const options: Omit<DetectOptions, 'signal'> = {};
  if (scoreThreshold !== undefined) options.scoreThreshold = scoreThreshold;
  if (maxDetections !== undefined) options.maxDetections = maxDetections;
  if (classes !== undefined) options.classes = classes;
  return { options, render };
}

/**
 * A ParamSource over the query string and then the multipart fields. A name given twice in the
 * query is refused rather than silently picking one.
 */
export function paramSource(query: Record<string, unknown>, fields: ReadonlyMap<string, string>): ParamSource {
  return (name) => {
    const fromQuery = query[name];
    if (Array.isArray(fromQuery)) throw new HttpError('INVALID_PARAMETER', `${name} is given more than once`);
    if (typeof fromQuery === 'string') return fromQuery;
    return fields.get(name);
  };
}
