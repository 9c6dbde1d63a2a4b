// FER+ in the layout FERPlus's generate_training_data.py writes (FER2013Train /
// FER2013Valid / FER2013Test, PNGs and a header-less label.csv each), on a
// fixture written here with every kind of bad row; majority and distribution
// labels against hand-computed values; soft targets through the DataLoader;
// the real copy in ../shared when it is there.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import {
  DataError,
  DataLoader,
  detectFormat,
  ferPlusLabel,
  ferPlusReferenceKeeps,
  labelNames,
  openDataset,
} from 'adcorre-native';
import { fer2013Csv, ferPixels, tempDir, writeImage } from './helpers/fixtures.js';
import { sharedDir } from './helpers/shared.js';
import { Trainer } from 'adcorre-native/internal';
import { cli } from './helpers/cli.js';
import { untrainedModel } from './helpers/models.js';

const BOX = '"(0, 0, 48, 48)"';
const row = (name, votes, box = BOX) => `${name},${box},${votes.join(',')}`;

// Train: label.csv lines 1..11; val: lines 1..2. Votes in FER+ column order:
// neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF.
const TRAIN_ROWS = [
  row('fer0000000.png', [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]), // 1 neutral
  row('fer0000001.png', [0, 8, 1, 0, 0, 0, 0, 1, 0, 0]), // 2 happy
  row('fer0000002.png', [4, 4, 0, 0, 0, 0, 0, 0, 2, 0]), // 3 tie
  row('fer0000003.png', [1, 0, 0, 0, 0, 0, 0, 0, 8, 1]), // 4 unknown majority
  row('fer0000004.png', [0, 0, 0, 0, 0, 0, 1, 0, 2, 7]), // 5 NF majority
  row('fer0000005.png', [1, 2, 3]), // 6 wrong number of columns
  row('fer0000006.png', [0, 'a', 0, 0, 0, 0, 0, 0, 0, 10]), // 7 non-numeric vote
  row('fer0000007.png', [10, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // 8 image missing
  row('fer0000008.png', [0, 0, 0, 0, 1, 0, 0, 6, 2, 1]), // 9 contempt
  'fer0000010.png, "(2, 2, 44, 44)", 0, 0, 9, 1, 0, 0, 0, 0, 0, 0', // 10 surprise, spaces, a face box
  '', // a blank line is not a row
];
const VAL_ROWS = [
  row('fer0000100.png', [0, 0, 0, 7, 3, 0, 0, 0, 0, 0]), // sad
  row('fer0000101.png', [2, 0, 0, 0, 0, 0, 5, 0, 3, 0]), // fear
];

async function writeFerPlus() {
  const root = tempDir('adcorre-ferplus-');
  const train = join(root, 'FER2013Train');
  const val = join(root, 'FER2013Valid');
  // every named image but fer0000007.png, and fer0000009.png that no row names
  for (const i of [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]) {
    await writeImage(join(train, `fer${String(i).padStart(7, '0')}.png`), { seed: i, format: 'png' });
  }
  for (const i of [100, 101]) await writeImage(join(val, `fer0000${i}.png`), { seed: i, format: 'png' });
  writeFileSync(join(train, 'label.csv'), `${TRAIN_ROWS.join('\n')}\n`);
  writeFileSync(join(val, 'label.csv'), VAL_ROWS.join('\r\n'));
  return root;
}

const hist = (split, classes) => {
  const h = new Array(classes).fill(0);
  for (const s of split.samples) h[s.label]++;
  return h;
};
const names = (split) => split.samples.map((s) => s.source.split('/').pop());
const near = (t, got, expected, what) => {
  t.is(got.length, expected.length, what);
  t.true(
    expected.every((v, i) => Math.abs(got[i] - v) < 1e-6),
    `${what}: ${Array.from(got)} vs ${expected}`,
  );
};

test('FER+ folders: detected, majority labels, left-out and bad rows counted per reason', async (t) => {
  const root = await writeFerPlus();
  t.is(detectFormat(root), 'ferplus');
  t.is(detectFormat(join(root, 'FER2013Valid')), 'ferplus');
  t.is(detectFormat(join(root, 'FER2013Train', 'label.csv')), 'ferplus');
  const ds = await openDataset(root);
  t.is(ds.format, 'ferplus');
  t.is(ds.classes, 8); // FER+ defaults to 8 classes, contempt included
  t.deepEqual([...ds.splits.keys()], ['train', 'val']);
  const train = ds.splits.get('train');
  t.deepEqual(names(train), ['fer0000000.png', 'fer0000001.png', 'fer0000008.png', 'fer0000010.png']);
  // canonical order: neutral, happy, sad, surprise, fear, disgust, anger, contempt
  t.deepEqual(
    train.samples.map((s) => labelNames(8)[s.label]),
    ['neutral', 'happy', 'contempt', 'surprise'],
  );
  t.deepEqual(hist(ds.splits.get('val'), 8), [0, 0, 1, 0, 1, 0, 0, 0]);
  t.true(train.samples.every((s) => s.target === undefined)); // majority: no soft targets
  t.is(train.samples[0].box, undefined); // the whole 48x48 crop
  t.deepEqual(train.samples[3].box, [2, 2, 44, 44]);
  t.regex(train.samples[1].where, /FER2013Train\/label\.csv:2 \(fer0000001\.png\)$/);
  const { skipped, excluded, examples } = ds.report.summary();
  t.deepEqual(excluded, { 'FER+ tie': 1, 'FER+ majority unknown': 1, 'FER+ majority NF': 1 });
  t.deepEqual(skipped, { 'malformed row': 2, 'missing file': 1, 'unlabelled image': 1 });
  t.regex(examples['malformed row'][0], /label\.csv:6: malformed row \(expected 12 fields .*found 5\)/);
  t.regex(examples['malformed row'][1], /label\.csv:7: malformed row \(.*happiness is 'a'\)/);
  t.regex(examples['missing file'][0], /label\.csv:8: missing file \(fer0000007\.png is not in .*FER2013Train\)/);
  t.regex(examples['unlabelled image'][0], /fer0000009\.png: unlabelled image \(named in no row of .*label\.csv\)/);

  // 7 classes: contempt majorities are left out too
  const ds7 = await openDataset(root, { classes: 7 });
  t.deepEqual(hist(ds7.splits.get('train'), 7), [1, 1, 0, 1, 0, 0, 0]);
  t.is(ds7.report.summary().excluded['contempt (not in the 7-class label space)'], 1);

  // one split folder on its own
  const valOnly = await openDataset(join(root, 'FER2013Valid'));
  t.deepEqual([...valOnly.splits.keys()], ['val']);
  t.is(valOnly.report.total, 0);
  t.deepEqual([...(await openDataset(join(root, 'FER2013Valid', 'label.csv'))).splits.keys()], ['val']);
  // and every kept image decodes
  const loader = new DataLoader(train, { batchSize: 8, size: 48, channels: 1, workers: 0 });
  let count = 0;
  for await (const b of loader.epoch(0)) count += b.count;
  t.is(count, 4);
  t.is(loader.report.total, 0);
});

test('FER+ folders: distribution labels are the normalised votes in canonical order (8 and 7 classes)', async (t) => {
  const root = await writeFerPlus();
  const ds = await openDataset(root, { labels: 'distribution' });
  const train = ds.splits.get('train');
  // the same images as the majority mode, each labelled with its majority class
  t.deepEqual(names(train), ['fer0000000.png', 'fer0000001.png', 'fer0000008.png', 'fer0000010.png']);
  t.deepEqual(hist(train, 8), [1, 1, 0, 1, 0, 0, 0, 1]);
  t.deepEqual(ds.report.summary().excluded, { 'FER+ tie': 1, 'FER+ majority unknown': 1, 'FER+ majority NF': 1 });
  //                           neutral happy sad surprise fear disgust anger contempt
  near(t, train.samples[0].target, [0.4, 0, 0.1, 0, 0, 0.2, 0.3, 0], 'fer0000000');
  near(t, train.samples[1].target, [0, 0.8, 0, 0.1, 0, 0, 0, 0.1], 'fer0000001');
  near(t, train.samples[2].target, [0, 0, 0, 0, 0, 0, 1 / 7, 6 / 7], 'fer0000008 (unknown and NF votes dropped)');
  near(t, train.samples[3].target, [0, 0, 0.1, 0.9, 0, 0, 0, 0], 'fer0000010');
  const val = ds.splits.get('val');
  near(t, val.samples[0].target, [0, 0, 0.7, 0, 0, 0, 0.3, 0], 'fer0000100');
  near(t, val.samples[1].target, [2 / 7, 0, 0, 0, 5 / 7, 0, 0, 0], 'fer0000101');

  // 7 classes: contempt's votes dropped and the rest renormalised
  const ds7 = await openDataset(root, { labels: 'distribution', classes: 7 });
  const train7 = ds7.splits.get('train');
  t.deepEqual(names(train7), ['fer0000000.png', 'fer0000001.png', 'fer0000010.png']);
  near(t, train7.samples[0].target, [0.4, 0, 0.1, 0, 0, 0.2, 0.3], 'fer0000000, 7 classes');
  near(t, train7.samples[1].target, [0, 8 / 9, 0, 1 / 9, 0, 0, 0], 'fer0000001, 7 classes');
});

test('FER+ folders: strict mode stops at the first bad row with its file and line', async (t) => {
  const root = await writeFerPlus();
  const err = await t.throwsAsync(() => openDataset(root, { strict: true }), { instanceOf: DataError });
  t.regex(err.message, /FER2013Train\/label\.csv:6: malformed row \(expected 12 fields/);
  // the unlabelled image is the stop when the rows are good
  const dir = tempDir('adcorre-ferplus-');
  await writeImage(join(dir, 'FER2013Valid', 'a.png'), { format: 'png' });
  await writeImage(join(dir, 'FER2013Valid', 'b.png'), { format: 'png', seed: 2 });
  writeFileSync(join(dir, 'FER2013Valid', 'label.csv'), row('a.png', [0, 9, 0, 0, 0, 0, 0, 0, 1, 0]));
  await t.throwsAsync(() => openDataset(dir, { strict: true }), {
    instanceOf: DataError,
    message: /FER2013Valid\/b\.png: unlabelled image/,
  });
  // a missing image is an error in strict mode too
  writeFileSync(join(dir, 'FER2013Valid', 'label.csv'), row('c.png', [0, 9, 0, 0, 0, 0, 0, 0, 1, 0]));
  await t.throwsAsync(() => openDataset(dir, { strict: true }), {
    instanceOf: DataError,
    message: /FER2013Valid\/label\.csv:1: missing file \(c\.png/,
  });
});

test('labels option: distribution needs votes; a bad mode names the parameter', async (t) => {
  const root = await writeFerPlus();
  await t.throwsAsync(() => openDataset(root, { labels: 'soft' }), {
    instanceOf: RangeError,
    message: /one of majority, distribution for labels but received 'soft'/,
  });
  const folder = tempDir();
  await writeImage(join(folder, 'happy', 'a.jpg'));
  await t.throwsAsync(() => openDataset(folder, { labels: 'distribution' }), {
    instanceOf: RangeError,
    message: /labels 'distribution' needs vote counts, which only FER\+ has; .* is folder/,
  });
  const empty = tempDir();
  mkdirSync(join(empty, 'FER2013Train'));
  writeFileSync(join(empty, 'FER2013Train', 'label.csv'), row('x.png', [0, 0, 0, 0, 0, 0, 0, 0, 10, 0]));
  await t.throwsAsync(() => openDataset(empty), { instanceOf: DataError, message: /no usable rows/ });
});

test('FER+ CSV layout (fer2013new.csv + FER-2013 CSV): the same distribution labels', async (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, 'fer2013.csv'), fer2013Csv([0, 1, 2].map((i) => [0, ferPixels(i), 'Training'])));
  writeFileSync(
    join(dir, 'fer2013new.csv'),
    [
      'Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF',
      'Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0',
      'Training,fer0000001.png,4,4,0,0,0,0,0,0,2,0', // tie
      'Training,fer0000002.png,0,8,1,0,0,0,0,1,0,x', // non-numeric
    ].join('\n'),
  );
  const ds = await openDataset(dir, { labels: 'distribution' });
  const [only] = ds.splits.get('train').samples;
  t.is(ds.splits.get('train').samples.length, 1);
  t.is(only.label, 0);
  near(t, only.target, [0.4, 0, 0.1, 0, 0, 0.2, 0.3, 0], 'fer2013new.csv row 2');
  t.is(ds.report.summary().excluded['FER+ tie'], 1);
  t.regex(ds.report.summary().examples['malformed row'][0], /fer2013new\.csv:4: .*NF is 'x'/);
  t.is((await openDataset(dir)).splits.get('train').samples[0].target, undefined);
});

// A larger FER+ folder for the loader: 30 images, votes varied by index.
async function writeVotedFolder(n = 30) {
  const root = tempDir('adcorre-ferplus-');
  const dir = join(root, 'FER2013Train');
  const rows = [];
  for (let i = 0; i < n; i++) {
    const name = `fer${String(i).padStart(7, '0')}.png`;
    await writeImage(join(dir, name), { seed: i, format: 'png' });
    const votes = new Array(10).fill(0);
    votes[i % 8] = 6; // majority: column i % 8
    votes[(i + 3) % 8] += 2;
    votes[8 + (i % 2)] += 1 + (i % 3); // unknown or NF votes, dropped from the distribution
    rows.push(row(name, votes));
  }
  writeFileSync(join(dir, 'label.csv'), rows.join('\n'));
  return root;
}

test('DataLoader: batch.targets rows are the samples of batch.labels, shuffled and balanced, with workers and the cache', async (t) => {
  const root = await writeVotedFolder();
  const ds = await openDataset(root, { labels: 'distribution' });
  const split = ds.splits.get('train');
  t.is(split.samples.length, 30);
  const K = ds.classes;
  const run = async (options, epochs = [0, 1]) => {
    const loader = new DataLoader(split, { batchSize: 7, size: 32, channels: 1, seed: 5, ...options });
    const seen = [];
    try {
      for (const epoch of epochs) {
        for await (const b of loader.epoch(epoch)) {
          t.true(b.targets instanceof Float32Array);
          t.is(b.targets.length, b.count * K);
          for (let k = 0; k < b.count; k++) {
            const sample = split.samples[b.indices[k]];
            const got = b.targets.subarray(k * K, (k + 1) * K);
            t.deepEqual(Array.from(got), Array.from(sample.target));
            t.is(b.labels[k], sample.label);
            t.true(Math.abs(got.reduce((s, v) => s + v, 0) - 1) < 1e-6);
            // the label is the distribution's largest entry
            t.is(got.indexOf(Math.max(...got)), sample.label);
          }
          seen.push(...b.indices);
        }
      }
    } finally {
      await loader.close();
    }
    return seen;
  };
  const threaded = await run({ workers: 2, shuffle: true, augment: true }); // cache: 'auto' fills the cache
  const inline = await run({ workers: 0, shuffle: true, augment: true, cache: false });
  t.deepEqual(threaded, inline);
  t.notDeepEqual(
    threaded.slice(0, 30),
    Array.from({ length: 30 }, (_, i) => i),
  );
  await run({ workers: 2, balanced: true, cache: false });
  // majority mode: no targets on the batches
  const plain = new DataLoader((await openDataset(root)).splits.get('train'), {
    batchSize: 8,
    size: 16,
    channels: 1,
    workers: 0,
  });
  for await (const b of plain.epoch(0)) t.is(b.targets, undefined);
  // targets on some samples only is refused, naming them
  const mixed = { name: 'mixed', samples: [split.samples[0], { ...split.samples[1], target: undefined }] };
  t.throws(() => new DataLoader(mixed, { batchSize: 2, size: 16, channels: 1, workers: 0 }), {
    instanceOf: DataError,
    message: /soft targets must be on every sample or on none.*has none/,
  });
});

test('adcorre-data stats on a FER+ folder: counts per split and class, left out per reason', async (t) => {
  const root = await writeFerPlus();
  const bin = new URL('../bin/adcorre-data.js', import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [bin, 'stats', root]);
  t.regex(stdout, /\(ferplus, 8 classes, every image decoded\)/);
  t.regex(stdout, /split\s+samples\s+neutral\s+happy\s+sad\s+surprise\s+fear\s+disgust\s+anger\s+contempt/);
  t.regex(stdout, /train\s+4\s+1\s+1\s+0\s+1\s+0\s+0\s+0\s+1\n/);
  t.regex(stdout, /val\s+2\s+0\s+0\s+1\s+0\s+1\s+0\s+0\s+0\n/);
  for (const line of [
    'skipped 2: malformed row',
    'skipped 1: missing file',
    'skipped 1: unlabelled image',
    'excluded 1: FER+ tie',
    'excluded 1: FER+ majority unknown',
    'excluded 1: FER+ majority NF',
  ]) {
    t.true(stdout.includes(line), line);
  }
});

// The real FER+ folders in ../shared (never committed).
const ferplus = join(sharedDir, 'data', 'ferplus');
const present = existsSync(join(ferplus, 'FER2013Train', 'label.csv'));
const maybe = present ? test : test.skip;
const why = present ? '' : ` (skipped: ${ferplus} is absent)`;

maybe(`FER+ in ../shared: 26,940 train and 3,396 val images in 8 classes, the rest counted${why}`, async (t) => {
  const ds = await openDataset(ferplus, { labels: 'distribution' });
  t.is(ds.format, 'ferplus');
  t.deepEqual([...ds.splits.keys()], ['train', 'val']);
  const count = (split) => Object.fromEntries(labelNames(8).map((n, i) => [n, hist(ds.splits.get(split), 8)[i]]));
  t.deepEqual(count('train'), {
    neutral: 9360,
    happy: 7408,
    sad: 3418,
    surprise: 3368,
    fear: 651,
    disgust: 175,
    anger: 2395,
    contempt: 165,
  });
  t.deepEqual(count('val'), {
    neutral: 1241,
    happy: 877,
    sad: 396,
    surprise: 441,
    fear: 70,
    disgust: 31,
    anger: 314,
    contempt: 26,
  });
  // 28,558 + 3,579 rows: every one kept or left out by the FER+ rules, none bad
  const { skipped, excluded } = ds.report.summary();
  t.deepEqual(skipped, {});
  t.deepEqual(excluded, { 'FER+ tie': 1604, 'FER+ majority unknown': 194, 'FER+ majority NF': 3 });
  t.is(26940 + 3396 + 1604 + 194 + 3, 28558 + 3579);
  // the reference protocol keeps 3,191 of FER2013Valid's images (../shared's README, counted with FERPlus's code)
  t.is(ds.splits.get('val').samples.filter((s) => s.ferPlusReference).length, 3191);
  for (const split of ds.splits.values()) {
    for (const s of split.samples) {
      const sum = s.target.reduce((a, v) => a + v, 0);
      if (Math.abs(sum - 1) > 1e-5 || s.target.indexOf(Math.max(...s.target)) !== s.label) {
        t.fail(`${s.where}: target ${Array.from(s.target)} vs label ${s.label}`);
      }
    }
  }
  const ds7 = await openDataset(ferplus, { classes: 7 });
  t.is(ds7.splits.get('train').samples.length, 26940 - 165);
  t.is(ds7.splits.get('val').samples.length, 3396 - 26);
});

test("Trainer labels 'distribution' (adcorre-train --labels distribution): the engine trains the cross-entropy on the votes (the run differs from majority training, seed for seed)", async (t) => {
  const data = await writeVotedFolder(40);
  const tinyPlus = { inputSize: 36, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 8 };
  const base = { data, arch: tinyPlus, batch: 8, lr: 3e-3, seed: 3, workers: 0, epochs: 1 };
  const runs = {};
  for (const labels of ['majority', 'distribution']) {
    const out = tempDir(`adcorre-ferplus-run-${labels}-`);
    await new Trainer({ ...base, labels, out }).train();
    const [epoch] = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map(JSON.parse);
    runs[labels] = epoch;
    t.true(existsSync(join(out, 'model.onnx')), `${labels}: model.onnx`);
  }
  t.true(Number.isFinite(runs.distribution.train.loss));
  t.not(runs.distribution.train.loss, runs.majority.train.loss);
  t.throws(() => new Trainer({ ...base, labels: 'votes', out: tempDir() }), {
    message: /'majority'.*'distribution'.*labels/,
  });
});

test("adcorre-eval --labels distribution writes each image's votes into --predictions (target_<class>), which adcorre-data targets blends with the teacher's", async (t) => {
  const root = await writeFerPlus();
  const dir = tempDir();
  const model = join(dir, 'm.onnx');
  writeFileSync(model, untrainedModel()); // 7 classes: the votes over the 7 emotions
  const preds = join(dir, 'preds.csv');
  const args = ['--model', model, '--data', root, '--split', 'val', '--json', '--predictions', preds];
  const r = await cli('adcorre-eval', [...args, '--labels', 'distribution']);
  t.is(r.code, 0, r.stderr);
  const classes = labelNames(7);
  const [header, ...rows] = readFileSync(preds, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(','));
  t.deepEqual(header.slice(4), [...classes.map((c) => `p_${c}`), ...classes.map((c) => `target_${c}`)]);
  // the votes of VAL_ROWS, normalised over the 7 emotions, written out here: sad 7 + anger 3; neutral 2 + fear 5
  const votes = {
    'fer0000100.png': { label: 'sad', target: [0, 0, 0.7, 0, 0, 0, 0.3] },
    'fer0000101.png': { label: 'fear', target: [2 / 7, 0, 0, 0, 5 / 7, 0, 0] },
  };
  t.is(rows.length, 2);
  for (const row of rows) {
    const want = votes[row[0].split('/').pop()];
    t.is(row[1], want.label, 'the label stays the majority');
    near(t, row.slice(11).map(Number), want.target, row[0]);
  }
  // accuracy is on the majority either way: the same metrics as without --labels
  const plain = await cli('adcorre-eval', [...args.slice(0, -1), join(dir, 'plain.csv')]);
  t.is(plain.code, 0, plain.stderr);
  t.deepEqual(JSON.parse(plain.stdout).confusion, JSON.parse(r.stdout).confusion);
  t.false(readFileSync(join(dir, 'plain.csv'), 'utf8').includes('target_'));
  // distillation from the file: (1 - a) x the votes + a x the teacher's (T = 1: its probabilities), not one-hot
  const out = join(dir, 'targets.csv');
  const made = await cli('adcorre-data', ['targets', preds, '--out', out, '--teacher-temperature', '1']);
  t.is(made.code, 0, made.stderr);
  t.regex(made.stdout, /2 rows blended with their votes/);
  const blended = readFileSync(out, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(','));
  for (const [i, row] of blended.entries()) {
    const teacher = rows[i].slice(4, 11).map(Number);
    const sum = teacher.reduce((a, b) => a + b, 0);
    const want = votes[row[0].split('/').pop()].target.map((v, c) => 0.5 * v + (0.5 * teacher[c]) / sum);
    t.is(row.length, 3 + 7, row.join(','));
    t.true(
      row.slice(3).every((p, c) => Math.abs(Number(p) - want[c]) < 2e-6),
      `${row} against ${want}`,
    );
  }
  // a dataset without votes: a usage error naming the option, before anything is read
  const folder = tempDir();
  await writeImage(join(folder, 'happy', 'a.jpg'));
  const refused = await cli('adcorre-eval', [
    ...args.slice(0, 2),
    '--data',
    folder,
    '--labels',
    'distribution',
    '--predictions',
    join(dir, 'x.csv'),
  ]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /for --labels but received 'distribution'.* is folder/);
  // refused too: without --predictions (it would do nothing), with --pipeline (photos have no votes)
  for (const [extra, pattern] of [
    [[], /--predictions to write the votes into .* for --labels/],
    [['--predictions', join(dir, 'y.csv'), '--pipeline'], /with --pipeline .* for --labels/],
  ]) {
    const e = await cli('adcorre-eval', [...args.slice(0, 2), '--data', root, '--labels', 'distribution', ...extra]);
    t.is(e.code, 2, extra.join(' '));
    t.regex(e.stderr, pattern);
  }
  // a path that does not exist is the dataset's error (exit 1), as without --labels
  const missing = await cli('adcorre-eval', [
    ...args.slice(0, 2),
    '--data',
    join(dir, 'nothing'),
    '--labels',
    'distribution',
    '--predictions',
    join(dir, 'z.csv'),
  ]);
  t.is(missing.code, 1, missing.stderr);
});

test("FER+ reference protocol (FERPlus's ferplus.py, 'majority'): single votes zeroed, kept where the top has more than half of the rest and is an emotion", (t) => {
  // votes in FER+ column order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
  const cases = [
    // [votes, kept, why (worked by hand)]
    [[0, 8, 1, 0, 0, 0, 0, 1, 0, 0], true, 'happy 8 of 8 once the single votes are zeroed'],
    [[4, 0, 0, 1, 3, 2, 0, 0, 0, 0], false, 'neutral 4 of 4 + 3 + 2 = 9: not above half'],
    [[5, 0, 0, 3, 2, 0, 0, 0, 0, 0], false, 'neutral 5 of 10: exactly half is not above it'],
    [[6, 0, 0, 3, 2, 0, 0, 0, 0, 0], true, 'neutral 6 of 11'],
    [[3, 1, 1, 1, 1, 1, 1, 1, 0, 0], true, 'neutral 3 of 3: the seven single votes are outliers'],
    [[2, 1, 1, 1, 1, 1, 1, 1, 1, 0], true, 'neutral 2 of 2'],
    [[4, 4, 0, 0, 0, 0, 0, 0, 2, 0], false, 'a tie: neither is above half'],
    [[2, 0, 0, 0, 0, 0, 0, 0, 6, 0], false, 'unknown on top'],
    [[1, 1, 1, 0, 0, 0, 0, 0, 0, 3], false, 'not-a-face on top (3 of 3)'],
    [[1, 1, 1, 1, 1, 1, 1, 1, 1, 1], false, 'only single votes: nothing left'],
    [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], false, 'no votes'],
    [[0, 0, 0, 0, 1, 0, 0, 6, 2, 1], true, 'contempt 6 of 8'],
  ];
  for (const [votes, kept, why] of cases) t.is(ferPlusReferenceKeeps(votes), kept, `${votes}: ${why}`);
  // what it keeps, the plain majority keeps with the same label
  for (const [votes, kept] of cases) if (kept) t.false('excluded' in ferPlusLabel(votes, 8), String(votes));
});

test('FER+ folders, protocol reference: the subset the plain read marks; other formats refuse it', async (t) => {
  const root = await writeFerPlus();
  const plain = await openDataset(root);
  t.deepEqual(
    plain.splits.get('train').samples.map((s) => s.ferPlusReference),
    [false, true, true, true], // rows 1, 2, 9, 10 of TRAIN_ROWS: neutral 4 of 9 is not above half
  );
  t.deepEqual(
    plain.splits.get('val').samples.map((s) => s.ferPlusReference),
    [true, false], // sad 7 of 10; fear 5 of 10 (2 + 5 + 3) is not above half
  );
  const reference = await openDataset(root, { protocol: 'reference' });
  t.deepEqual(names(reference.splits.get('train')), ['fer0000001.png', 'fer0000008.png', 'fer0000010.png']);
  t.deepEqual(names(reference.splits.get('val')), ['fer0000100.png']);
  t.is(reference.report.summary().excluded['FER+ no majority above half (reference protocol)'], 2);
  const folder = tempDir();
  await writeImage(join(folder, 'happy', 'a.jpg'));
  await t.throwsAsync(openDataset(folder, { protocol: 'reference' }), { message: /protocol 'reference'.*folder/ });
  await t.throwsAsync(openDataset(root, { protocol: 'strict' }), { message: /plain, reference for protocol/ });
});

test('adcorre-eval on FER+: the reference protocol reported, both in --json with their counts; --ferplus-protocol plain; refused elsewhere', async (t) => {
  const root = await writeFerPlus();
  const dir = tempDir();
  const model = join(dir, 'm.onnx');
  writeFileSync(model, untrainedModel());
  const args = ['--model', model, '--data', root, '--split', 'val', '--json'];
  const r = await cli('adcorre-eval', args);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.protocol, 'reference');
  t.is(out.samples, 1);
  t.is(out.ferplus.reference.samples, 1);
  t.is(out.ferplus.plain.samples, 2);
  t.is(out.accuracy, out.ferplus.reference.accuracy);
  const p = await cli('adcorre-eval', [...args, '--ferplus-protocol', 'plain']);
  t.is(p.code, 0, p.stderr);
  const plain = JSON.parse(p.stdout);
  t.is(plain.samples, 2);
  t.is(plain.accuracy, out.ferplus.plain.accuracy);
  t.deepEqual(plain.ferplus, out.ferplus);
  const text = await cli('adcorre-eval', args.slice(0, -1));
  t.regex(text.stdout, /\(1 samples\)[\s\S]*FER\+ protocol: reference .*plain: accuracy .*\(2 samples\)/);
  const folder = tempDir();
  await writeImage(join(folder, 'happy', 'a.jpg'));
  const refused = await cli('adcorre-eval', ['--model', model, '--data', folder, '--ferplus-protocol', 'plain']);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /--ferplus-protocol/);
  const noProtocol = await cli('adcorre-eval', ['--model', model, '--data', folder, '--json']);
  t.is(noProtocol.code, 0, noProtocol.stderr);
  t.is(JSON.parse(noProtocol.stdout).protocol, undefined);
});
