// adcorre-eval --predictions <file.csv>: a row per image with its label, the model's answer and probabilities,
// the same answers the summary counts; on crops and through the whole pipeline.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { csvField, PredictionRows } from 'adcorre-native/internal';
import { DataLoader } from 'adcorre-native';
import { readCsvManifest } from 'adcorre-native/internal';
import { cli, noStack } from './helpers/cli.js';
import { tempDir, writeFacelessManifest, writeImage, writeImageFolder } from './helpers/fixtures.js';
import { untrainedModel } from './helpers/models.js';

/** RFC 4180 rows (quoted fields, doubled quotes, line breaks inside quotes), written here apart from the code tested. */
function parseCsv(text) {
  const rows = [];
  let row = [],
    field = '',
    quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') ((field += '"'), i++);
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') (row.push(field), (field = ''));
    else if (ch === '\n') (row.push(field), rows.push(row), (row = []), (field = ''));
    else field += ch;
  }
  return rows;
}

test('CSV fields are quoted only when they must be, quotes doubled', (t) => {
  t.is(csvField('a/b.png'), 'a/b.png');
  t.is(csvField('a,b'), '"a,b"');
  t.is(csvField('say "hi"'), '"say ""hi"""');
  t.is(csvField('two\nlines'), '"two\nlines"');
  const rows = new PredictionRows(['neutral', 'happy', 'sad'], 'val');
  rows.add('x,1.png', 'sad', { probs: Float32Array.of(0.1, 0.2, 0.7, 0.5, 0.25, 0.25), row: 1 });
  rows.add('y.png', 'happy', 'no face');
  t.is(rows.count, 2);
  t.deepEqual(parseCsv(rows.toString()), [
    ['path', 'label', 'split', 'predicted', 'p_neutral', 'p_happy', 'p_sad'],
    ['x,1.png', 'sad', 'val', 'neutral', '0.500000', '0.250000', '0.250000'],
    ['y.png', 'happy', 'val', 'no face', '', '', ''],
  ]);
  // a dataset's own soft targets (FER+ votes) as target_<class> columns; empty for a row without one
  const withTargets = new PredictionRows(['neutral', 'happy'], 'train', ['neutral', 'happy']);
  withTargets.add('a.png', 'happy', { probs: Float32Array.of(0.25, 0.75), row: 0 }, Float32Array.of(0.1, 0.9));
  withTargets.add('b.png', 'happy', 'no face');
  t.deepEqual(parseCsv(withTargets.toString()), [
    ['path', 'label', 'split', 'predicted', 'p_neutral', 'p_happy', 'target_neutral', 'target_happy'],
    ['a.png', 'happy', 'train', 'happy', '0.250000', '0.750000', '0.100000', '0.900000'],
    ['b.png', 'happy', 'train', 'no face', '', '', '', ''],
  ]);
});

