// Engine.trainStep follows adcorre-train's defaults (issue #30.2): what a call
// leaves out is TRAINING_DEFAULTS' (lib/train/defaults.ts), the binding takes
// every option explicitly, and the engine's device defaults to 'auto'.
import test from 'ava';
import { backendInfo, Engine } from 'adcorre-native';
import { TRAINING_DEFAULTS } from 'adcorre-native/internal';
import { TRAINING_DEFAULTS as TRAINER_DEFAULTS } from 'adcorre-native/internal';
import { syntheticBatch } from './helpers/synthetic.js';

const tiny = { inputSize: 35, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 4 };
const D = TRAINING_DEFAULTS;

test('a step with no options is the step with the CLI defaults written out (lr 2e-3, bnMomentum 0.9, lambdaCE 50, ...)', (t) => {
  const bare = Engine.create(tiny, { maxBatch: 8, seed: 3, device: 'cpu' });
  const spelled = Engine.create(tiny, { maxBatch: 8, seed: 3, device: 'cpu' });
  const explicit = {
    lambdaCE: D.lambdaCE,
    wFD: D.wFD,
    wMD: D.wMD,
    wED: D.wED,
    adcorre: D.adcorre,
    optimizer: D.optimizer,
    lr: D.lr,
    momentum: D.momentum,
    nesterov: D.nesterov,
    weightDecay: D.weightDecay,
    bnMomentum: D.bnMomentum,
    seed: 0,
  };
  t.like(explicit, { lr: 2e-3, bnMomentum: 0.9, lambdaCE: 50 }); // the values issue #30 names
  for (let step = 0; step < 2; step++) {
    const { images, labels } = syntheticBatch(8, step, { size: tiny.inputSize });
    t.deepEqual(bare.trainStep(images, labels), spelled.trainStep(images, labels, explicit));
  }
  t.deepEqual(bare.getState(), spelled.getState());
  // and not the old binding fallbacks (lr 1e-3, bnMomentum 0.99, lambdaCE 1)
  const old = Engine.create(tiny, { maxBatch: 8, seed: 3, device: 'cpu' });
  const { images, labels } = syntheticBatch(8, 0, { size: tiny.inputSize });
  const fresh = Engine.create(tiny, { maxBatch: 8, seed: 3, device: 'cpu' });
  t.not(
    old.trainStep(images, labels, { lr: 1e-3, bnMomentum: 0.99, lambdaCE: 1 }).loss,
    fresh.trainStep(images, labels).loss,
  );
});

test('options given as undefined take the default; a bad seed is refused naming it', (t) => {
  const a = Engine.create(tiny, { maxBatch: 8, seed: 4, device: 'cpu' });
  const b = Engine.create(tiny, { maxBatch: 8, seed: 4, device: 'cpu' });
  const { images, labels } = syntheticBatch(8, 1, { size: tiny.inputSize });
  t.deepEqual(a.trainStep(images, labels, { lr: undefined, seed: undefined }), b.trainStep(images, labels));
  for (const seed of [-1, 2 ** 32, 1.5])
    t.throws(() => a.trainStep(images, labels, { seed }), { instanceOf: RangeError, message: /options\.seed/ });
});

test("the engine's device defaults to 'auto', as the trainer's, the loss's and FER's", (t) => {
  const engine = Engine.create(tiny, { maxBatch: 2 });
  t.is(engine.device, backendInfo().cuda.usable ? 'cuda:0' : 'cpu');
  t.is(D.device, 'auto');
});

test("the trainer's TRAINING_DEFAULTS are lib/train/defaults.ts' object, not a copy", (t) => {
  t.is(TRAINER_DEFAULTS, TRAINING_DEFAULTS);
});
