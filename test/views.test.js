// Crop views (cropAverage: five crops resized back to the input, ten with flips) and the prior
// correction (prior, priorPower): the exported graph against the float64 reference that runs the
// views and the correction from their definitions, the engine against the graph and against the
// plain engine on explicitly cropped images, and adcorre-export's flags.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import * as ort from 'onnxruntime-node';
import {
  buildArchitecture,
  Engine,
  exportOnnx,
  initWeights,
  labelNames,
  readMetadata,
  validateConfig,
} from 'adcorre-native';
import { evaluationViews } from 'adcorre-native/internal';
import { cli } from './helpers/cli.js';
import { fer2013Csv, ferPixels, tempDir } from './helpers/fixtures.js';
import { untrainedCheckpoint } from './helpers/models.js';
import { rng } from './helpers/random.js';
import { syntheticBatch } from './helpers/synthetic.js';
import { cropResizeImages, priorCorrected, referenceForward } from './helpers/xception-reference.js';

const maxErr = (a, b) => a.reduce((m, v, j) => Math.max(m, Math.abs(v - b[j])), 0);
const tiny = { inputSize: 31, channels: 1, width: 0.05, middleBlocks: 1, k: 2, d: 4, classes: 7 };
const FER_COUNTS = [4965, 7215, 4830, 3171, 4097, 436, 3995]; // FER-2013's training split, in labelNames(7)'s order

// non-trivial batch-norm statistics, so that the views really differ
function randomWeights(arch, seed) {
  const w = initWeights(arch, seed);
  const r = rng(seed);
  for (const [name, v] of w) {
    if (/\.(mean|beta)$/.test(name)) v.forEach((_, i) => (v[i] = r.next() - 0.5));
    else if (/\.(var|gamma)$/.test(name)) v.forEach((_, i) => (v[i] = 0.5 + r.next()));
  }
  return w;
}

async function runOnnx(bytes, images, config, N) {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const S = config.inputSize;
  const out = await session.run({ image: new ort.Tensor('float32', images, [N, config.channels, S, S]) });
  await session.release();
  return { probs: out.probs.data, embeddings: out.embeddings.data };
}

const randomImages = (config, N, seed) => {
  const r = rng(seed);
  return Float32Array.from({ length: N * config.channels * config.inputSize ** 2 }, () => r.next());
};

test('evaluationViews: five crops of side S - p (centre at floor(p / 2), then the corners), ten with flips; the others unchanged', (t) => {
  const views = evaluationViews({ ...tiny, cropAverage: 3 });
  t.deepEqual(
    views.map((v) => [v.flip, v.crop.left, v.crop.top, v.crop.size]),
    [
      [false, 1, 1, 28],
      [false, 0, 0, 28],
      [false, 3, 0, 28],
      [false, 0, 3, 28],
      [false, 3, 3, 28],
    ],
  );
  t.is(evaluationViews({ ...tiny, cropAverage: 2, flipAverage: true }).length, 10);
  t.deepEqual(evaluationViews({ ...tiny, flipAverage: true, shiftAverage: 1 }).length, 10);
  t.deepEqual(evaluationViews(tiny), [{ flip: false, dx: 0, dy: 0 }]);
});

const cropConfigs = [
  { ...tiny, cropAverage: 3 }, // odd: the centre crop half a pixel up and left
  { ...tiny, channels: 3, inputSize: 33, cropAverage: 4, flipAverage: true },
  { ...tiny, cropAverage: 2, flipAverage: true, prior: FER_COUNTS, priorPower: 0.5 },
];
for (const [i, config] of cropConfigs.entries())
  test(`crop views: ONNX Runtime = float64 reference (1e-4), embeddings the image's own: ${JSON.stringify(config)}`, async (t) => {
    const arch = buildArchitecture(config);
    const weights = randomWeights(arch, 40 + i);
    const N = 3;
    const images = randomImages(config, N, 40 + i);
    const out = await runOnnx(exportOnnx(config, weights, { labels: labelNames(7) }), images, config, N);
    const ref = referenceForward(arch, weights, images, N);
    t.true(maxErr(out.probs, ref.probs) <= 1e-4, `probs ${maxErr(out.probs, ref.probs)}`);
    t.true(maxErr(out.embeddings, ref.embeddings) <= 1e-4, `embeddings ${maxErr(out.embeddings, ref.embeddings)}`);
    const { cropAverage: _c, flipAverage: _f, prior: _p, priorPower: _t, ...plain } = config;
    const alone = referenceForward(buildArchitecture(plain), weights, images, N);
    t.true(maxErr(out.probs, alone.probs) > 1e-3, 'the views change the answer');
    t.true(maxErr(out.embeddings, alone.embeddings) <= 1e-4, "the embeddings are the whole image's");
  });

