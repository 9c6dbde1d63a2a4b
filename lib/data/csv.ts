// CSV files, read and written by one set of rules (RFC 4180): fields separated by commas, a field holding a comma,
// a quote or a line break quoted with its quotes doubled, so a record may span lines; what csvField writes,
// csvRows reads back as the same record (a file name with a newline in it included).
//
// Reading streams the file (a 300 MB FER-2013 CSV is never held as text) through the guarded opening of
// lib/input-file.ts (a named pipe or a device is refused, never waited on), one record at a time, each bounded
// (MAX_CSV_RECORD_CHARS: a 600 MB line is a malformed row, not a string Node.js cannot make). A bad record costs
// its first line only: when a record that spans lines cannot be read (an unterminated quote, a stray quote, the
// wrong field count), its first line is reported malformed and the lines after it are read again as records of
// their own, so a stray quote never swallows the rest of the file.
//
// Fields that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return; a
// number such as -0.5 excepted) are written behind a single quote, which reading takes off again.
import { Readable } from 'node:stream';
import { InputFileProblem, openInputFile } from '../input-file.js';
import { printable } from '../terminal.js';
import { DataError, type SkipReport } from './skips.js';

/** The most characters one record may have (FER-2013's are 8 kB; a 1024x1024 pixel row would be 4 MB). */
export const MAX_CSV_RECORD_CHARS = 32 * 2 ** 20;

export interface CsvRow {
  record: Record<string, string>;
  /** 1-based number of the record's first line in the file */
  line: number;
}

const FORMULA = /^'*[=+\-@\t\r]/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A field a spreadsheet would not run: a formula-like text behind a single quote (see the top of this file). */
function neutralised(text: string): string {
  return FORMULA.test(text) && !NUMBER.test(text) ? `'${text}` : text;
}

/** What neutralised() wrote, as it was. */
function restored(field: string): string {
  return field.startsWith("'") && FORMULA.test(field) && !NUMBER.test(field.slice(1)) ? field.slice(1) : field;
}

/** A CSV field (RFC 4180): formula-like text neutralised, quoted when it holds a comma, a quote or a line break. */
export function csvField(text: string): string {
  const safe = neutralised(text);
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

interface PhysicalLine {
  text: string;
  /** the line break that ended it: '\n', '\r\n', or '' at the end of the file */
  eol: string;
  number: number;
  /** set for a line longer than the bound: its length (its text is not kept) */
  tooLong?: number;
}

/** The lines of a stream of text, none held beyond `max` characters (a longer one comes back as tooLong). */
async function* physicalLines(chunks: AsyncIterable<string>, max: number): AsyncGenerator<PhysicalLine> {
  let pending = '';
  let skipped = 0; // characters of a too-long line dropped so far
  let number = 0;
  const line = (text: string, eol: string): PhysicalLine => {
    number++;
    if (skipped || text.length > max) {
      const length = skipped + text.length;
      skipped = 0;
      return { text: '', eol, number, tooLong: length };
    }
    return text.endsWith('\r') && eol === '\n'
      ? { text: text.slice(0, -1), eol: '\r\n', number }
      : { text, eol, number };
  };
  for await (const chunk of chunks) {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl >= 0; nl = chunk.indexOf('\n', start)) {
      const text = skipped ? chunk.slice(start, nl) : pending + chunk.slice(start, nl);
      pending = '';
      yield line(text, '\n');
      start = nl + 1;
    }
    const rest = chunk.slice(start);
    if (skipped) skipped += rest.length;
    else if (pending.length + rest.length > max) {
      skipped = pending.length + rest.length;
      pending = '';
    } else pending += rest;
  }
  if (skipped || pending) yield line(pending, '');
}

function quoteCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('"'); i >= 0; i = text.indexOf('"', i + 1)) n++;
  return n;
}

const isBlank = (c: string | undefined) => c === ' ' || c === '\t';

/** A record's fields (trimmed, as csv-parse's trim), or why it cannot be split. */
export function parseFields(text: string): string[] | string {
  if (!text.includes('"')) return text.split(',').map((f) => restored(f.trim()));
  const fields: string[] = [];
  const n = text.length;
  for (let i = 0; ;) {
    let j = i;
    while (isBlank(text[j])) j++;
    if (text[j] === '"') {
      let value = '';
      let k = j + 1;
      for (;;) {
        const q = text.indexOf('"', k);
        if (q < 0) return 'an unterminated quote';
        value += text.slice(k, q);
        k = q + 1;
        if (text[k] !== '"') break;
        value += '"'; // a doubled quote
        k++;
      }
      while (isBlank(text[k])) k++;
      if (k < n && text[k] !== ',')
        return `text after a closing quote (field ${fields.length + 1}): quote the whole field, doubling its quotes`;
      fields.push(restored(value));
      if (k >= n) return fields;
      i = k + 1;
    } else {
      const comma = text.indexOf(',', j);
      const value = text.slice(j, comma < 0 ? n : comma);
      if (value.includes('"'))
        return `a quote inside an unquoted field (field ${fields.length + 1}): quote the whole field, doubling its quotes`;
      fields.push(restored(value.trim()));
      if (comma < 0) return fields;
      i = comma + 1;
    }
  }
}

