/**
 * Field validation for COCO JSON records, in one place. Each check throws an CocoEvalError whose
 * message says which file, which record and which field, and what was expected.
 */
import { invalidParameterMessage } from '../common/validate';
import { CocoEvalError, type CocoEvalErrorDetails, where } from './errors';

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** How a JSON field's value is shown in the evaluator's messages (strings named as such, short arrays as JSON). */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length <= 8 ? JSON.stringify(value) : `an array of length ${value.length}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number') return String(value);
  return `a ${typeof value}`;
}

function fieldError(ctx: CocoEvalErrorDetails, field: string, expected: string, value: unknown): CocoEvalError {
  return new CocoEvalError('FIELD_INVALID', `${where(ctx)}: ${invalidParameterMessage(`field '${field}'`, expected, value, describe)}`, {
    ...ctx,
    field,
  });
}

export function requireObject(value: unknown, ctx: CocoEvalErrorDetails, what: string): JsonObject {
  if (!isJsonObject(value)) {
    throw new CocoEvalError('FIELD_INVALID', `${where(ctx)}: expected ${what} (a JSON object), got ${describe(value)}`, ctx);
  }
  return value;
}

function requireField(record: JsonObject, field: string, ctx: CocoEvalErrorDetails): unknown {
  const value = record[field];
  if (value === undefined) {
    throw new CocoEvalError('FIELD_MISSING', `${where(ctx)}: missing field '${field}'`, { ...ctx, field });
  }
  return value;
}

/** A finite number (JSON overflow such as 1e999 parses to Infinity and is refused). */
export function requireFiniteNumber(record: JsonObject, field: string, ctx: CocoEvalErrorDetails): number {
  const value = requireField(record, field, ctx);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fieldError(ctx, field, 'a finite number', value);
  return value;
}

/** Ids are numbers in COCO; they index maps and are compared for equality, so they must be finite. */
export function requireId(record: JsonObject, field: string, ctx: CocoEvalErrorDetails): number {
  const value = requireField(record, field, ctx);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw fieldError(ctx, field, 'a numeric id', value);
  return value;
}

export function requireString(record: JsonObject, field: string, ctx: CocoEvalErrorDetails): string {
  const value = requireField(record, field, ctx);
  if (typeof value !== 'string') throw fieldError(ctx, field, 'a string', value);
  return value;
}

export function requireArray(record: JsonObject, field: string, ctx: CocoEvalErrorDetails): unknown[] {
  const value = requireField(record, field, ctx);
  if (!Array.isArray(value)) throw fieldError(ctx, field, 'an array', value);
  return value;
}

/** `iscrowd`: 0/1 or false/true; absent means 0. */
export function optionalCrowdFlag(record: JsonObject, ctx: CocoEvalErrorDetails): boolean {
  const value = record.iscrowd;
  if (value === undefined || value === 0 || value === false) return false;
  if (value === 1 || value === true) return true;
  throw fieldError(ctx, 'iscrowd', '0, 1, true or false', value);
}

/**
 * `bbox`: [x, y, width, height], four finite numbers with width, height >= 0.
 * Writes them into `out` at `offset` so callers fill typed arrays without temporaries.
 */
export function readBbox(record: JsonObject, ctx: CocoEvalErrorDetails, out: Float64Array, offset: number): void {
  const value = requireField(record, 'bbox', ctx);
  if (!Array.isArray(value) || value.length !== 4) throw fieldError(ctx, 'bbox', 'an array [x, y, width, height]', value);
  for (let i = 0; i < 4; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw fieldError(ctx, 'bbox', `[x, y, width, height] of finite numbers (entry ${i} is ${describe(v)})`, value);
    }
    out[offset + i] = v;
  }
  if (out[offset + 2]! < 0 || out[offset + 3]! < 0) {
    throw fieldError(ctx, 'bbox', '[x, y, width, height] with width >= 0 and height >= 0', value);
  }
}