for (const flip of [false, true]) {
  const config = { ...tiny, inputSize: 35, classes: 4, cropAverage: 4, flipAverage: flip };
  const S = config.inputSize;
  test(`crop views${flip ? ' with flips' : ''}: the engine equals ONNX Runtime (1e-4) and the plain engine's mean over the cropped-resized images (1e-6)`, async (t) => {
    const engine = Engine.create(config, { maxBatch: 8, seed: 11 });
    const { images, labels } = syntheticBatch(6, 11, { size: S });
    for (let s = 0; s < 3; s++) engine.trainStep(images, labels, { lr: 1e-2 }); // move weights and batch-norm statistics
    const mine = engine.predict(images);
    const out = await runOnnx(
      exportOnnx(config, engine.getWeights(), { labels: labelNames(7).slice(0, 4) }),
      images,
      config,
      6,
    );
    t.true(maxErr(mine.probs, out.probs) <= 1e-4, `probs ${maxErr(mine.probs, out.probs)}`);
    t.true(maxErr(mine.embeddings, out.embeddings) <= 1e-4, `embeddings ${maxErr(mine.embeddings, out.embeddings)}`);

    const plain = Engine.create({ ...tiny, inputSize: 35, classes: 4 }, { maxBatch: 8, weights: engine.getWeights() });
    const views = [];
    for (const f of flip ? [false, true] : [false])
      for (const [left, top] of [
        [2, 2],
        [0, 0],
        [4, 0],
        [0, 4],
        [4, 4],
      ])
        views.push(plain.predict(cropResizeImages(images, S, f, left, top, S - 4)).probs);
    const mean = views[0].map((_, i) => views.reduce((sum, v) => sum + v[i], 0) / views.length);
    t.true(maxErr(mine.probs, mean) <= 1e-6, `probs ${maxErr(mine.probs, mean)}`);
    t.deepEqual(mine.embeddings, plain.predict(images).embeddings);
    t.true(maxErr(mine.probs, plain.predict(images).probs) > 1e-4, 'the views change the answer');
  });
}

test('crop views: bad values are refused naming the key; one or the other with shift views', (t) => {
  t.deepEqual(validateConfig({ ...tiny, cropAverage: 0 }), tiny, 'no crop: no key');
  t.throws(() => validateConfig({ ...tiny, cropAverage: 8 }), {
    instanceOf: RangeError,
    message: /Expected integer in \[0, 7\] \(pixels cut from the side\) for config\.cropAverage but received 8/,
  });
  t.throws(() => validateConfig({ ...tiny, cropAverage: 1.5 }), {
    message: /for config\.cropAverage but received 1\.5/,
  });
  t.throws(() => validateConfig({ ...tiny, cropAverage: -1 }), { message: /for config\.cropAverage but received -1/ });
  t.throws(() => validateConfig({ ...tiny, cropAverage: '2' }), {
    instanceOf: TypeError,
    message: /config\.cropAverage/,
  });
  t.throws(() => validateConfig({ ...tiny, cropAverage: 2, shiftAverage: 1 }), {
    message: /crop views or shift views, one at a time\) for config\.cropAverage but received 2/,
  });
});

test('the prior correction: ONNX = its own uncorrected output divided by prior^t and renormalised (1e-6), = the float64 reference (1e-4), = the engine (1e-4); recorded in the metadata', async (t) => {
  for (const [extra, power] of [
    [{}, 1],
    [{ flipAverage: true, shiftAverage: 1 }, 0.5],
  ]) {
    const plainConfig = { ...tiny, ...extra };
    const config = { ...plainConfig, prior: FER_COUNTS, ...(power === 1 ? {} : { priorPower: power }) };
    const arch = buildArchitecture(plainConfig);
    const weights = randomWeights(arch, 50);
    const N = 4;
    const images = randomImages(config, N, 50);
    const bytes = exportOnnx(config, weights, { labels: labelNames(7) });
    const out = await runOnnx(bytes, images, config, N);
    const plain = await runOnnx(exportOnnx(plainConfig, weights, { labels: labelNames(7) }), images, config, N);
    const expected = priorCorrected(plain.probs, FER_COUNTS, power);
    t.true(maxErr(out.probs, expected) <= 1e-6, `probs ${maxErr(out.probs, expected)}`);
    t.true(maxErr(out.probs, plain.probs) > 1e-2, 'the prior changes the answer');
    t.deepEqual(out.embeddings, plain.embeddings, 'the embeddings are untouched');
    const ref = referenceForward(buildArchitecture(config), weights, images, N);
    t.true(maxErr(out.probs, ref.probs) <= 1e-4, `reference ${maxErr(out.probs, ref.probs)}`);
    const engine = Engine.create(config, { maxBatch: N, weights }).predict(images);
    t.true(maxErr(engine.probs, out.probs) <= 1e-4, `engine ${maxErr(engine.probs, out.probs)}`);
    const engineAlone = Engine.create(plainConfig, { maxBatch: N, weights }).predict(images);
    const engineExpected = priorCorrected(engineAlone.probs, FER_COUNTS, power);
    t.true(maxErr(engine.probs, engineExpected) <= 1e-6, `engine ${maxErr(engine.probs, engineExpected)}`);
    for (let n = 0; n < N; n++)
      t.true(Math.abs(out.probs.subarray(n * 7, n * 7 + 7).reduce((a, b) => a + b) - 1) < 1e-5);
    const meta = readMetadata(bytes).config;
    t.deepEqual(meta.prior, FER_COUNTS);
    t.is(meta.priorPower, power === 1 ? undefined : power);
  }
});

