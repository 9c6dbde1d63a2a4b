// Prediction's defaults have one home (PREDICTION_DEFAULTS, lib/infer/defaults.ts) that adcorre-predict's --help
// shows; predictBatch's faces per run is `faceBatch` (`batch` its former name), adcorre-predict's --batch counts
// images; align: true beside a margin is refused; the argmax-to-confusion step; adcorre-data align checks its
// input before it makes anything (issue #30).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { PREDICTION_DEFAULTS } from 'adcorre-native';
import { DEFAULT_MODEL, FER } from 'adcorre-native/internal';
import { addPredictions, argmaxRow, confusionMatrix } from 'adcorre-native/internal';
import { cli } from './helpers/cli.js';
import { pattern, tempDir } from './helpers/fixtures.js';

const withModel = existsSync(DEFAULT_MODEL) ? test : test.skip;

test('adcorre-predict --help shows the API defaults', async (t) => {
  const { code, stdout } = await cli('adcorre-predict', ['--help']);
  t.is(code, 0);
  const help = stdout.replace(/\s+/g, ' ');
  t.regex(help, new RegExp(`--top <n> .*?\\(default: ${PREDICTION_DEFAULTS.top}\\)`));
  t.regex(help, new RegExp(`--batch <n> images .*?\\(default: ${PREDICTION_DEFAULTS.imageBatch}\\)`));
  t.regex(help, new RegExp(`classified ${PREDICTION_DEFAULTS.faceBatch} per run`));
  t.regex(help, new RegExp(`--threshold <p> .*?\\(default: ${PREDICTION_DEFAULTS.threshold}\\)`));
  t.regex(help, new RegExp(`--detector <set-up> .*?default: "${PREDICTION_DEFAULTS.detector}"\\)`));
  t.regex(help, new RegExp(`--margin <m> .*?default ${PREDICTION_DEFAULTS.margin}\\)`));
});

withModel('predictBatch: faceBatch, batch as its former name, align with a margin refused naming both', async (t) => {
  const fer = await FER.load({ device: 'cpu' });
  t.teardown(() => fer.close());
  const face = { data: pattern(48, 48, 3, 1), width: 48, height: 48, channels: 3 };
  const [byDefault] = await fer.predictBatch([face]);
  const [oneByOne] = await fer.predictBatch([face], { faceBatch: 1 });
  const [formerName] = await fer.predictBatch([face], { batch: 1 });
  t.is(byDefault.faces[0].top.length, PREDICTION_DEFAULTS.top);
  t.deepEqual(oneByOne.faces[0].probabilities, byDefault.faces[0].probabilities);
  t.deepEqual(formerName.faces[0].probabilities, byDefault.faces[0].probabilities);
  for (const [options, kind, message] of [
    [{ faceBatch: 0 }, RangeError, /Expected integer in \[1, 4096\] for options\.faceBatch but received 0/],
    [{ faceBatch: 4, batch: 4 }, TypeError, /options\.faceBatch or options\.batch \(its former name\), not both/],
    [{ align: true, margin: 1.5 }, TypeError, /Expected options\.align true or options\.margin, not both/],
  ])
    await t.throwsAsync(() => fer.predictBatch([face], options), { instanceOf: kind, message });
  // a margin alone, or with align: false, is accepted (the box is cropped either way)
  const photo = await sharp(Buffer.from(pattern(200, 200, 3, 2)), { raw: { width: 200, height: 200, channels: 3 } })
    .png()
    .toBuffer();
  const [alone] = await fer.predictBatch([photo], { margin: 1.5 });
  const [withFalse] = await fer.predictBatch([photo], { margin: 1.5, align: false });
  t.deepEqual(alone, withFalse);
});

test('addPredictions counts each row at its label and its argmax, the first class on a tie', (t) => {
  const probs = Float32Array.of(0.1, 0.7, 0.2, 0.4, 0.4, 0.2, 0.2, 0.3, 0.5);
  t.deepEqual(
    [0, 1, 2].map((i) => argmaxRow(probs, i, 3)),
    [1, 0, 2],
  );
  const confusion = confusionMatrix(3);
  addPredictions(confusion, probs, Int32Array.of(1, 2, 2), 3, 3);
  t.deepEqual(confusion, [
    [0, 0, 0],
    [0, 1, 0],
    [1, 0, 1],
  ]);
});

test('adcorre-data align: a missing input fails at once, before the output folder is made', async (t) => {
  const out = join(tempDir(), 'aligned');
  const r = await cli('adcorre-data', ['align', join(tempDir(), 'no-such-photos'), '--out', out]);
  t.is(r.code, 1);
  t.regex(r.stderr, /Dataset path not found: .*no-such-photos/);
  t.false(existsSync(out));
});
