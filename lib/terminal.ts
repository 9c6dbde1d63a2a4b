// Untrusted text on a terminal: file names, model metadata and dataset labels
// may hold escape sequences (clear the screen, retitle the window), newlines
// that forge output rows, or tabs that shift the columns of tab-separated
// output. Every such name goes through printable() before it is printed;
// --json output stays exact (JSON.stringify escapes control characters itself).

// C0 and C1 controls, DEL, and the bidirectional overrides and isolates that
// reorder what the terminal shows (a name could display as another)
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

const UNPRINTABLE_ONE = new RegExp(UNPRINTABLE.source, 'u');

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

/** The text with every control or reordering character written as a visible escape (\n, \t, \e, \xNN, \u{NNNN}). */
export function printable(text: string): string {
  return String(text).replace(UNPRINTABLE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.codePointAt(0) as number;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/** True when the text has nothing printable() would change. */
export function isPrintable(text: string): boolean {
  return !UNPRINTABLE_ONE.test(text);
}
