// lib/train/schedule.ts: the learning rate at a step, per schedule, after the warm-up.
import test from 'ava';
import { freshPlateau, learningRate, plateauAfter } from 'adcorre-native/internal';

const base = { lr: 0.1, schedule: 'cosine', decay: 0.01, epochs: 10, stepGamma: 0.5, stepEvery: 3, warmup: 0 };
const close = (t, a, b) => t.true(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('cosine: lr at the start, half at mid-run, 0 at the end and after', (t) => {
  close(t, learningRate(base, freshPlateau(), 0, 0), 0.1);
  close(t, learningRate(base, freshPlateau(), 50, 5), 0.05);
  close(t, learningRate(base, freshPlateau(), 100, 10), 0);
  close(t, learningRate(base, freshPlateau(), 120, 12), 0);
});

test('decay: Keras inverse-time decay per step; step: gamma every stepEvery epochs', (t) => {
  close(t, learningRate({ ...base, schedule: 'decay' }, freshPlateau(), 100, 7.5), 0.1 / (1 + 0.01 * 100));
  const step = { ...base, schedule: 'step' };
  close(t, learningRate(step, freshPlateau(), 0, 2.99), 0.1);
  close(t, learningRate(step, freshPlateau(), 0, 3), 0.05);
  close(t, learningRate(step, freshPlateau(), 0, 6.5), 0.025);
});

test('plateau: lr x the state scale, which drops by factor after patience epochs without a better accuracy', (t) => {
  const o = { ...base, schedule: 'plateau' };
  let s = plateauAfter(freshPlateau(), 0.5, 2, 0.5);
  s = plateauAfter(s, 0.4, 2, 0.5);
  close(t, learningRate(o, s, 0, 3), 0.1);
  s = plateauAfter(s, 0.5, 2, 0.5); // not better than 0.5: the second bad epoch
  t.deepEqual(s, { best: 0.5, bad: 0, scale: 0.5, reductions: 1 });
  close(t, learningRate(o, s, 0, 4), 0.05);
});

test('warm-up: linear from lr / 10 to the schedule over warmup epochs, then the schedule alone', (t) => {
  const o = { ...base, schedule: 'decay', decay: 0, warmup: 2 };
  close(t, learningRate(o, freshPlateau(), 0, 0), 0.01);
  close(t, learningRate(o, freshPlateau(), 0, 1), 0.055);
  close(t, learningRate(o, freshPlateau(), 0, 2), 0.1);
});
