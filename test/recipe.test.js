// Issue #27's training recipe tools on a tiny configuration: the weights' moving average (--ema), mixup and CutMix
// (--mixup, --cutmix), SGD with Nesterov momentum (--nesterov) and the reduce-on-plateau schedule, and knowledge
// distillation from a teacher model (--teacher). Pure parts are checked exactly; runs are checked for the files they
// write and for resume equal to an uninterrupted run.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { freshPlateau, plateauAfter, Trainer } from 'adcorre-native/internal';
import { readCheckpoint } from 'adcorre-native/internal';
import { WeightEma } from 'adcorre-native/internal';
import { mixBatch, sampleBeta } from 'adcorre-native/internal';
import { mulberry32 } from 'adcorre-native/internal';
import { buildArchitecture, Engine, exportOnnx, initWeights, labelNames, readOnnxWeights } from 'adcorre-native';
import { distilledTargets, temperatureScaled } from 'adcorre-native/internal';
import { tempDir, writeImageFolder } from './helpers/fixtures.js';
import { tiny } from './helpers/models.js';

const data = await writeImageFolder(tempDir('adcorre-recipe-data-'), [
  ['train', 6],
  ['val', 2],
]);
const base = { data, arch: tiny, batch: 8, lr: 3e-3, seed: 3, workers: 0 };

/** A straight run and one stopped after `stopAt` steps then resumed: their last checkpoints. */
async function straightAndResumed(options, stopAt = 7) {
  const straight = tempDir('adcorre-recipe-run-');
  await new Trainer({ ...base, ...options, out: straight }).train();
  const resumed = tempDir('adcorre-recipe-run-');
  const first = await new Trainer({ ...base, ...options, out: resumed, maxSteps: stopAt }).train();
  const second = await new Trainer({ ...base, ...options, out: resumed, resume: true }).train();
  return {
    first,
    second,
    straight,
    resumed,
    a: readCheckpoint(join(straight, 'last.ckpt')),
    b: readCheckpoint(join(resumed, 'last.ckpt')),
  };
}

// ---- the weights' moving average

test('WeightEma: shadow = d x shadow + (1 - d) x weights, with the warm-up decay min(d, (1 + t) / (10 + t))', (t) => {
  const w0 = new Map([['a', Float32Array.of(1, 2)]]);
  const ema = new WeightEma(0.9, true, w0);
  t.not(ema.shadow.get('a'), w0.get('a')); // a copy
  t.is(ema.decayAt(0), 0.1);
  t.is(ema.decayAt(1000), 0.9);
  ema.update(new Map([['a', Float32Array.of(3, 4)]]));
  t.deepEqual(ema.shadow.get('a'), Float32Array.of(0.1 * 1 + 0.9 * 3, 0.1 * 2 + 0.9 * 4));
  t.is(ema.updates, 1);
  const plain = new WeightEma(0.5, false, w0);
  plain.update(new Map([['a', Float32Array.of(3, 4)]]));
  t.deepEqual(plain.shadow.get('a'), Float32Array.of(2, 3));
  t.throws(() => plain.update(new Map()), { message: /parameter a is missing/ });
  t.throws(() => new Trainer({ ...base, epochs: 1, out: 'x', ema: 1 }), {
    message: /Expected decay in \[0, 1\) \(0: off\) for ema but received 1/,
  });
});

test('--ema: the average is validated, kept and exported; checkpoints hold it and the raw weights; resume is exact', async (t) => {
  const { a, b, first, straight } = await straightAndResumed({ epochs: 2, ema: 0.9 });
  t.true(first.interrupted);
  t.truthy(a.raw, 'the raw training weights are in the checkpoint');
  t.deepEqual(a.meta.ema, { decay: 0.9, warmup: true, updates: 10 });
  t.deepEqual(b.state.weights, a.state.weights);
  t.deepEqual(b.raw, a.raw);
  t.deepEqual(b.state.moments, a.state.moments);
  t.deepEqual(b.meta.ema, a.meta.ema);
  // the average differs from the raw weights, batch-norm running statistics included
  const name = [...a.raw.keys()].find((n) => n.endsWith('.weight'));
  t.notDeepEqual(a.state.weights.get(name), a.raw.get(name));
  const mean = [...a.raw.keys()].find((n) => n.endsWith('.mean'));
  if (mean) t.notDeepEqual(a.state.weights.get(mean), a.raw.get(mean));
  // model.onnx holds best.ckpt's weights, the average
  const best = readCheckpoint(join(straight, 'best.ckpt'));
  t.truthy(best.raw);
  const onnx = readOnnxWeights(readFileSync(join(straight, 'model.onnx'))).weights;
  t.deepEqual(onnx.get(name), best.state.weights.get(name));
  // a resume with another decay is refused, naming the option
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 3, out: straight, resume: true, ema: 0.5 }).train(), {
    message: /the run's weight average decay, 0.9, to resume/,
  });
});

