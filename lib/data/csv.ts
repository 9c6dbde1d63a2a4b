// Streaming CSV rows with their line numbers (csv-parse): a 300 MB FER-2013
// CSV is never held as text. Rows that cannot be parsed (bad quoting, wrong
// column count) are reported as malformed and the stream goes on.
import { createReadStream } from 'node:fs';
import { parse } from 'csv-parse';
import type { SkipReport } from './skips.js';

export interface CsvRow {
  record: Record<string, string>;
  /** 1-based line number in the file */
  line: number;
}

/**
 * Yields the rows of a CSV with a header line. `required` columns must be in
 * the header (else an Error naming the file, what it needs and what it has).
 */
export async function* csvRows(path: string, required: readonly string[], report: SkipReport): AsyncGenerator<CsvRow> {
  const parser = createReadStream(path).pipe(
    parse({
      columns: (header: string[]) => {
        const names = header.map((h) => h.trim());
        const missing = required.filter((r) => !names.includes(r));
        if (missing.length) {
          throw new Error(
            `${path}: expected CSV columns ${required.join(', ')}; missing ${missing.join(', ')}; the header has: ${names.join(', ')}`,
          );
        }
        return names;
      },
      bom: true,
      info: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      trim: true,
    }),
  );
  parser.on('skip', (err: Error & { lines?: number }) => {
    try {
      report.skip('malformed row', `${path}:${err.lines ?? '?'}`, err.message);
    } catch (strictError) {
      parser.destroy(strictError as Error);
    }
  });
  for await (const row of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    yield { record: row.record, line: row.info.lines };
  }
}
