// The training engine on CUDA against the same engine on the CPU (issue #4):
// one program, the same weights and batch on both executors. Tolerances: loss
// parts relative error <= 1e-4; every parameter's gradient, the updated
// weights and the evaluation outputs ||x - x_cpu|| / ||x_cpu|| <= 1e-4 (fp32
// kernels with different summation orders). Runs where a GPU is usable
// (npm run test:gpu on the device machine); elsewhere each test is skipped
// with the reason, and the CPU-only checks of the device option run.
import test from 'ava';
import { backendInfo, ConfusionTracker, Engine, PRESETS } from 'adcorre-native';
import { relativeError, relativeNormError } from './helpers/compare.js';
import { checkNanStepSkipped, syntheticBatch, trainSynthetic, voteTargets } from './helpers/synthetic.js';

const info = backendInfo();
const why = info.cuda.usable ? '' : ` (skipped: no usable CUDA GPU: ${info.cuda.error ?? 'none found'})`;
const gpuTest = info.cuda.usable ? test : test.skip;

// Odd sizes throughout: 37 px RGB, channel counts of 8 and 16, k = 3 heads of d = 5, 5 classes.
const small = { inputSize: 37, channels: 3, width: 0.0625, middleBlocks: 1, k: 3, d: 5, classes: 5 };
const batchOf = (n, seed, config = small) =>
  syntheticBatch(n, seed, { size: config.inputSize, channels: config.channels, classes: config.classes, noise: 0.6 });
const TOL = 1e-4;

function compareWeights(t, gpu, cpu, what) {
  const a = gpu.getWeights(),
    b = cpu.getWeights();
  for (const [name, w] of b)
    t.true(relativeNormError(a.get(name), w) <= TOL, `${what}: ${name} ${relativeNormError(a.get(name), w)}`);
}

if (!info.cuda.usable) {
  test('without a usable GPU, device cuda is refused with the reason; auto falls back to the CPU', (t) => {
    t.throws(() => Engine.create(small, { maxBatch: 2, device: 'cuda' }), {
      instanceOf: RangeError,
      message: /Expected a usable CUDA GPU for device 'cuda'/,
    });
    t.is(Engine.create(small, { maxBatch: 2, device: 'auto' }).device, 'cpu');
    t.throws(() => Engine.create(small, { maxBatch: 2, device: 'gpu' }), {
      instanceOf: RangeError,
      message: /Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for options\.device but received 'gpu'/,
    });
  });
}

for (const [label, options] of [
  [
    'Adam, Ad-Corre with attention',
    { lr: 1e-3, lambdaCE: 50, classAccuracy: Float32Array.of(0.9, 0.2, 0.5, 0.7, 0.1) },
  ],
  ['SGD with momentum and weight decay, uniform attention', { optimizer: 'sgd', lr: 1e-2, weightDecay: 1e-3 }],
  ['cross-entropy only', { adcorre: false, lr: 1e-3 }],
  ['soft targets (vote distributions), Ad-Corre on the labels', { lr: 1e-3, lambdaCE: 50, targets: 'votes' }],
]) {
  gpuTest(
    `a training step on CUDA equals the CPU (${label}): loss parts, predictions, every gradient, the update${why}`,
    (t) => {
      const cpu = Engine.create(small, { maxBatch: 12, seed: 4, device: 'cpu' });
      const gpu = Engine.create(small, { maxBatch: 12, seed: 4, device: 'cuda' });
      t.is(gpu.device, 'cuda:0');
      for (let step = 0; step < 3; step++) {
        const { images, labels } = batchOf(11, step); // 11 of 12: a partial batch
        const stepOptions = { ...options, seed: step };
        if (options.targets === 'votes') stepOptions.targets = voteTargets(labels, small.classes);
        const a = cpu.trainStep(images, labels, stepOptions);
        const b = gpu.trainStep(images, labels, stepOptions);
        t.true(b.finite);
        for (const key of ['loss', 'ce', 'fd', 'md', 'ed'])
          t.true(relativeError(b[key], a[key]) <= TOL, `step ${step} ${key}: ${b[key]} vs ${a[key]}`);
        t.deepEqual(b.predictions, a.predictions);
        for (const p of cpu.architecture.params) {
          const err = relativeNormError(gpu.gradient(p.name), cpu.gradient(p.name));
          t.true(err <= TOL, `step ${step} gradient of ${p.name}: ${err}`);
        }
        compareWeights(t, gpu, cpu, `after step ${step}`);
      }
    },
  );
}