type CsvRecord = { line: number; fields: string[] } | { line: number; error: string };

/**
 * The records of a stream of lines (see the top of this file). `width()`: the field count a record must have
 * (the header's), undefined until the header is read.
 */
async function* csvRecords(
  lines: AsyncIterator<PhysicalLine>,
  max: number,
  width: () => number | undefined,
): AsyncGenerator<CsvRecord> {
  const again: PhysicalLine[] = []; // lines read as part of a record that failed: read again, in order
  const next = async (): Promise<PhysicalLine | undefined> => {
    if (again.length) return again.shift();
    const r = await lines.next();
    return r.done ? undefined : r.value;
  };
  const tooLong = (n: number) => `a line of ${n} characters, more than the ${max} a CSV record may have`;
  for (let first = await next(); first; first = await next()) {
    if (first.tooLong !== undefined) {
      yield { line: first.number, error: tooLong(first.tooLong) };
      continue;
    }
    if (!first.text.trim()) continue;
    const parts = [first];
    let text = first.text;
    let error: string | undefined;
    for (let quotes = quoteCount(text); quotes % 2 === 1;) {
      const more = await next();
      if (!more || more.tooLong !== undefined || text.length + more.text.length > max) {
        if (more) parts.push(more);
        error = more
          ? `an unterminated quote, or a quoted field of more than ${max} characters`
          : 'an unterminated quote (it runs to the end of the file)';
        break;
      }
      text += parts[parts.length - 1].eol + more.text;
      parts.push(more);
      quotes += quoteCount(more.text);
    }
    if (error === undefined) {
      const fields = parseFields(text);
      const expected = width();
      if (typeof fields === 'string') error = fields;
      else if (parts.length === 1 || expected === undefined || fields.length === expected) {
        yield { line: first.number, fields };
        continue;
      } else error = `expected ${expected} fields, found ${fields.length}`;
    }
    yield { line: first.number, error: parts.length > 1 ? `${error}; read from this line on` : error };
    again.unshift(...parts.slice(1));
  }
}

/** The header's column names, or a DataError naming the file and the first column given twice. */
function headerNames(fields: readonly string[], path: string, required: readonly string[]): string[] {
  const names = fields.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined)
    throw new DataError(
      `${printable(path)}: the CSV header names column '${printable(twice)}' twice; each column once, please`,
    );
  const missing = required.filter((r) => !names.includes(r));
  if (missing.length)
    throw new DataError(
      `${printable(path)}: expected CSV columns ${required.join(', ')}; missing ${missing.join(', ')}; ` +
        `the header has: ${printable(names.join(', '))}`,
    );
  return names;
}

/** The file opened as text, read only when a regular file (a DataError naming it otherwise). */
async function openCsv(path: string): Promise<Readable> {
  try {
    const { handle, st } = await openInputFile(path, Number.MAX_SAFE_INTEGER, 'a CSV file');
    if (st.size > 0) return handle.createReadStream({ encoding: 'utf8', start: 0, end: st.size - 1 });
    await handle.close();
    return Readable.from([]); // empty (or a kernel file whose size says 0): nothing to read
  } catch (err) {
    if (err instanceof InputFileProblem) throw new DataError(`the CSV file ${printable(path)}: ${err.reason}`, path);
    throw err;
  }
}

/**
 * Yields the rows of a CSV with a header line. `required` columns must be in the header, each column at most
 * once (else a DataError naming the file, what it needs and what it has); a record that cannot be read is
 * skipped and counted as a malformed row in `report`, with its line number.
 */
export async function* csvRows(
  path: string,
  required: readonly string[],
  report: SkipReport,
  max = MAX_CSV_RECORD_CHARS,
): AsyncGenerator<CsvRow> {
  const stream = await openCsv(path);
  let header: string[] | undefined;
  const lines = physicalLines(stream as AsyncIterable<string>, max);
  try {
    for await (const r of csvRecords(lines, max, () => header?.length)) {
      if ('error' in r) {
        if (!header) throw new DataError(`${printable(path)}:${r.line}: the CSV header cannot be read (${r.error})`);
        report.skip('malformed row', `${path}:${r.line}`, r.error);
        continue;
      }
      if (!header) {
        header = headerNames(r.fields, path, required);
        continue;
      }
      if (r.fields.length !== header.length) {
        report.skip(
          'malformed row',
          `${path}:${r.line}`,
          `expected ${header.length} fields (${header.join(', ')}), found ${r.fields.length}`,
        );
        continue;
      }
      const record: Record<string, string> = {};
      for (let i = 0; i < header.length; i++) record[header[i]] = r.fields[i];
      yield { record, line: r.line };
    }
  } finally {
    await lines.return(undefined);
    stream.destroy();
  }
}
