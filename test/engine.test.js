// The training engine on the CPU: evaluation forward = ONNX Runtime on the
// exported model (one model definition, two executors, one answer), a whole
// step's parameter gradients = finite differences of the step's loss, a
// learnable synthetic task trained to near-zero loss, exact state save and
// restore, NaN detection, bad input.
import test from 'ava';
import * as ort from 'onnxruntime-node';
import { ConfusionTracker, Engine, exportOnnx, labelNames } from 'adcorre-native';
import { checkNanStepSkipped, syntheticBatch as synthetic, trainSynthetic, voteTargets } from './helpers/synthetic.js';
import { viewOfImages } from './helpers/xception-reference.js';

const tiny = { inputSize: 35, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 4 };
const S = tiny.inputSize;

// Four classes, each a fixed random pattern plus noise: learnable.
const syntheticBatch = (n, seed) => synthetic(n, seed, { size: S });

for (const [label, extra] of [
  ['', {}],
  [', flip averaging', { flipAverage: true }],
  [', shift averaging', { shiftAverage: 3 }],
  [', flip and shift averaging', { flipAverage: true, shiftAverage: 2 }],
])
  test(`evaluation forward equals ONNX Runtime on the exported model (1e-4)${label}`, async (t) => {
    const config = { ...tiny, ...extra };
    const engine = Engine.create(config, { maxBatch: 8, seed: 1 });
    const { images, labels } = syntheticBatch(8, 1);
    for (let s = 0; s < 3; s++) engine.trainStep(images, labels, { lr: 1e-2 }); // move weights and batch-norm statistics
    const mine = engine.predict(images);
    const session = await ort.InferenceSession.create(
      exportOnnx(config, engine.getWeights(), { labels: labelNames(7).slice(0, 4) }),
      { logSeverityLevel: 3 },
    );
    const out = await session.run({ image: new ort.Tensor('float32', images, [8, 1, S, S]) });
    const maxErr = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    t.true(maxErr(mine.probs, out.probs.data) <= 1e-4, `probs ${maxErr(mine.probs, out.probs.data)}`);
    t.true(
      maxErr(mine.embeddings, out.embeddings.data) <= 1e-4,
      `embeddings ${maxErr(mine.embeddings, out.embeddings.data)}`,
    );
  });

test("flip averaging: the probabilities of an image and of its mirror image are the same; embeddings are the image's own", (t) => {
  const engine = Engine.create({ ...tiny, flipAverage: true }, { maxBatch: 8, seed: 8 });
  const plain = Engine.create(tiny, { maxBatch: 8, weights: engine.getWeights() });
  const { images } = syntheticBatch(6, 8);
  const mirrored = images.map((_, i) => images[i - (i % S) + (S - 1 - (i % S))]);
  const a = engine.predict(images),
    b = engine.predict(mirrored),
    c = plain.predict(images);
  const maxErr = (x, y) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
  t.true(maxErr(a.probs, b.probs) <= 1e-6);
  t.true(maxErr(a.probs, c.probs) > 1e-4, 'averaging changes the answer');
  t.deepEqual(a.embeddings, c.embeddings);
});

// the moved and mirrored images from their written-out definition (viewOfImages), which the
// engine and the exported graph must both meet
for (const flip of [false, true])
  test(`shift averaging${flip ? ' with flips' : ''}: the mean of the plain probabilities over the image and its copies moved 2 px left, right, up and down${flip ? ', and their mirror images' : ''}`, (t) => {
    const engine = Engine.create({ ...tiny, shiftAverage: 2, flipAverage: flip }, { maxBatch: 8, seed: 9 });
    const plain = Engine.create(tiny, { maxBatch: 8, weights: engine.getWeights() });
    const { images } = syntheticBatch(5, 9);
    const views = [];
    for (const f of flip ? [false, true] : [false])
      for (const [dx, dy] of [
        [0, 0],
        [2, 0],
        [-2, 0],
        [0, 2],
        [0, -2],
      ])
        views.push(plain.predict(viewOfImages(images, S, f, dx, dy)).probs);
    const mean = views[0].map((_, i) => views.reduce((sum, v) => sum + v[i], 0) / views.length);
    const a = engine.predict(images);
    const maxErr = (x, y) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    t.true(maxErr(a.probs, mean) <= 1e-6, `probs ${maxErr(a.probs, mean)}`);
    t.true(maxErr(a.probs, views[0]) > 1e-4, 'averaging changes the answer');
    t.deepEqual(a.embeddings, plain.predict(images).embeddings);
  });