// ---- mixup and CutMix

const spec = { mixup: 0, cutmix: 0, prob: 1, size: 6, channels: 2, classes: 4 };
function batchOf(n) {
  const images = Float32Array.from({ length: n * 2 * 36 }, (_, i) => ((i * 7919) % 101) / 100);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
  return { images, labels };
}
const rowSums = (targets, classes) =>
  Array.from({ length: targets.length / classes }, (_, i) =>
    targets.subarray(i * classes, (i + 1) * classes).reduce((a, b) => a + b, 0),
  );

test('sampleBeta: Beta(a, a) draws in [0, 1] with mean 1/2 and variance 1 / (4 (2a + 1))', (t) => {
  for (const a of [0.2, 1, 4]) {
    const random = mulberry32(a * 1000);
    const xs = Array.from({ length: 20000 }, () => sampleBeta(a, a, random));
    t.true(xs.every((x) => x >= 0 && x <= 1));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    t.true(Math.abs(mean - 0.5) < 0.01, `mean ${mean} for alpha ${a}`);
    t.true(Math.abs(variance - 1 / (4 * (2 * a + 1))) < 0.01, `variance ${variance} for alpha ${a}`);
  }
});

test('mixup: the images are the exact blend, targets lambda x own + (1 - lambda) x partner, dominant labels', (t) => {
  const { images, labels } = batchOf(8);
  t.is(mixBatch(images, labels, undefined, spec, 1), null); // off
  t.is(mixBatch(images, labels, undefined, { ...spec, mixup: 1, prob: 0 }, 1), null); // never drawn
  const m = mixBatch(images, labels, undefined, { ...spec, mixup: 0.4 }, 5);
  t.is(m.kind, 'mixup');
  t.true(m.lambda > 0 && m.lambda < 1);
  t.deepEqual([...m.partner].sort(), [0, 1, 2, 3, 4, 5, 6, 7]); // a permutation
  const per = 72;
  for (let i = 0; i < 8; i++)
    for (let j = 0; j < per; j++)
      t.is(
        m.images[i * per + j],
        Math.fround(m.lambda * images[i * per + j] + (1 - m.lambda) * images[m.partner[i] * per + j]),
      );
  for (const s of rowSums(m.targets, 4)) t.true(Math.abs(s - 1) < 1e-6);
  for (let i = 0; i < 8; i++) {
    const expect = new Float32Array(4);
    expect[labels[i]] += m.lambda;
    expect[labels[m.partner[i]]] += 1 - m.lambda;
    t.deepEqual(m.targets.subarray(i * 4, i * 4 + 4), expect);
    t.is(m.labels[i], m.lambda >= 0.5 ? labels[i] : labels[m.partner[i]]);
  }
  // deterministic by seed, another seed another draw
  t.deepEqual(mixBatch(images, labels, undefined, { ...spec, mixup: 0.4 }, 5), m);
  t.not(mixBatch(images, labels, undefined, { ...spec, mixup: 0.4 }, 6).lambda, m.lambda);
  // soft targets (FER+ distributions) are blended as they are
  const soft = Float32Array.from({ length: 32 }, (_, k) => [0.5, 0.25, 0.25, 0][k % 4]);
  const ms = mixBatch(images, labels, soft, { ...spec, mixup: 0.4 }, 5);
  for (let i = 0; i < 8; i++) t.deepEqual(ms.targets.subarray(i * 4, i * 4 + 4), Float32Array.of(0.5, 0.25, 0.25, 0));
});

