// What the command-line tools share: argument parsers, and errors reported
// under the flag the user typed (usage errors exit with 2).
import { InvalidArgumentError } from 'commander';
import { OutputPathError } from '../io.js';
import { OptionError, parseDecimal, parseDigits } from '../validate.js';

/** An integer >= 1, in digits (lib/validate.ts parseDigits). */
export function positiveInt(value: string): number {
  const n = parseDigits(value);
  if (!Number.isInteger(n) || n < 1 || n > 0x7fffffff) throw new InvalidArgumentError('Expected a positive integer.');
  return n;
}

/** An integer >= 0, in digits. */
export function nonNegativeInt(value: string): number {
  const n = parseDigits(value);
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff)
    throw new InvalidArgumentError('Expected a non-negative integer.');
  return n;
}

/** A finite number in decimal notation (its range is checked where it is used, naming the option). */
export function finite(value: string): number {
  const n = parseDecimal(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('Expected a number.');
  return n;
}

/** --margin (adcorre-predict, adcorre-eval --pipeline): a crop side per detected box side, in [1, 4]. */
export function cropMargin(value: string): number {
  const n = parseDecimal(value);
  if (!(n >= 1 && n <= 4)) throw new InvalidArgumentError('expected a number between 1 and 4');
  return n;
}

/**
 * `weightDecay` -> `--weight-decay`, `lambdaCE` -> `--lambda-ce`, with a tool's own exceptions.
 * Anything that is not an API option name (a flag already, `<checkpoint>`, 'the output folder') stays as it is.
 */
export function flagOf(option: string, overrides: Record<string, string> = {}): string {
  if (overrides[option]) return overrides[option];
  return /^[A-Za-z][A-Za-z0-9]*$/.test(option) ? `--${option.replace(/([A-Z]+)/g, '-$1').toLowerCase()}` : option;
}

/**
 * The message of an error from the API under the flag the user typed, and
 * whether it is a usage error (an option out of range, an output folder or
 * file that cannot be used): those exit with 2.
 */
export function describeError(
  err: unknown,
  overrides: Record<string, string> = {},
): { message: string; usage: boolean } {
  if (err instanceof OptionError) return { message: err.messageFor(flagOf(err.option, overrides)), usage: true };
  if (err instanceof OutputPathError) return { message: err.messageFor(flagOf(err.option, overrides)), usage: true };
  return { message: (err as Error)?.message ?? String(err), usage: false };
}