// A step's parameter gradients against central differences of its loss, at the
// two entries of each named parameter with the largest gradients (the best
// signal against float32 rounding); options.lr is 0, so a step leaves the
// weights as they are. Returns how many entries were checked.
function checkStepGradients(t, engine, images, labels, options, names) {
  const base = engine.trainStep(images, labels, options);
  t.true(base.finite);
  const weights = engine.getWeights();
  let checked = 0;
  for (const name of names) {
    const grad = engine.gradient(name);
    const w = weights.get(name);
    const order = Array.from(grad.keys())
      .sort((a, b) => Math.abs(grad[b]) - Math.abs(grad[a]))
      .slice(0, 2);
    for (const i of order) {
      const keep = w[i];
      const h = 2e-4; // small enough not to cross ReLU kinks or max-pool switches, large against float32 rounding
      w[i] = keep + h;
      engine.setWeights(weights);
      const up = engine.trainStep(images, labels, options).loss;
      w[i] = keep - h;
      engine.setWeights(weights);
      const down = engine.trainStep(images, labels, options).loss;
      w[i] = keep;
      engine.setWeights(weights);
      engine.trainStep(images, labels, options); // gradients at the unperturbed point again
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(numeric - grad[i]) / Math.max(Math.abs(grad[i]), 1e-3);
      t.true(err < 0.05, `${name}[${i}]: analytic ${grad[i]}, numeric ${numeric}`);
      checked++;
    }
  }
  return checked;
}

test('a whole step: parameter gradients = finite differences of the loss', (t) => {
  const engine = Engine.create(tiny, { maxBatch: 8, seed: 2 });
  const { images, labels } = syntheticBatch(8, 2);
  const options = { lr: 0, seed: 5, classAccuracy: Float32Array.of(0.2, 0.5, 0.9, 0.4) };
  const names = [
    'entry.conv1.weight',
    'entry.block1.sep1.depthwise.weight',
    'middle.block1.sep2.pointwise.weight',
    'exit.shortcut.weight',
    'entry.bn2.gamma',
    'head0.weight',
    'head1.bias',
    'classifier.weight',
  ];
  t.is(checkStepGradients(t, engine, images, labels, options, names), 16);
});

