/**
 * Validation of request parameters (query string or multipart text fields), in one place.
 * Every failure is an INVALID_PARAMETER naming the parameter, what was expected and what came.
 */
import type { DetectOptions } from '../detection/types';
import { HttpError } from './errors';

/** Reads one parameter; `undefined` when absent. */
export type ParamSource = (name: string) => string | undefined;

function invalid(name: string, expected: string, got: string): HttpError {
  const shown = got.length > 64 ? `${got.slice(0, 64)}…` : got;
  return new HttpError('INVALID_PARAMETER', `${name} must be ${expected}, got '${shown}'`);
}

export function parseUnitInterval(source: ParamSource, name: string): number | undefined {
  const raw = source(name);
  if (raw === undefined) return undefined;
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) throw invalid(name, 'a number in [0, 1]', raw);
  return value;
}

export function parsePositiveInteger(source: ParamSource, name: string, max: number): number | undefined {
  const raw = source(name);
  if (raw === undefined) return undefined;
  const value = Number(raw.trim());
  if (raw.trim() === '' || !Number.isInteger(value) || value < 1 || value > max) throw invalid(name, `an integer in [1, ${max}]`, raw);
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

const RENDER_VALUES: Record<string, 'png' | 'jpeg' | undefined> = {
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
  const scoreThreshold = parseUnitInterval(source, 'score_threshold') ?? defaults.scoreThreshold;
  const maxDetections = parsePositiveInteger(source, 'max_detections', 10_000) ?? defaults.maxDetections;
  const classes = parseClasses(source, 'classes', modelClasses);
  const renderRaw = source('render');
  let render: 'png' | 'jpeg' | undefined;
  if (renderRaw !== undefined) {
    const key = renderRaw.trim().toLowerCase();
    if (!Object.prototype.hasOwnProperty.call(RENDER_VALUES, key)) throw invalid('render', 'one of 1, 0, png, jpeg', renderRaw);
    render = RENDER_VALUES[key];
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