for (const flip of [false, true]) {
  gpuTest(
    `evaluation on CUDA equals the CPU${flip ? ' with flip averaging' : ''} (probabilities, embeddings; batches split by maxBatch)${why}`,
    (t) => {
      const config = flip ? { ...small, flipAverage: true } : small;
      const cpu = Engine.create(config, { maxBatch: 8, seed: 2, device: 'cpu' });
      const { images, labels } = batchOf(8, 3, config);
      for (let s = 0; s < 2; s++) cpu.trainStep(images, labels, { lr: 1e-2, seed: s }); // batch-norm statistics away from identity
      const gpu = Engine.create(config, { maxBatch: 8, weights: cpu.getWeights(), device: 'cuda' });
      const more = batchOf(19, 4, config); // 19 = 8 + 8 + 3
      const a = cpu.predict(more.images),
        b = gpu.predict(more.images);
      t.true(relativeNormError(b.probs, a.probs) <= TOL, `probs ${relativeNormError(b.probs, a.probs)}`);
      t.true(
        relativeNormError(b.embeddings, a.embeddings) <= TOL,
        `embeddings ${relativeNormError(b.embeddings, a.embeddings)}`,
      );
    },
  );
}

gpuTest(`a learnable synthetic task trains to near-zero loss on CUDA${why}`, (t) => {
  const engine = Engine.create({ ...small, channels: 1, classes: 4 }, { maxBatch: 16, seed: 3, device: 'cuda' });
  const { ce, correct } = trainSynthetic(t, engine, ConfusionTracker);
  t.is(correct, 16);
  t.true(ce < 0.05, `cross-entropy after 300 steps: ${ce}`);
});

gpuTest(`state moves exactly between CPU and CUDA engines, and training continues alike${why}`, (t) => {
  const cpu = Engine.create(small, { maxBatch: 8, seed: 5, device: 'cpu' });
  const first = batchOf(8, 5);
  for (let s = 0; s < 2; s++) cpu.trainStep(first.images, first.labels, { seed: s });
  const gpu = Engine.create(small, { maxBatch: 8, seed: 99, device: 'cuda' });
  gpu.setState(cpu.getState());
  t.deepEqual(
    gpu.getState(),
    cpu.getState(),
    'weights, batch-norm statistics, Adam moments and steps round-trip bit for bit',
  );
  const next = batchOf(8, 6);
  const a = cpu.trainStep(next.images, next.labels, { seed: 7 });
  const b = gpu.trainStep(next.images, next.labels, { seed: 7 });
  t.true(relativeError(b.loss, a.loss) <= TOL);
  compareWeights(t, gpu, cpu, 'after the step');
  t.is(gpu.getState().steps, 3);
});

gpuTest(`NaN on CUDA is detected and named; the update is skipped${why}`, (t) => {
  checkNanStepSkipped(t, Engine.create(small, { maxBatch: 4, seed: 6, device: 'cuda' }));
});

gpuTest(`GPU out of memory is a clear error with the sizes, and CUDA goes on working${why}`, (t) => {
  const error = t.throws(() => Engine.create(PRESETS.paper, { maxBatch: 200000, device: 'cuda' }));
  t.regex(
    error.message,
    /CUDA out of memory on device 0 \(.+\): the training engine needs [\d.]+ MiB for batches of 200000 \(activations and their gradients [\d.]+ MiB, .*MiB are free\. Lower the batch size/,
  );
  const engine = Engine.create(small, { maxBatch: 4, seed: 1, device: 'cuda' });
  const { images, labels } = batchOf(4, 1);
  t.true(engine.trainStep(images, labels).finite);
});