test("soft targets: one-hot targets give the labels' step exactly; with vote distributions, parameter gradients = finite differences", (t) => {
  const { images, labels } = syntheticBatch(8, 3);
  const options = { lr: 0, seed: 4, lambdaCE: 50, classAccuracy: Float32Array.of(0.3, 0.6, 0.8, 0.5) };
  const onehot = new Float32Array(8 * tiny.classes);
  labels.forEach((label, i) => (onehot[i * tiny.classes + label] = 1));
  const a = Engine.create(tiny, { maxBatch: 8, seed: 7 });
  const b = Engine.create(tiny, { maxBatch: 8, seed: 7 });
  const hard = a.trainStep(images, labels, options);
  const soft = b.trainStep(images, labels, { ...options, targets: onehot });
  for (const key of ['loss', 'ce', 'fd', 'md', 'ed']) t.is(soft[key], hard[key], key);
  for (const p of a.architecture.params) t.deepEqual(b.gradient(p.name), a.gradient(p.name), p.name);

  const targets = voteTargets(labels, tiny.classes);
  const engine = Engine.create(tiny, { maxBatch: 8, seed: 7 });
  const base = engine.trainStep(images, labels, { ...options, targets });
  t.true(base.ce > hard.ce, `soft-target CE ${base.ce} includes the targets' entropy, above the one-hot CE ${hard.ce}`);
  const names = ['classifier.weight', 'classifier.bias', 'head0.weight', 'entry.conv1.weight'];
  t.is(checkStepGradients(t, engine, images, labels, { ...options, targets }, names), 8);

  t.throws(() => engine.trainStep(images, labels, { targets: targets.subarray(1) }), {
    instanceOf: RangeError,
    message: /32 values \(batch 8 x 4 classes\) for options\.targets but received 31/,
  });
  const bad = targets.slice();
  bad[5] = -0.1;
  t.throws(() => engine.trainStep(images, labels, { targets: bad }), {
    instanceOf: RangeError,
    message: /finite number >= 0 \(sample 1, class 1\) for options\.targets\[5\] but received -0\.1/,
  });
  const unnormalised = targets.map((x) => 2 * x);
  t.throws(() => engine.trainStep(images, labels, { targets: unnormalised }), {
    instanceOf: RangeError,
    message: /a row summing to 1 for options\.targets \(sample 0\) but received a sum of 2/,
  });
  t.throws(() => engine.trainStep(images, labels, { targets: Array.from(targets) }), {
    instanceOf: TypeError,
    message: /Float32Array for options\.targets/,
  });
});

test('a learnable synthetic task trains to near-zero loss (Adam, cross-entropy + Ad-Corre)', (t) => {
  const { ce, correct } = trainSynthetic(t, Engine.create(tiny, { maxBatch: 16, seed: 3 }), ConfusionTracker);
  t.is(correct, 16);
  t.true(ce < 0.05, `cross-entropy after 300 steps: ${ce}`);
});

test('state saved and restored continues exactly (weights, batch-norm statistics, Adam moments, steps)', (t) => {
  const a = Engine.create(tiny, { maxBatch: 8, seed: 4 });
  const first = syntheticBatch(8, 4);
  for (let s = 0; s < 3; s++) a.trainStep(first.images, first.labels, { seed: s });
  const b = Engine.create(tiny, { maxBatch: 8, seed: 99 });
  b.setState(a.getState());
  const next = syntheticBatch(8, 5);
  const ra = a.trainStep(next.images, next.labels, { seed: 7 });
  const rb = b.trainStep(next.images, next.labels, { seed: 7 });
  t.is(ra.loss, rb.loss);
  t.deepEqual(a.getWeights(), b.getWeights());
  t.is(a.getState().steps, 4);
});

test('NaN in a batch is detected and named; the update is skipped', (t) => {
  checkNanStepSkipped(t, Engine.create(tiny, { maxBatch: 4, seed: 5 }));
});

test('bad input to the engine names the parameter', (t) => {
  const engine = Engine.create(tiny, { maxBatch: 4, seed: 6 });
  const { images, labels } = syntheticBatch(4, 7);
  t.throws(() => engine.trainStep(images.subarray(1), labels), {
    instanceOf: RangeError,
    message: /length 4 x 1 x 35 x 35 = 4900 for images but received length 4899/,
  });
  t.throws(() => engine.trainStep(images, Int32Array.of(0, 1, 2, 4)), {
    instanceOf: RangeError,
    message: /labels\[3\]/,
  });
  t.throws(() => engine.trainStep(new Float32Array(5 * S * S), new Int32Array(5)), {
    instanceOf: RangeError,
    message: /batch of 1\.\.4/,
  });
  t.throws(() => engine.trainStep(images, labels, { learningRate: 1 }), {
    instanceOf: TypeError,
    message: /Unknown option 'learningRate'/,
  });
  t.throws(() => engine.trainStep(images, Array.from(labels)), {
    instanceOf: TypeError,
    message: /Int32Array for labels/,
  });
  t.throws(() => Engine.create({ ...tiny, inputSize: 12 }, { maxBatch: 4 }), {
    instanceOf: RangeError,
    message: /inputSize/,
  });
});
