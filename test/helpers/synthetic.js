// A learnable synthetic task for the engine tests: each class a fixed random
// pattern, each sample its class's pattern plus noise, clipped to [0, 1].
import { rng } from './random.js';

/** n samples of `size` x `size` x `channels` over `classes` classes (labels i % classes). */
export function syntheticBatch(n, seed, { size, channels = 1, classes = 4, noise = 0.15 }) {
  const per = channels * size * size;
  const patterns = Array.from({ length: classes }, (_, c) => {
    const r = rng(100 + c);
    return Float32Array.from({ length: per }, () => r.next());
  });
  const r = rng(seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const images = new Float32Array(n * per);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < per; j++) {
      images[i * per + j] = Math.min(1, Math.max(0, patterns[labels[i]][j] + noise * (r.next() - 0.5)));
    }
  return { images, labels };
}

/**
 * Trains `engine` (4 classes) for 300 steps of 16 samples on the task (Adam,
 * cross-entropy + Ad-Corre with the attention map), asserting every step
 * finite; returns the evaluation-mode (no dropout, running statistics)
 * cross-entropy on new samples and how many of them are classified right.
 */
export function trainSynthetic(t, engine, ConfusionTracker) {
  const size = engine.config.inputSize,
    channels = engine.config.channels;
  const tracker = new ConfusionTracker(4, { history: 64 });
  for (let step = 0; step < 300; step++) {
    const { images, labels } = syntheticBatch(16, 1000 + step, { size, channels });
    const r = engine.trainStep(images, labels, { lr: 1e-2, classAccuracy: tracker.recall(), seed: step });
    tracker.update(labels, r.predictions);
    t.true(r.finite, `step ${step}`);
  }
  const { images, labels } = syntheticBatch(16, 99, { size, channels });
  const { probs } = engine.predict(images);
  let ce = 0,
    correct = 0;
  for (let i = 0; i < 16; i++) {
    const p = probs.subarray(i * 4, i * 4 + 4);
    if (p.indexOf(Math.max(...p)) === labels[i]) correct++;
    ce -= Math.log(p[labels[i]]) / 16;
  }
  return { ce, correct };
}

/** A NaN in one image of a 4-sample batch: the step reports it at the input pipeline's first op and leaves the weights as they were. */
export function checkNanStepSkipped(t, engine) {
  const { images, labels } = syntheticBatch(4, 7, {
    size: engine.config.inputSize,
    channels: engine.config.channels,
    classes: engine.config.classes,
  });
  const before = engine.getWeights();
  images[10] = Number.NaN;
  const r = engine.trainStep(images, labels);
  t.false(r.finite);
  t.is(r.badLayer, 'input.standardize');
  t.deepEqual(engine.getWeights(), before);
}

/**
 * Vote-like soft targets for a batch (FER+'s normalised crowd votes): most mass on the label, the rest spread
 * deterministically over one or two other classes, rows summing to 1.
 */
export function voteTargets(labels, classes) {
  const t = new Float32Array(labels.length * classes);
  labels.forEach((label, i) => {
    const row = t.subarray(i * classes, (i + 1) * classes);
    row[label] = 6;
    row[(label + 1 + (i % (classes - 1))) % classes] += 3;
    row[(i * 7) % classes] += 1;
    const sum = row.reduce((a, b) => a + b, 0);
    for (let c = 0; c < classes; c++) row[c] /= sum;
  });
  return t;
}
