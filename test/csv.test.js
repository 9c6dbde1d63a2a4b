// The CSV rules every manifest reader and writer shares (lib/data/csv.ts): RFC 4180 records that may span
// lines, bounded in length, columns named once, formula-like text neutralised on writing and restored on
// reading, so what adcorre-eval --predictions writes reads back as it was meant.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { labelNames, openDataset } from 'adcorre-native';
import { csvField, csvRows, DataError, MAX_CSV_RECORD_CHARS, SkipReport } from 'adcorre-native/internal';
import { cli, noStack } from './helpers/cli.js';
import { tempDir } from './helpers/fixtures.js';

test('a file name with a newline and a formula-like split survive eval --predictions -> targets', async (t) => {
  t.is(csvField('=1+2'), "'=1+2");
  t.is(csvField('@SUM(A1)'), "'@SUM(A1)");
  t.is(csvField('-0.5'), '-0.5', 'a number stays a number');
  t.is(csvField("'=x"), "''=x", 'a quote before a formula is kept through a round trip');
  const work = tempDir();
  const predictions = join(work, 'p.csv');
  const names = labelNames(7);
  const probs = names.map((_, c) => (c === 1 ? '0.9' : '0.0166667'));
  const row = (path, split) => [path, 'happy', split, 'happy', ...probs].map(csvField).join(',');
  writeFileSync(
    predictions,
    `${['path', 'label', 'split', 'predicted', ...names.map((l) => `p_${l}`)].join(',')}\n` +
      `${row('two\nlines.png', '=1+2')}\n${row('plain.png', 'train')}\n`,
  );
  const out = join(work, 'targets.csv');
  const r = await cli('adcorre-data', ['targets', predictions, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^2 rows in /, 'the two-line record is one row, not a malformed one');
  const text = readFileSync(out, 'utf8');
  t.true(
    text.includes(`"${join(work, 'two\nlines.png')}",happy,'=1+2,`),
    'quoted across lines, the formula neutralised',
  );
  const rows = [];
  for await (const { record } of csvRows(out, ['path', 'label'], new SkipReport())) rows.push(record);
  t.deepEqual(
    rows.map((x) => [x.path, x.split]),
    [
      [join(work, 'two\nlines.png'), '=1+2'],
      [join(work, 'plain.png'), 'train'],
    ],
    'read back as written',
  );
});

test('the CSV reader: records bounded, a stray quote costs one line, columns once', async (t) => {
  const work = tempDir();
  const path = join(work, 'm.csv');
  const long = 'x'.repeat(200);
  writeFileSync(
    path,
    `path,label\n"a\nb.png",happy\n${long},sad\nbad"quote.png,happy\nc.png,sad\n"open.png,happy\nd.png,anger\n`,
  );
  const report = new SkipReport();
  const rows = [];
  for await (const { record, line } of csvRows(path, ['path'], report, 100)) rows.push([record.path, line]);
  t.deepEqual(rows, [
    ['a\nb.png', 2],
    ['c.png', 6],
    ['d.png', 8],
  ]);
  const examples = report.summary().examples['malformed row'].join('\n');
  t.regex(examples, /m\.csv:4: .*a line of 204 characters, more than the 100 a CSV record may have/);
  t.regex(examples, /m\.csv:5: .*a quote inside an unquoted field/);
  t.regex(examples, /m\.csv:7: .*unterminated quote/);
  // a column given twice
  writeFileSync(path, 'path,label,path\na.png,happy,b.png\n');
  await t.throwsAsync(() => csvRows(path, ['path'], new SkipReport()).next(), {
    instanceOf: DataError,
    message: /the CSV header names column 'path' twice/,
  });
  // a line longer than Node.js's longest string: a malformed row, not RangeError (with the real bound, 32 Mi)
  writeFileSync(path, `path,label\n${'y'.repeat(MAX_CSV_RECORD_CHARS + 10)},happy\nz.png,sad\n`);
  const stats = await cli('adcorre-data', ['stats', path, '--no-verify']);
  t.regex(stats.stderr + stats.stdout, /malformed row .*a line of \d+ characters, more than the 33554432/);
  t.regex(stats.stdout, /all\s+1\s/);
  noStack(t, stats.stderr);
  // a first line of data, not a header: named in a message cut short, escapes shown as text
  writeFileSync(path, `\u001b[31m${'z'.repeat(10_000)}\nz.png,sad\n`);
  await t.throwsAsync(() => openDataset(path), {
    instanceOf: DataError,
    message: /unrecognised CSV header \(\\e\[31mzzz+\.\.\. \(4\d{3} characters\)\)/,
  });
});
