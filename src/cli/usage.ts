/**
 * Bad usage of a cpwc-detect command (unknown flag, bad value, missing argument), reported ONE way
 * by every command: `cpwc-detect CMD: MESSAGE` and `Run 'cpwc-detect CMD --help' for usage.` on
 * stderr, exit status USAGE_EXIT_CODE. Flag values are checked by src/common/validate.ts.
 */
import { describeActual, invalidParameterMessage, parseNumberText, type NumberRule } from '../common/validate';

/** The exit status of bad usage, for every command. */
export const USAGE_EXIT_CODE = 2;

/** The CLI's coded error for bad usage. */
export class UsageError extends Error {
  readonly code = 'USAGE' as const;

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Writes the usage error of `command` ('' for the top-level `cpwc-detect`) to stderr; returns USAGE_EXIT_CODE. */
export function reportUsageError(command: string, message: string): number {
  const name = command === '' ? 'cpwc-detect' : `cpwc-detect ${command}`;
  process.stderr.write(`${name}: ${message}\nRun '${name} --help' for usage.\n`);
  return USAGE_EXIT_CODE;
}

/** A flag's number, checked by `rule`; undefined when the flag is absent; UsageError when invalid. */
export function numberFlag(flag: string, raw: string | undefined, rule: NumberRule): number | undefined {
  if (raw === undefined) return undefined;
  const parsed = parseNumberText(flag, raw, rule);
  if (!parsed.ok) throw new UsageError(parsed.message);
  return parsed.value;
}

/** A flag's value from a fixed list; undefined when absent; UsageError when not one of them. */
export function choiceFlag<T extends string>(flag: string, raw: string | undefined, choices: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if ((choices as readonly string[]).includes(raw)) return raw as T;
  throw new UsageError(invalidParameterMessage(flag, `one of ${choices.join(', ')}`, raw, describeActual));
}
