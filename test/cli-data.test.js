import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { tempDir, writeBrokenImages, writeImage } from './helpers/fixtures.js';

const run = (args) =>
  promisify(execFile)(process.execPath, [new URL('../bin/adcorre-data.js', import.meta.url).pathname, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test("adcorre-data targets: a row's target_<class> columns (FER+ votes) take the one-hot label's part; bad ones are skipped and counted", async (t) => {
  const dir = tempDir();
  const classes = ['neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger'];
  const header = `path,label,split,predicted,${classes.map((c) => `p_${c}`).join(',')},${classes.map((c) => `target_${c}`).join(',')}`;
  const teacher = [0.1, 0.6, 0.1, 0.1, 0.05, 0.03, 0.02];
  const votes = [0.2, 0.8, 0, 0, 0, 0, 0];
  const empty = classes.map(() => '').join(',');
  const predictions = join(dir, 'train.csv');
  const lines = [
    header,
    `/a.png,happy,train,happy,${teacher.join(',')},${votes.map((v) => v * 10).join(',')}`, // counts: normalised
    `/b.png,sad,train,happy,${teacher.join(',')},${empty}`, // no votes: the one-hot label
    `/c.png,happy,train,happy,${teacher.join(',')},${votes.map((v, i) => (i === 3 ? 'x' : v)).join(',')}`, // bad
  ];
  writeFileSync(predictions, `${lines.join('\n')}\n`);
  const out = join(dir, 'targets.csv');
  const r = await run(['targets', predictions, '--out', out, '--teacher-temperature', '1', '--teacher-weight', '0.25']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /2 rows in .*targets\.csv/);
  t.regex(r.stdout, /1 bad row skipped/);
  const [, a, b] = readFileSync(out, 'utf8').trim().split('\n');
  const expected = (base) => base.map((v, c) => 0.75 * v + 0.25 * teacher[c]); // teacher sums to 1, T = 1
  t.regex(r.stdout, /1 row blended with their votes/);
  for (const [row, base] of [
    [a, votes],
    [b, classes.map((_, c) => (c === 2 ? 1 : 0))],
  ]) {
    const fields = row.split(',');
    t.is(fields.length, 3 + 7, row);
    fields.slice(3).forEach((p, c) => t.true(Math.abs(Number(p) - expected(base)[c]) < 2e-6, `${row} column ${c}`));
  }
});

test('adcorre-data stats: table, skipped files, JSON, exit codes', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'train', 'happy', 'a.jpg'));
  await writeImage(join(dir, 'train', 'angry', 'b.jpg'));
  await writeBrokenImages(join(dir, 'train', 'sad'));
  await writeImage(join(dir, 'val', 'sad', 'c.jpg'));
  const table = await run(['stats', dir]);
  t.is(table.code, 0);
  t.regex(table.stdout, /split\s+samples\s+neutral\s+happy\s+sad/);
  t.regex(table.stdout, /train\s+2\s+0\s+1\s+0\s+0\s+0\s+0\s+1/);
  t.regex(table.stdout, /skipped 2: corrupt image/);
  t.regex(table.stdout, /skipped 1: empty file/);
  const json = JSON.parse((await run(['stats', dir, '--json'])).stdout);
  t.deepEqual(
    json.splits.map((s) => [s.name, s.samples]),
    [
      ['train', 2],
      ['val', 1],
    ],
  );
  const quick = JSON.parse((await run(['stats', dir, '--json', '--no-verify'])).stdout);
  t.is(quick.splits[0].samples, 5);
  t.is((await run(['stats', join(dir, 'missing')])).code, 1);
  t.is((await run(['stats'])).code, 2);
  t.is((await run(['stats', dir, '--classes', '9'])).code, 2);
  t.is((await run(['frobnicate'])).code, 2);
});

