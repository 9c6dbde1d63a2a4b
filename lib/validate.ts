// Argument checks with messages a user can act on: the parameter's name, what
// was expected, what was received (after sharp's lib/is.js).

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name} of length ${(value as unknown as ArrayLike<unknown>).length ?? value.byteLength}`;
  }
  if (Array.isArray(value)) return `Array of length ${value.length}`;
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}...` : value}' of type string`;
  if (typeof value === 'object') return `${value.constructor?.name ?? 'Object'} of type object`;
  return `${String(value)} of type ${typeof value}`;
}

/** A TypeError: the value is of the wrong kind. */
export function invalidType(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describe(value)}`);
}

// Numbers in text (CSV fields, command-line values) are read by one grammar: decimal notation only. Number()
// would also take '0x10', '0b1', 'Infinity' and ' ' (as 0); a count or a label must be written in digits (07 is 7,
// 3.0 is not a count).
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DIGITS = /^\d+$/;

/** A number written in decimal (12, -0.5, 1e-3, 07), else NaN: no hexadecimal, binary, Infinity or blank. */
export function parseDecimal(text: string): number {
  const t = text.trim();
  return DECIMAL.test(t) ? Number(t) : Number.NaN;
}

/** A whole number written in digits (7, 07), else NaN: no sign, point, exponent or other base. */
export function parseDigits(text: string): number {
  const t = text.trim();
  return DIGITS.test(t) ? Number(t) : Number.NaN;
}

/** A RangeError: the value is of the right kind but out of range. */
export function invalidRange(name: string, expected: string, received: string): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${received}`);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

export function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidType(name, 'positive integer', value);
  if (!Number.isInteger(value) || value < 1 || value > 0x7fffffff) {
    throw invalidRange(name, 'positive integer', describe(value));
  }
  return value;
}

export function finiteNumber(name: string, value: unknown): number {
  if (typeof value !== 'number') throw invalidType(name, 'finite number', value);
  if (!Number.isFinite(value)) throw invalidRange(name, 'finite number', describe(value));
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  const expected = `one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
  if (typeof value !== 'string') throw invalidType(name, expected, value);
  if (!(allowed as readonly string[]).includes(value)) throw invalidRange(name, expected, describe(value));
  return value as T;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(name, 'boolean', value);
  return value;
}

/** Throws for keys of `options` that are not in `known` (catches typos such as `weight`). */
export function knownKeys(name: string, options: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(`Unknown option '${key}' in ${name}; expected one of ${known.join(', ')}`);
    }
  }
}

type NumericArray = ArrayLike<number> & { length: number };

export function isNumericArray(value: unknown): value is NumericArray {
  return (
    Array.isArray(value) ||
    (ArrayBuffer.isView(value) &&
      !(value instanceof DataView) &&
      !(value instanceof BigInt64Array) &&
      !(value instanceof BigUint64Array))
  );
}

/** A Float32Array view of `value` (no copy when it already is one). */
export function float32Array(name: string, value: unknown, length: number, lengthText: string): Float32Array {
  if (!isNumericArray(value)) throw invalidType(name, 'Float32Array (or Float64Array or number[])', value);
  if (value.length !== length) {
    throw invalidRange(name, `length ${lengthText} = ${length}`, `length ${value.length}`);
  }
  if (value instanceof Float32Array) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (typeof value[i] !== 'number') throw invalidType(`${name}[${i}]`, 'number', value[i]);
    }
  }
  return Float32Array.from(value);
}

/** Integer labels in [0, numClasses) as an Int32Array (no copy when it already is one). */
export function labelArray(name: string, value: unknown, numClasses: number): Int32Array {
  if (!isNumericArray(value)) throw invalidType(name, 'Int32Array (or an array of integers)', value);
  const out = value instanceof Int32Array ? value : new Int32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v = value[i] as unknown;
    if (typeof v !== 'number') throw invalidType(`${name}[${i}]`, `integer in [0, ${numClasses})`, v);
    if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
      throw invalidRange(`${name}[${i}]`, `integer in [0, ${numClasses})`, describe(v));
    }
    out[i] = v;
  }
  return out;
}

/** Values in [lo, hi] as a Float32Array of the given length. */
export function boundedArray(
  name: string,
  value: unknown,
  length: number,
  lengthText: string,
  lo: number,
  hi: number,
): Float32Array {
  if (!isNumericArray(value)) throw invalidType(name, 'Float32Array (or Float64Array or number[])', value);
  if (value.length !== length) {
    throw invalidRange(name, `length ${lengthText} = ${length}`, `length ${value.length}`);
  }
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const v = value[i] as unknown;
    if (typeof v !== 'number') throw invalidType(`${name}[${i}]`, `number in [${lo}, ${hi}]`, v);
    if (!(v >= lo && v <= hi)) throw invalidRange(`${name}[${i}]`, `number in [${lo}, ${hi}]`, describe(v));
    out[i] = v;
  }
  return out;
}

/**
 * An option out of range, remembering which option and what was expected, so
 * that a command-line tool can report it under its flag (`--lr`) rather than
 * the API's name (`lr`).
 */
export class OptionError extends RangeError {
  constructor(
    readonly option: string,
    readonly expected: string,
    readonly received: string,
    readonly detail = '',
  ) {
    super(OptionError.format(option, expected, received, detail));
  }

  static format(option: string, expected: string, received: string, detail = ''): string {
    return `Expected ${expected} for ${option} but received ${received}${detail ? `: ${detail}` : ''}`;
  }

  /** The message with the option called `name`. */
  messageFor(name: string): string {
    return OptionError.format(name, this.expected, this.received, this.detail);
  }
}

/** A finite number in a range, as an OptionError naming the option otherwise. */
export function numberIn(
  option: string,
  value: unknown,
  range: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; integer?: boolean },
  expected: string,
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!range.integer || Number.isInteger(value)) &&
    (range.min === undefined || (range.minExclusive ? value > range.min : value >= range.min)) &&
    (range.max === undefined || (range.maxExclusive ? value < range.max : value <= range.max));
  if (!ok) throw new OptionError(option, expected, typeof value === 'string' ? `'${value}'` : String(value));
  return value as number;
}

/**
 * A decoder's (sharp's, libvips') error as one line: its message may run over
 * several lines with the cause after the first ("corrupt header: VipsJpeg:
 * premature end of JPEG image" then "VipsJpeg: Bogus marker length"), often
 * repeated; every distinct line is kept, in order.
 */
export function decoderMessage(err: unknown): string {
  const lines = String((err as Error)?.message ?? err)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const text = [...new Set(lines)].join('; ');
  return text.endsWith(':') ? `${text} (the decoder gave no further detail)` : text;
}
