// --help for the benchmarks: a benchmark's usage is its file's opening comment.
import { readFileSync } from 'node:fs';

/** The option parseArgs needs for --help / -h. */
export const helpOption = { help: { type: 'boolean', short: 'h', default: false } };

/** Prints the opening comment of the file at fileUrl (import.meta.url), without the comment markers. */
export function printUsage(fileUrl) {
  const lines = readFileSync(new URL(fileUrl), 'utf8').split('\n');
  const body = lines.slice(lines[0].startsWith('#!') ? 1 : 0);
  const end = body.findIndex((line) => !line.startsWith('//'));
  console.log(
    body
      .slice(0, end < 0 ? body.length : end)
      .map((line) => line.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
}