test("adcorre-data targets: a teacher's predictions blended with the label at a temperature, as a manifest", async (t) => {
  const dir = tempDir();
  const classes = ['neutral', 'happy', 'sad', 'surprise', 'fear', 'disgust', 'anger'];
  const header = `path,label,split,predicted,${classes.map((c) => `p_${c}`).join(',')}`;
  const teacher = [0.1, 0.6, 0.1, 0.1, 0.05, 0.03, 0.02];
  const lines = [
    header,
    `a.png,happy,train,happy,${teacher.join(',')}`,
    `${join(dir, 'b.png')},sad,train,happy,${teacher.map((p) => p * 3).join(',')}`, // unnormalised: scaled to sum 1
    `c.png,anger,train,no face,${classes.map(() => '').join(',')}`, // no answer in a split that has answers: left out
    `d.png,fear,train,fear,${teacher.map((p, i) => (i === 2 ? -1 : p)).join(',')}`, // not probabilities: skipped
    `f.png,fear,train,fear,${teacher.map((p, i) => (i === 0 ? '' : p)).join(',')}`, // a column empty: skipped
    `e.png,surprise,val,happy,${classes.map(() => '').join(',')}`, // a split without answers keeps its hard labels
  ];
  mkdirSync(join(dir, 'preds'));
  const predictions = join(dir, 'preds', 'train.csv');
  writeFileSync(predictions, `${lines.join('\n')}\n`, { flag: 'w' });
  const out = join(dir, 'teacher.csv');
  const r = await run(['targets', predictions, '--out', out, '--teacher-temperature', '2', '--teacher-weight', '0.25']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /3 rows in .*teacher\.csv/);
  t.regex(r.stdout, /1 row without the teacher's answer left out/);
  t.regex(r.stdout, /2 bad rows skipped/);
  const rows = readFileSync(out, 'utf8').trim().split('\n');
  t.is(rows[0], `path,label,split,${classes.map((c) => `p_${c}`).join(',')}`);
  // softmax(log p / 2) is sqrt(p), normalised: written out here, not taken from the code under test
  const root = teacher.map(Math.sqrt);
  const sum = root.reduce((a, b) => a + b, 0);
  const expected = (label) => root.map((q, c) => 0.75 * (c === label ? 1 : 0) + (0.25 * q) / sum);
  for (const [row, path, label] of [
    [rows[1], join(dir, 'preds', 'a.png'), 1],
    [rows[2], join(dir, 'b.png'), 2],
  ]) {
    const fields = row.split(',');
    t.is(fields[0], path, 'a relative path made absolute from the predictions file');
    t.is(fields[1], classes[label]);
    t.is(fields[2], 'train');
    fields.slice(3).forEach((p, c) => t.true(Math.abs(Number(p) - expected(label)[c]) < 2e-6, `${row} column ${c}`));
  }
  t.is(rows[3], `${join(dir, 'preds', 'e.png')},surprise,val,${classes.map(() => '').join(',')}`);
  // the result is a manifest adcorre-data reads (its files need not exist with --no-verify)
  const stats = JSON.parse((await run(['stats', out, '--json', '--no-verify'])).stdout);
  t.deepEqual(
    stats.splits.map((s) => [s.name, s.samples]),
    [
      ['train', 2],
      ['val', 1],
    ],
  );
  // refused, naming the option: the output over an input, bad numbers, a missing file, a file without p_ columns
  const refused = async (args, pattern) => {
    const e = await run(['targets', ...args]);
    t.is(e.code, 2, args.join(' '));
    t.regex(e.stderr, pattern);
  };
  await refused([predictions, '--out', predictions], /--out/);
  await refused([predictions, '--out', out, '--teacher-weight', '1.5'], /--teacher-weight/);
  await refused([predictions, '--out', out, '--teacher-temperature', '0'], /--teacher-temperature/);
  await refused([join(dir, 'missing.csv'), '--out', out], /<predictions>.*missing\.csv/);
  const plain = join(dir, 'plain.csv');
  writeFileSync(plain, 'path,label\na.png,happy\n');
  await refused([plain, '--out', out], /p_<class> column/);
});
