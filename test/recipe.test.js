// Issue #27's training recipe tools on a tiny configuration: the weights' moving average (--ema), mixup and CutMix
// (--mixup, --cutmix), SGD with Nesterov momentum (--nesterov) and the reduce-on-plateau schedule, and knowledge
// distillation from a teacher model (--teacher). Pure parts are checked exactly; runs are checked for the files they
// write and for resume equal to an uninterrupted run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { Trainer } from '../dist/train/trainer.js';
import { readCheckpoint } from '../dist/train/checkpoint.js';
import { WeightEma } from '../dist/train/ema.js';
import { labelNames, readOnnxWeights } from '../dist/index.js';
import { tempDir, writeImage } from './helpers/fixtures.js';

const tiny = { inputSize: 36, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 7 };

async function dataset() {
  const dir = tempDir('adcorre-recipe-data-');
  for (const [split, per] of [
    ['train', 6],
    ['val', 2],
  ]) {
    for (const [c, name] of labelNames(7).entries()) {
      for (let i = 0; i < per; i++)
        await writeImage(join(dir, split, name, `${i}.png`), { w: 40, h: 40, seed: c * 10 + i, format: 'png' });
    }
  }
  return dir;
}
const data = await dataset();
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