test('an ensemble with crop views, flips and a prior: the members averaged over the views, then the average corrected (1e-4)', async (t) => {
  const config = { ...tiny, cropAverage: 3, flipAverage: true, prior: FER_COUNTS };
  const other = { ...tiny, width: 0.1, k: 3 };
  const { prior: _p, ...uncorrected } = config;
  const a = randomWeights(buildArchitecture(tiny), 70),
    b = randomWeights(buildArchitecture(other), 71);
  const N = 2;
  const images = randomImages(tiny, N, 70);
  const out = await runOnnx(
    exportOnnx(config, [a, { config: other, weights: b }], { labels: labelNames(7) }),
    images,
    tiny,
    N,
  );
  const refA = referenceForward(buildArchitecture(uncorrected), a, images, N);
  const refB = referenceForward(buildArchitecture({ ...other, cropAverage: 3, flipAverage: true }), b, images, N);
  const expected = priorCorrected(
    refA.probs.map((v, i) => (v + refB.probs[i]) / 2),
    FER_COUNTS,
  );
  t.true(maxErr(out.probs, expected) <= 1e-4, `probs ${maxErr(out.probs, expected)}`);
  t.true(maxErr(out.embeddings, refA.embeddings) <= 1e-4, "embeddings: member 0's, of the whole image");
});

test('the prior correction on a constructed case: a rare class with the second highest probability wins; a uniform prior changes nothing', async (t) => {
  const arch = buildArchitecture(tiny);
  const weights = randomWeights(arch, 60);
  const images = randomImages(tiny, 1, 60);
  const plain = await runOnnx(exportOnnx(tiny, weights, { labels: labelNames(7) }), images, tiny, 1);
  const order = [...plain.probs.keys()].sort((a, b) => plain.probs[b] - plain.probs[a]);
  const [first, second] = order;
  // the second is ten times rarer than the first, more than the ratio of their probabilities
  t.true(plain.probs[first] / plain.probs[second] < 10, `${plain.probs[first]} vs ${plain.probs[second]}`);
  const prior = Array(7).fill(1000);
  prior[second] = 100;
  const corrected = await runOnnx(exportOnnx({ ...tiny, prior }, weights, { labels: labelNames(7) }), images, tiny, 1);
  const argmax = (p) => p.indexOf(Math.max(...p));
  t.is(argmax(plain.probs), first);
  t.is(argmax(corrected.probs), second);
  // a weak enough power keeps the first
  const ratio = plain.probs[first] / plain.probs[second]; // < 10: t < log(ratio) / log(10) keeps it
  const weak = Math.log(ratio) / Math.log(10) / 2;
  const kept = await runOnnx(
    exportOnnx({ ...tiny, prior, priorPower: weak }, weights, { labels: labelNames(7) }),
    images,
    tiny,
    1,
  );
  t.is(argmax(kept.probs), first);
  const uniform = await runOnnx(
    exportOnnx({ ...tiny, prior: Array(7).fill(3) }, weights, { labels: labelNames(7) }),
    images,
    tiny,
    1,
  );
  t.true(maxErr(uniform.probs, plain.probs) <= 1e-6);
});

test('the prior correction: bad values are refused naming the key', (t) => {
  const bad = (extra, message) => t.throws(() => validateConfig({ ...tiny, ...extra }), { message });
  bad({ prior: [1, 2, 3] }, /Expected 7 numbers \(one per class\) for config\.prior but received 3 \(1, 2, 3\)/);
  bad({ prior: [1, 2, 3, 4, 5, 6, -7] }, /finite number > 0 for config\.prior\[6\] but received -7/);
  bad({ prior: [1, 2, 0, 4, 5, 6, 7] }, /finite number > 0 for config\.prior\[2\] but received 0/);
  bad({ prior: [1, NaN, 3, 4, 5, 6, 7] }, /finite number > 0 for config\.prior\[1\] but received NaN/);
  bad({ prior: '1,2,3,4,5,6,7' }, /array of 7 numbers for config\.prior/);
  bad({ prior: FER_COUNTS, priorPower: 0 }, /number in \(0, 4\] for config\.priorPower but received 0/);
  bad({ prior: FER_COUNTS, priorPower: NaN }, /number in \(0, 4\] for config\.priorPower but received NaN/);
  bad({ priorPower: 2 }, /config\.prior beside it .* for config\.priorPower but received 2/);
  t.deepEqual(validateConfig({ ...tiny, prior: FER_COUNTS, priorPower: 1 }), { ...tiny, prior: FER_COUNTS });
});