test('CutMix: a box of the partner pasted on every channel, lambda = the area kept', (t) => {
  const { images, labels } = batchOf(8);
  let seen = 0;
  for (let seed = 0; seed < 20; seed++) {
    const m = mixBatch(images, labels, undefined, { ...spec, cutmix: 1 }, seed);
    t.is(m.kind, 'cutmix');
    const { x0, y0, x1, y1 } = m.box;
    t.true(0 <= x0 && x0 <= x1 && x1 <= 6 && 0 <= y0 && y0 <= y1 && y1 <= 6);
    t.is(m.lambda, 1 - ((x1 - x0) * (y1 - y0)) / 36);
    if (x1 > x0 && y1 > y0) seen++;
    for (let i = 0; i < 8; i++)
      for (let c = 0; c < 2; c++)
        for (let y = 0; y < 6; y++)
          for (let x = 0; x < 6; x++) {
            const inside = x >= x0 && x < x1 && y >= y0 && y < y1;
            const from = inside ? m.partner[i] : i;
            t.is(m.images[i * 72 + c * 36 + y * 6 + x], images[from * 72 + c * 36 + y * 6 + x]);
          }
    for (const s of rowSums(m.targets, 4)) t.true(Math.abs(s - 1) < 1e-6);
    t.deepEqual(mixBatch(images, labels, undefined, { ...spec, cutmix: 1 }, seed), m);
  }
  t.true(seen > 10, 'most boxes are not empty');
  // both on: each batch picks one
  const kinds = new Set(
    Array.from({ length: 20 }, (_, s) => mixBatch(images, labels, undefined, { ...spec, mixup: 1, cutmix: 1 }, s).kind),
  );
  t.deepEqual([...kinds].sort(), ['cutmix', 'mixup']);
});

test('--mixup and --cutmix train, deterministically, and resume exactly; alpha is validated', async (t) => {
  const { a, b } = await straightAndResumed({ epochs: 2, mixup: 0.4, cutmix: 1, labelSmoothing: 0.1 });
  t.deepEqual(b.state.weights, a.state.weights);
  t.deepEqual(b.meta.tracker, a.meta.tracker);
  // mixing changes the run
  const plain = tempDir('adcorre-recipe-run-');
  await new Trainer({ ...base, epochs: 1, out: plain }).train();
  const mixed = tempDir('adcorre-recipe-run-');
  await new Trainer({ ...base, epochs: 1, out: mixed, mixup: 0.4 }).train();
  const w = (dir) => readCheckpoint(join(dir, 'last.ckpt')).state.weights;
  t.notDeepEqual(w(mixed), w(plain));
  t.throws(() => new Trainer({ ...base, epochs: 1, out: 'x', cutmix: -1 }), {
    message: /Expected Beta distribution's alpha in \[0, 100\] \(0: off\) for cutmix but received -1/,
  });
});

// ---- SGD with Nesterov momentum, reduce-on-plateau

test('SGD with Nesterov momentum: three steps equal the update written out from the step gradients', (t) => {
  for (const nesterov of [true, false]) {
    const engine = Engine.create(tiny, { maxBatch: 4, seed: 2 });
    const images = Float32Array.from({ length: 4 * 36 * 36 }, (_, i) => ((i * 7919) % 97) / 97);
    const labels = Int32Array.of(0, 3, 5, 6);
    const params = engine.architecture.params.filter((p) => p.trainable);
    const lr = 0.05,
      mu = 0.9,
      wd = 0.01;
    let w = engine.getWeights();
    const m = new Map(params.map((p) => [p.name, new Float64Array(w.get(p.name).length)]));
    for (let step = 0; step < 3; step++) {
      engine.trainStep(images, labels, { optimizer: 'sgd', lr, momentum: mu, weightDecay: wd, nesterov, seed: step });
      const next = engine.getWeights();
      let worst = 0;
      for (const p of params) {
        const g = engine.gradient(p.name),
          w0 = w.get(p.name),
          w1 = next.get(p.name),
          mm = m.get(p.name);
        const decay = p.name.endsWith('.weight') ? wd : 0;
        for (let i = 0; i < g.length; i++) {
          const gi = g[i] + decay * w0[i];
          mm[i] = Math.fround(mu * mm[i] + gi);
          const expect = w0[i] - lr * (nesterov ? gi + mu * mm[i] : mm[i]);
          worst = Math.max(worst, Math.abs(w1[i] - expect) / Math.max(1e-3, Math.abs(expect)));
        }
      }
      t.true(worst < 1e-5, `nesterov ${nesterov}, step ${step}: worst relative difference ${worst}`);
      w = next;
    }
  }
  // Nesterov is SGD's: refused with Adam, naming the option
  t.throws(() => new Trainer({ ...base, epochs: 1, out: 'x', nesterov: true }), {
    message: /Expected optimizer 'sgd' .* for nesterov but received optimizer 'adam'/,
  });
});

