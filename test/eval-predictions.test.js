// adcorre-eval --predictions <file.csv>: a row per image with its label, the model's answer and probabilities,
// the same answers the summary counts; on crops and through the whole pipeline.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { csvField, PredictionRows } from '../dist/cli/predictions.js';
import { cli, noStack } from './helpers/cli.js';
import { tempDir, writeImage, writeImageFolder } from './helpers/fixtures.js';
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
  const rows = new PredictionRows(['neutral', 'happy', 'sad']);
  rows.add('x,1.png', 'sad', { probs: Float32Array.of(0.1, 0.2, 0.7, 0.5, 0.25, 0.25), row: 1 });
  rows.add('y.png', 'happy', 'no face');
  t.is(rows.count, 2);
  t.deepEqual(parseCsv(rows.toString()), [
    ['image', 'label', 'predicted', 'p_neutral', 'p_happy', 'p_sad'],
    ['x,1.png', 'sad', 'neutral', '0.500000', '0.250000', '0.250000'],
    ['y.png', 'happy', 'no face', '', '', ''],
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
  t.deepEqual(header, ['image', 'label', 'predicted', ...labels.map((l) => `p_${l}`)]);
  t.is(rows.length, metrics.samples);
  t.true(rows.some((row) => row[0] === odd && row[1] === 'happy'));
  const tally = labels.map(() => labels.map(() => 0));
  for (const [, label, predicted, ...ps] of rows) {
    tally[labels.indexOf(label)][labels.indexOf(predicted)]++;
    const p = ps.map(Number);
    t.true(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-4);
    t.is(labels[p.indexOf(Math.max(...p))], predicted);
  }
  t.deepEqual(tally, metrics.confusion);
});

test('adcorre-eval --pipeline --predictions: a photo without a face says so, with no probabilities', async (t) => {
  const dir = tempDir('adcorre-predictions-');
  const noise = join(dir, 'noise.png');
  await sharp(Buffer.from(Uint8Array.from({ length: 120 * 120 * 3 }, (_, i) => (i * 7919) % 256)), {
    raw: { width: 120, height: 120, channels: 3 },
  })
    .png()
    .toFile(noise);
  const manifest = join(dir, 'photos.csv');
  writeFileSync(manifest, `path,label\n${noise},happy\n`);
  const out = join(dir, 'predictions.csv');
  const r = await cli('adcorre-eval', ['--pipeline', '--data', manifest, '--predictions', out]);
  t.is(r.code, 0, r.stderr);
  const [header, ...rows] = parseCsv(readFileSync(out, 'utf8'));
  t.is(header.length, 3 + 7);
  t.deepEqual(rows, [[noise, 'happy', 'no face', '', '', '', '', '', '', '']]);
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