// adcorre-export's flags
const exportCli = (args) => cli('adcorre-export', args);
const dir = tempDir('adcorre-views-');
const cliConfig = { ...tiny, inputSize: 36 };
const ckpt = join(dir, 'tiny.ckpt');
writeFileSync(ckpt, untrainedCheckpoint(cliConfig));

test('adcorre-export --prior, --prior-power, --prior-from, --no-prior and --crop-average: the metadata says them; bad values exit 2 naming the flag', async (t) => {
  const out = join(dir, 'm.onnx');
  let r = await exportCli([
    ckpt,
    '-o',
    out,
    '--prior',
    FER_COUNTS.join(','),
    '--prior-power',
    '0.5',
    '--crop-average',
    '2',
  ]);
  t.is(r.code, 0, r.stderr);
  const config = readMetadata(readFileSync(out)).config;
  t.deepEqual(config.prior, FER_COUNTS);
  t.is(config.priorPower, 0.5);
  t.is(config.cropAverage, 2);
  // an exported model's prior stays unless --no-prior
  r = await exportCli([out, '-o', join(dir, 'again.onnx')]);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readMetadata(readFileSync(join(dir, 'again.onnx'))).config.prior, FER_COUNTS);
  r = await exportCli([out, '-o', join(dir, 'none.onnx'), '--no-prior', '--crop-average', '0']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readMetadata(readFileSync(join(dir, 'none.onnx'))).config, cliConfig);

  // --prior-from: the training split's counts through openDataset
  const csv = join(dir, 'fer2013.csv');
  const rows = [];
  [3, 1, 2, 5, 1, 1, 2].forEach((n, label) => {
    for (let i = 0; i < n; i++) rows.push([label, ferPixels(label * 10 + i), 'Training']);
  });
  rows.push([1, ferPixels(99), 'PublicTest']);
  writeFileSync(csv, fer2013Csv(rows));
  r = await exportCli([ckpt, '-o', join(dir, 'from.onnx'), '--prior-from', csv]);
  t.is(r.code, 0, r.stderr);
  // FER-2013 codes (angry, disgust, fear, happy, sad, surprise, neutral) in the model's label order
  const names = labelNames(7);
  const codes = ['anger', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'];
  const byCode = [3, 1, 2, 5, 1, 1, 2];
  t.deepEqual(
    readMetadata(readFileSync(join(dir, 'from.onnx'))).config.prior,
    names.map((n) => byCode[codes.indexOf(n)]),
  );
  writeFileSync(csv, fer2013Csv(rows.filter(([label]) => label !== 1)));
  r = await exportCli([ckpt, '-o', join(dir, 'from.onnx'), '--prior-from', csv]);
  t.is(r.code, 2);
  t.regex(r.stderr, /for --prior-from but received .*fer2013\.csv: no training image of 'disgust'/);

  for (const [args, message] of [
    [['--prior', '1,2,3'], /Expected 7 counts \(one per class: .*\) for --prior but received 3 \(1,2,3\)/],
    [['--prior', '1,2,3,4,5,6,-7'], /option '--prior <counts>' argument '1,2,3,4,5,6,-7' is invalid/],
    [['--prior', '1,2,3,0,5,6,7'], /option '--prior <counts>' argument .* is invalid/],
    [['--prior', '1,2,NaN,4,5,6,7'], /option '--prior <counts>' argument .* is invalid/],
    [['--prior', FER_COUNTS.join(','), '--prior-power', '0'], /number in \(0, 4\] for --prior-power but received 0/],
    [['--prior-power', '2'], /--prior or --prior-from beside it for --prior-power/],
    [['--prior', '1,2,3,4,5,6,7', '--prior-from', csv], /no --prior beside it for --prior-from/],
    [['--crop-average', '-1'], /option '--crop-average <pixels>' argument '-1' is invalid/],
    [['--crop-average', '2', '--shift-average', '1'], /one at a time\) for --crop-average but received 2/],
    [
      ['--crop-average', '10'],
      /integer in \[0, 9\] \(pixels cut from the side of .*36-pixel input\) for --crop-average but received 10/,
    ],
  ]) {
    r = await exportCli([ckpt, '-o', join(dir, 'bad.onnx'), ...args]);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, message);
  }
});