test('plateauAfter: patience epochs without a better accuracy multiply the scale by the factor', (t) => {
  let s = freshPlateau();
  const seen = [];
  for (const acc of [0.3, 0.4, 0.4, 0.35, 0.5, 0.5, 0.5, 0.5, 0.5]) {
    s = plateauAfter(s, acc, 2, 0.5);
    seen.push(s.scale);
  }
  t.deepEqual(seen, [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125]);
  t.is(s.reductions, 3);
  t.is(s.best, 0.5);
});

test('--schedule plateau --optimizer sgd --nesterov: the learning rate follows validation; resume is exact', async (t) => {
  const options = {
    epochs: 4,
    schedule: 'plateau',
    plateauPatience: 1,
    plateauFactor: 0.5,
    warmup: 0,
    optimizer: 'sgd',
    nesterov: true,
    lr: 0.01,
  };
  const { a, b, straight } = await straightAndResumed(options, 12);
  t.deepEqual(b.state.weights, a.state.weights);
  t.deepEqual(b.meta.plateau, a.meta.plateau);
  const history = readFileSync(join(straight, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  // replay the schedule from the recorded accuracies: each epoch's record holds the rate after it
  let s = freshPlateau();
  for (const h of history) {
    s = plateauAfter(s, h.val.accuracy, 1, 0.5);
    t.is(h.lr, 0.01 * s.scale);
  }
  t.deepEqual(a.meta.plateau, s);
});

// ---- knowledge distillation

test('temperatureScaled: softmax(log(p) / T) equals softmax(logits / T); distilled targets sum to 1', (t) => {
  const logits = [2, -1, 0.5, 3, 0, 0, 1, -2];
  const softmax = (z) => {
    const m = Math.max(...z),
      e = z.map((v) => Math.exp(v - m)),
      s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const probs = Float32Array.from([...softmax(logits.slice(0, 4)), ...softmax(logits.slice(4))]);
  for (const T of [1, 2, 4]) {
    const got = temperatureScaled(probs, 4, T);
    const want = [...softmax(logits.slice(0, 4).map((z) => z / T)), ...softmax(logits.slice(4).map((z) => z / T))];
    for (let i = 0; i < 8; i++) t.true(Math.abs(got[i] - want[i]) < 1e-6, `T ${T} [${i}]: ${got[i]} vs ${want[i]}`);
  }
  const soft = temperatureScaled(probs, 4, 4);
  const mixed = distilledTargets(Int32Array.of(1, 3), undefined, soft, 4, 0.25);
  for (const s of rowSums(mixed, 4)) t.true(Math.abs(s - 1) < 1e-6);
  t.is(mixed[1], Math.fround(0.75 + 0.25 * soft[1]));
  t.is(mixed[0], Math.fround(0.25 * soft[0]));
});

test('--teacher: the student trains against the teacher on the fly, exactly on resume; a mismatched teacher is refused', async (t) => {
  const teacherRun = tempDir('adcorre-recipe-teacher-');
  await new Trainer({ ...base, epochs: 1, out: teacherRun, seed: 9 }).train();
  const teacher = join(teacherRun, 'model.onnx');
  const { a, b } = await straightAndResumed({ epochs: 2, teacher, teacherWeight: 0.7, mixup: 0.4 });
  t.deepEqual(b.state.weights, a.state.weights);
  t.is(a.meta.options.teacher, teacher);
  const plain = tempDir('adcorre-recipe-run-');
  await new Trainer({ ...base, epochs: 1, out: plain }).train();
  const taught = tempDir('adcorre-recipe-run-');
  await new Trainer({ ...base, epochs: 1, out: taught, teacher }).train();
  const w = (dir) => readCheckpoint(join(dir, 'last.ckpt')).state.weights;
  t.notDeepEqual(w(taught), w(plain));
  // another input size
  const other = join(tempDir(), 'other.onnx');
  const config = { ...tiny, inputSize: 40 };
  writeFileSync(other, exportOnnx(config, initWeights(buildArchitecture(config), 1), { labels: labelNames(7) }));
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 1, out: tempDir(), teacher: other }).train(), {
    message: /Expected a model of the student's input, 36x36x1 for teacher but received .*other\.onnx \(40x40x1\)/,
  });
  t.throws(() => new Trainer({ ...base, epochs: 1, out: 'x', teacher, teacherWeight: 2 }), {
    message: /Expected number in \[0, 1\] for teacherWeight but received 2/,
  });
});
