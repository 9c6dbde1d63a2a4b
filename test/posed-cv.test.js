// scripts/posed-cv.js: performer cross-validation on labelled photos (../shared/data/posed-dev where present).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { tempDir } from './helpers/fixtures.js';
import { tiny, untrainedModel } from './helpers/models.js';
import { sharedDir } from './helpers/shared.js';

const posed = join(sharedDir, 'data', 'posed-dev');
const why = existsSync(posed) ? '' : ` (skipped: ${posed} is absent)`;
const maybe = why ? test.skip : test.serial;

const run = (args) =>
  promisify(execFile)(process.execPath, ['scripts/posed-cv.js', ...args], { maxBuffer: 1 << 24 }).then(
    (r) => ({ code: 0, ...r }),
    (err) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );

maybe(
  `--eval-only: three folds of consecutive performers, fold 3 the model card's posed-dev 11-15 figure${why}`,
  async (t) => {
    const out = tempDir('adcorre-cv-');
    const r = await run(['--data', posed, '--model', 'models/adcorre-fer2013.onnx', '--out', out, '--eval-only']);
    t.is(r.code, 0, r.stderr);
    const cv = JSON.parse(readFileSync(join(out, 'cv.json'), 'utf8'));
    t.deepEqual(
      cv.folds.map((f) => f.performers),
      [
        ['01', '02', '03', '05', '06'],
        ['07', '08', '09', '10'],
        ['11', '12', '13', '14', '15'],
      ],
    );
    t.is(
      cv.folds.reduce((a, f) => a + f.samples, 0),
      623,
    );
    // models/README.md: the default model on posed-dev 11-15 through the pipeline, 69.48 % (mean class 70.45 %)
    t.is(cv.folds[2].accuracy.toFixed(4), '0.6948');
    t.is(cv.folds[2].meanClassAccuracy.toFixed(4), '0.7045');
    const mean = cv.folds.reduce((a, f) => a + f.accuracy, 0) / 3;
    t.true(Math.abs(cv.accuracy.mean - mean) < 1e-12);
    t.regex(r.stdout, /\| mean \+- sd \|/);
    // a second run reads the folds' results back instead of measuring again
    const again = await run(['--data', posed, '--model', 'models/adcorre-fer2013.onnx', '--out', out, '--eval-only']);
    t.is(again.code, 0, again.stderr);
    t.is(again.stdout, r.stdout);
  },
);

maybe(`fine-tune per fold: each fold's model trains on the other performers' aligned crops only${why}`, async (t) => {
  const out = tempDir('adcorre-cv-');
  const model = join(out, 'start.onnx');
  writeFileSync(model, untrainedModel());
  const arch = join(out, 'tiny.json');
  writeFileSync(arch, JSON.stringify(tiny));
  const args = ['--data', posed, '--model', model, '--out', out, '--repeat', '1'];
  const r = await run([...args, '--', '--arch', arch, '--epochs', '1', '--max-steps', '1', '--batch', '8']);
  t.is(r.code, 0, r.stderr);
  const cv = JSON.parse(readFileSync(join(out, 'cv.json'), 'utf8'));
  t.is(cv.mode, 'fine-tune per fold');
  for (const [i, fold] of cv.folds.entries()) {
    const rows = readFileSync(join(out, `fold-${i + 1}`, 'train.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    const performers = new Set(rows.map((row) => row.split(',')[0].split('/').pop().slice(0, 2)));
    t.true(rows.length > 300, `fold ${i + 1}: ${rows.length} training rows`);
    for (const p of fold.performers) t.false(performers.has(p), `fold ${i + 1} trains on its held-out performer ${p}`);
    t.true(existsSync(join(out, `fold-${i + 1}`, 'model.onnx')));
  }
});

test('usage errors exit 2 naming the option', async (t) => {
  for (const [args, pattern] of [
    [[], /--data is required/],
    [['--data', 'x', '--model', 'y', '--out', 'z', '--folds', '1'], /--folds: expected a whole number >= 2/],
    [['--data', 'x', '--model', 'y', '--out', 'z', '--performer', '('], /--performer: expected a regular expression/],
    [['--data', 'x', '--model', 'y', '--out', 'z', '--eval-only', '--', '--epochs', '1'], /--eval-only measures/],
  ]) {
    const r = await run(args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, pattern);
  }
});
