/**
 * Validation of request parameters (query string or multipart text fields), in one place.
 * Every failure is an INVALID_PARAMETER naming the parameter, what was expected and what came.
 */
import type { DetectOptions } from '../detection/types';
import { HttpError } from './errors';
import { CLASSES, MAX_DETECTIONS, type NumberParameter, RENDER, type RenderValue, SCORE_THRESHOLD } from './parameters';

/** Reads one parameter; `undefined` when absent. */
export type ParamSource = (name: string) => string | undefined;

function invalid(name: string, expected: string, got: string): HttpError {
  const shown = got.length > 64 ? `${got.slice(0, 64)}…` : got;
  return new HttpError('INVALID_PARAMETER', `${name} must be ${expected}, got '${shown}'`);
}

/**
 * A number parameter within its declared bounds (parameters.ts); `name` overrides the declared
 * name in messages when the value comes from elsewhere (a JSON field).
 */
export function parseNumber(source: ParamSource, parameter: NumberParameter, name: string = parameter.name): number | undefined {
  const raw = source(parameter.name);
  if (raw === undefined) return undefined;
  const { type, minimum, maximum } = parameter.schema;
  const value = Number(raw.trim());
  const wellFormed = type === 'integer' ? Number.isInteger(value) : Number.isFinite(value);
  if (raw.trim() === '' || !wellFormed || value < minimum || value > maximum)
    throw invalid(name, `${type === 'integer' ? 'an integer' : 'a number'} in [${minimum}, ${maximum}]`, raw);
  return value;
}

/**
 * `classes=circle,2`: labels or class ids of the model, background and "N/A" slots excluded.
 * Returns class ids (a label is resolved to its id), duplicates removed, in the given order.
 */
export function parseClasses(source: ParamSource, name: string, modelClasses: readonly string[]): number[] | undefined {
  const raw = source(name);
  if (raw === undefined) return undefined;
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length === 0) throw invalid(name, 'a comma-separated list of class labels or ids', raw);
  const usable = (id: number): boolean => id >= 1 && id < modelClasses.length && modelClasses[id] !== 'N/A';
  const ids: number[] = [];
  for (const entry of entries) {
    let id: number;
    if (/^\d+$/.test(entry)) {
      id = Number(entry);
    } else {
      id = modelClasses.indexOf(entry);
    }
    if (!usable(id)) {
      const known = modelClasses.map((label, i) => ({ label, i })).filter(({ i }) => usable(i));
      const list = known
        .slice(0, 20)
        .map(({ label, i }) => `${label} (${i})`)
        .join(', ');
      const more = known.length > 20 ? `, … ${known.length - 20} more (GET /v1/models)` : '';
      throw new HttpError('INVALID_PARAMETER', `${name}: unknown class '${entry}'; this model's classes are ${list}${more}`);
    }
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
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
