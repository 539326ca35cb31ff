/**
 * Small typed predicates and ONE message builder for invalid arguments, shared by every layer
 * (after sharp's lib/is.js + invalidParameterError). Layer-neutral: nothing here throws; each layer
 * wraps the message in its own coded error (library: DetectError 'INVALID_OPTION'; server:
 * HttpError 'INVALID_PARAMETER' / ConfigError; CLI: its usage error; evaluator: CocoEvalError
 * 'INVALID_ARGUMENT'). It lives in src/common, which imports nothing, so the evaluator can use it
 * without depending on the detection library.
 *
 * @example
 * const problem = checkNumber('maxDetections', value, { integer: true, min: 1, max: MAX_DETECTIONS_LIMIT });
 * if (problem !== undefined) throw new DetectError('INVALID_OPTION', problem);
 */

/** Longest actual value shown in a message; longer ones are cut and end in '…'. */
export const MAX_SHOWN_LENGTH = 64;

export const is = {
  /** Neither undefined nor null. */
  defined<T>(value: T | undefined | null): value is T {
    return value !== undefined && value !== null;
  },
  string(value: unknown): value is string {
    return typeof value === 'string';
  },
  bool(value: unknown): value is boolean {
    return typeof value === 'boolean';
  },
  /** A finite number (not NaN, not ±Infinity). */
  number(value: unknown): value is number {
    return typeof value === 'number' && Number.isFinite(value);
  },
  integer(value: unknown): value is number {
    return Number.isInteger(value);
  },
  /** min <= value <= max (either bound may be omitted). */
  inRange(value: number, min: number | undefined, max: number | undefined): boolean {
    return (min === undefined || value >= min) && (max === undefined || value <= max);
  },
  /** A plain object (not null, not an array). */
  plainObject(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  },
  inArray<T>(value: unknown, list: readonly T[]): value is T {
    return list.includes(value as T);
  },
};

/**
 * How an actual value is shown: a string in single quotes (cut past MAX_SHOWN_LENGTH), a number,
 * boolean, null or undefined as itself, an array or object by its kind.
 */
export function describeActual(value: unknown): string {
  if (typeof value === 'string') return `'${truncate(value)}'`;
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function truncate(text: string): string {
  return text.length > MAX_SHOWN_LENGTH ? `${text.slice(0, MAX_SHOWN_LENGTH)}…` : text;
}

/**
 * An actual value read from a JSON document, shown as JSON (cut past MAX_SHOWN_LENGTH), so the
 * reader sees the field as written in the file; `nothing` for a missing field.
 */
export function describeJson(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value) ?? String(value);
  return truncate(json);
}

/**
 * The one wording of an invalid argument: "NAME must be EXPECTED, got ACTUAL", the actual shown by
 * `show` (describeActual; describeJson for fields of a JSON file).
 */
export function invalidParameterMessage(
  name: string,
  expected: string,
  actual: unknown,
  show: (value: unknown) => string = describeActual,
): string {
  return `${name} must be ${expected}, got ${show(actual)}`;
}

/** What a number must be: integer or any finite number, within optional inclusive bounds (`greaterThan`: exclusive). */
export interface NumberRule {
  integer?: boolean;
  min?: number;
  max?: number;
  greaterThan?: number;
}

/** The EXPECTED text of a rule: "an integer in [1, 100000]", "a number in [0, 1]", "an integer >= 1", "a number". */
export function describeNumberRule(rule: NumberRule): string {
  const kind = rule.integer === true ? 'an integer' : 'a number';
  if (rule.greaterThan !== undefined) {
    const above = `${kind} > ${rule.greaterThan}`;
    return rule.max !== undefined ? `${above} and <= ${rule.max}` : above;
  }
  if (rule.min !== undefined && rule.max !== undefined) return `${kind} in [${rule.min}, ${rule.max}]`;
  if (rule.min !== undefined) return `${kind} >= ${rule.min}`;
  if (rule.max !== undefined) return `${kind} <= ${rule.max}`;
  return kind;
}

/** Whether a value is a (finite) number satisfying the rule. */
export function satisfiesNumberRule(value: unknown, rule: NumberRule): value is number {
  return (
    is.number(value) &&
    (rule.integer !== true || is.integer(value)) &&
    is.inRange(value, rule.min, rule.max) &&
    (rule.greaterThan === undefined || value > rule.greaterThan)
  );
}

/** undefined when `value` satisfies the rule, else the message naming `name`. */
export function checkNumber(
  name: string,
  value: unknown,
  rule: NumberRule,
  show: (value: unknown) => string = describeActual,
): string | undefined {
  return satisfiesNumberRule(value, rule) ? undefined : invalidParameterMessage(name, describeNumberRule(rule), value, show);
}

/** A parse that either gives a value or says why not (the message is the layer's to wrap). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** The entries of a comma-separated list (a flag, an environment variable, a query parameter), trimmed, empty ones dropped. */
export function commaList(raw: string): string[] {
  return raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/**
 * A number written as text (a flag, an environment variable, a query parameter): surrounding
 * whitespace ignored, then JavaScript's Number(); empty text is not a number. The message shows
 * the text as given.
 */
export function parseNumberText(name: string, raw: string, rule: NumberRule): Parsed<number> {
  const text = raw.trim();
  const value = text === '' ? Number.NaN : Number(text);
  if (satisfiesNumberRule(value, rule)) return { ok: true, value };
  return { ok: false, message: invalidParameterMessage(name, describeNumberRule(rule), raw) };
}