test('adcorre-eval --predictions: a row per image, tallying to the confusion it prints; odd file names kept', async (t) => {
  const dir = tempDir('adcorre-predictions-');
  const model = join(dir, 'm.onnx');
  writeFileSync(model, untrainedModel());
  const data = await writeImageFolder(join(dir, 'data'), [['val', 2]]);
  const odd = join(data, 'val', 'happy', 'a, "quoted"\nname.png');
  await writeImage(odd, { w: 40, h: 40, seed: 99, format: 'png' });
  const out = join(dir, 'predictions.csv');
  const r = await cli('adcorre-eval', ['--model', model, '--data', data, '--json', '--predictions', out]);
  t.is(r.code, 0, r.stderr);
  const metrics = JSON.parse(r.stdout);
  const [header, ...rows] = parseCsv(readFileSync(out, 'utf8'));
  const labels = Object.keys(metrics.recall);
  t.deepEqual(header, ['path', 'label', 'split', 'predicted', ...labels.map((l) => `p_${l}`)]);
  t.is(rows.length, metrics.samples);
  t.true(rows.some((row) => row[0] === odd && row[1] === 'happy'));
  const tally = labels.map(() => labels.map(() => 0));
  for (const [, label, split, predicted, ...ps] of rows) {
    t.is(split, 'val');
    tally[labels.indexOf(label)][labels.indexOf(predicted)]++;
    const p = ps.map(Number);
    t.true(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    t.is(labels[p.indexOf(Math.max(...p))], predicted);
  }
  t.deepEqual(tally, metrics.confusion);
});

test('adcorre-eval --pipeline --predictions: a photo without a face says so, with no probabilities', async (t) => {
  const dir = tempDir('adcorre-predictions-');
  const { noise, manifest } = await writeFacelessManifest(dir, 120, 'happy');
  const out = join(dir, 'predictions.csv');
  const r = await cli('adcorre-eval', ['--pipeline', '--data', manifest, '--predictions', out]);
  t.is(r.code, 0, r.stderr);
  const [header, ...rows] = parseCsv(readFileSync(out, 'utf8'));
  t.is(header.length, 4 + 7);
  t.deepEqual(rows, [[noise, 'happy', 'all', 'no face', '', '', '', '', '', '', '']]);
});

test('adcorre-eval --predictions onto an input, a folder or the --confusion file exits 2 before reading the data', async (t) => {
  const dir = tempDir('adcorre-predictions-');
  const model = join(dir, 'm.onnx');
  writeFileSync(model, untrainedModel());
  const data = await writeImageFolder(join(dir, 'data'), [['val', 1]]);
  const onModel = await cli('adcorre-eval', ['--model', model, '--data', data, '--predictions', model]);
  t.is(onModel.code, 2, onModel.stderr);
  t.regex(onModel.stderr, /for --predictions but received .*m\.onnx: it is the input/);
  t.deepEqual(readFileSync(model), Buffer.from(untrainedModel()), 'the model is intact');
  const onFolder = await cli('adcorre-eval', ['--model', model, '--data', data, '--predictions', data]);
  t.is(onFolder.code, 2, onFolder.stderr);
  t.regex(onFolder.stderr, /for --predictions but received .*: it is a folder/);
  const both = join(dir, 'both');
  const same = await cli('adcorre-eval', [
    '--model',
    model,
    '--data',
    data,
    '--predictions',
    both,
    '--confusion',
    both,
  ]);
  t.is(same.code, 2, same.stderr);
  t.regex(same.stderr, /Expected a file other than --confusion for --predictions/);
  noStack(t, onModel.stderr + onFolder.stderr + same.stderr);
});

test("a manifest's p_<class> columns are soft targets (normalised; empty: none; bad: skipped and counted)", async (t) => {
  const dir = tempDir('adcorre-soft-');
  const img = join(dir, 'a.png');
  await writeImage(img, { w: 40, h: 40, seed: 1, format: 'png' });
  const head = 'path,label,split,p_neutral,p_happy,p_sad,p_surprise,p_fear,p_disgust,p_anger';
  const manifest = join(dir, 'soft.csv');
  writeFileSync(
    manifest,
    [head, `a.png,happy,train,1,2,0,0,0,0,1`, `a.png,sad,train,0.5,0,0.5,x,0,0,0`, `a.png,sad,val,,,,,,,`, ''].join(
      '\n',
    ),
  );
  const dataset = await readCsvManifest(manifest);
  const [row] = dataset.splits.get('train').samples;
  t.is(dataset.splits.get('train').samples.length, 1);
  t.deepEqual(Array.from(row.target), [0.25, 0.5, 0, 0, 0, 0, 0.25]);
  t.is(row.label, 1, 'the label stays the hard one');
  t.is(dataset.splits.get('val').samples[0].target, undefined, 'empty probabilities: no target');
  t.deepEqual(dataset.report.summary().skipped, { 'malformed row': 1 });
  t.regex(dataset.report.summary().examples['malformed row'][0], /p_surprise must be a probability .*not 'x'/);
  // the loader hands them to training as the batch's targets
  const loader = new DataLoader(dataset.splits.get('train'), { batchSize: 1, size: 36, channels: 1 });
  const batches = [];
  for await (const b of loader.epoch(0)) batches.push(b);
  await loader.close();
  t.deepEqual(Array.from(batches[0].targets), [0.25, 0.5, 0, 0, 0, 0, 0.25]);
  // some classes only, or a class of another label space: the whole manifest is refused, naming what is wrong
  writeFileSync(manifest, `path,label,p_happy,p_sad,p_contempt\na.png,happy,0.5,0.5,0\n`);
  await t.throwsAsync(() => readCsvManifest(manifest), {
    message:
      /needs a probability column for each class .*; missing p_neutral, p_surprise, p_fear, p_disgust, p_anger; not classes of it: p_contempt$/,
  });
  // a split with probabilities on some rows only (a photo without a face) is refused with the way out
  writeFileSync(manifest, [head, `a.png,happy,train,1,0,0,0,0,0,0`, `a.png,sad,train,,,,,,,`, ''].join('\n'));
  await t.throwsAsync(() => readCsvManifest(manifest), {
    message: /split 'train' has probabilities on 1 of its 2 rows; .*leave them out/,
  });
});

test('adcorre-eval --predictions on a manifest writes the image files, so the output reads back as one', async (t) => {
  const dir = tempDir('adcorre-soft-');
  const model = join(dir, 'm.onnx');
  writeFileSync(model, untrainedModel());
  for (const name of ['a.png', 'b.png']) await writeImage(join(dir, name), { w: 40, h: 40, seed: 5, format: 'png' });
  const manifest = join(dir, 'in.csv');
  writeFileSync(manifest, 'path,label,split\na.png,fear,val\nb.png,anger,val\n');
  const out = join(dir, 'out.csv');
  const r = await cli('adcorre-eval', ['--model', model, '--data', manifest, '--predictions', out]);
  t.is(r.code, 0, r.stderr);
  const rows = parseCsv(readFileSync(out, 'utf8')).slice(1);
  t.deepEqual(
    rows.map((row) => row.slice(0, 3)),
    [
      [join(dir, 'a.png'), 'fear', 'val'],
      [join(dir, 'b.png'), 'anger', 'val'],
    ],
  );
  const back = await readCsvManifest(out);
  t.is(back.splits.get('val').samples.length, 2);
  t.true(back.splits.get('val').samples.every((s) => s.target?.length === 7));
});

test('adcorre-eval --predictions written on a split is a manifest whose soft targets are the model’s answers', async (t) => {
  const dir = tempDir('adcorre-soft-');
  const model = join(dir, 'm.onnx');
  writeFileSync(model, untrainedModel());
  const data = await writeImageFolder(join(dir, 'data'), [['train', 1]]);
  const out = join(dir, 'teacher.csv');
  const r = await cli('adcorre-eval', ['--model', model, '--data', data, '--split', 'train', '--predictions', out]);
  t.is(r.code, 0, r.stderr);
  const written = parseCsv(readFileSync(out, 'utf8')).slice(1);
  const dataset = await readCsvManifest(out);
  const samples = dataset.splits.get('train').samples;
  t.is(samples.length, written.length);
  for (const [i, s] of samples.entries()) {
    const p = written[i].slice(4).map(Number);
    const sum = p.reduce((a, b) => a + b, 0);
    t.is(s.source, written[i][0]);
    for (let c = 0; c < 7; c++) t.true(Math.abs(s.target[c] - p[c] / sum) < 1e-6);
  }
});
