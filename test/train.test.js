// The training harness on a small generated dataset and a tiny configuration:
// the run folder, resume equal to an uninterrupted run, atomic and checked
// checkpoints, SIGINT handling, an unwritable output folder refused up front,
// and the export/eval round trip (ONNX Runtime's accuracy = the trainer's).
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { smoothedTargets, Trainer } from 'adcorre-native/internal';
import { readCheckpoint } from 'adcorre-native/internal';
import { buildArchitecture, exportOnnx, FER, initWeights, readMetadata } from 'adcorre-native';
import { pattern, tempDir, writeImageFolder } from './helpers/fixtures.js';
import { tiny } from './helpers/models.js';

const data = await writeImageFolder(tempDir('adcorre-train-data-'), [
  ['train', 6],
  ['val', 2],
]);
const base = { data, arch: tiny, batch: 8, lr: 3e-3, seed: 3, workers: 0 };

test('a run: metrics per epoch, best and last checkpoints, ONNX model, charts, summary', async (t) => {
  const out = tempDir('adcorre-run-');
  const events = [];
  const summary = await new Trainer({ ...base, epochs: 2, out }).train((e) => events.push(e.phase));
  t.is(summary.epochs, 2);
  t.is(summary.steps, 10); // 42 training images, batches of 8, last partial batch dropped
  for (const f of [
    'last.ckpt',
    'best.ckpt',
    'model.onnx',
    'metrics.jsonl',
    'loss.png',
    'accuracy.png',
    'confusion.png',
    'summary.json',
    'config.json',
  ]) {
    t.true(existsSync(join(out, f)), f);
  }
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.is(lines.length, 2);
  t.is(lines[1].val.samples, 14);
  t.is(lines[1].val.confusion.length, 7);
  t.true(events.includes('eval') && events.includes('epoch-end'));
  t.false(
    readdirSync(out).some((f) => f.endsWith('.tmp')),
    'no temporary files left',
  );
});

test('resume from a mid-epoch stop equals the uninterrupted run', async (t) => {
  const straight = tempDir('adcorre-run-');
  await new Trainer({ ...base, epochs: 2, out: straight }).train();
  const resumed = tempDir('adcorre-run-');
  const first = await new Trainer({ ...base, epochs: 2, out: resumed, maxSteps: 7 }).train();
  t.true(first.interrupted);
  t.is(readCheckpoint(join(resumed, 'last.ckpt')).meta.batch, 2); // stopped inside epoch 2
  const second = await new Trainer({ ...base, epochs: 2, out: resumed, resume: true }).train();
  t.is(second.steps, 10);
  const a = readCheckpoint(join(straight, 'last.ckpt'));
  const b = readCheckpoint(join(resumed, 'last.ckpt'));
  t.deepEqual(b.state.weights, a.state.weights);
  t.deepEqual(b.state.moments, a.state.moments);
  t.deepEqual(b.meta.tracker, a.meta.tracker);
  t.deepEqual(
    readFileSync(join(resumed, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).val),
    readFileSync(join(straight, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).val),
  );
});

test('checkpoints are checked: a truncated or foreign file is refused', async (t) => {
  const out = tempDir('adcorre-run-');
  await new Trainer({ ...base, epochs: 1, out }).train();
  const copy = join(out, 'copy.ckpt');
  copyFileSync(join(out, 'last.ckpt'), copy);
  truncateSync(copy, readFileSync(copy).length - 100);
  t.throws(() => readCheckpoint(copy), { message: /damaged checkpoint \(checksum mismatch/ });
  writeFileSync(copy, 'hello');
  t.throws(() => readCheckpoint(copy), { message: /not an adcorre-native checkpoint/ });
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 1, out: tempDir(), resume: true }).train(), {
    message: /Nothing to resume/,
  });
});

test('an unwritable output folder is an error before training starts', async (t) => {
  const file = join(tempDir(), 'a-file');
  writeFileSync(file, 'x');
  const start = Date.now();
  await t.throwsAsync(() => new Trainer({ ...base, epochs: 1, out: join(file, 'run') }).train(), {
    message:
      /Expected a folder that can hold files for out but received .*a-file\/run: .*a-file is a file, not a folder/,
  });
  t.true(Date.now() - start < 5000);
  t.throws(() => new Trainer({ ...base, epochs: 0, out: 'x' }), {
    instanceOf: RangeError,
    message: /positive integer for epochs/,
  });
  t.throws(() => new Trainer({ ...base, arch: 'huge', epochs: 1, out: 'x' }), {
    instanceOf: RangeError,
    message: /preset .* for arch but received 'huge'/,
  });
  t.throws(() => new Trainer({ ...base, epochs: 1, out: 'x', device: 'tpu' }), {
    instanceOf: RangeError,
    message: /Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for options\.device but received 'tpu'/,
  });
});

const bin = (name) => new URL(`../bin/${name}.js`, import.meta.url).pathname;

test('SIGINT checkpoints and exits 130; --resume continues; export and eval agree with the trainer', async (t) => {
  const out = tempDir('adcorre-run-');
  const arch = join(out, '..', `tiny-${process.pid}.json`);
  writeFileSync(arch, JSON.stringify(tiny));
  const args = ['--data', data, '--arch', arch, '--batch', '8', '--seed', '3', '--workers', '0', '--out', out];
  const child = spawn(process.execPath, [bin('adcorre-train'), ...args, '--epochs', '50'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const code = await new Promise((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (/epoch 1\/50 batch/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    child.on('exit', (c) => resolve(c));
  });
  t.is(code, 130, stderr);
  t.regex(stderr, /SIGINT: saving a checkpoint/);
  t.regex(
    stderr,
    /adcorre-train: 36x36x1, width 0\.0625, r = 1, k = 2, d = 8, 7 classes \([\d.]+ M parameters\) on (cpu|cuda:0); train \d+ images, val \d+; 50 epochs of \d+ steps/,
  );
  const saved = readCheckpoint(join(out, 'last.ckpt'));
  // mid-epoch ('interrupt'), or at the epoch's end when the signal lands after the last batch ('epoch')
  t.true(['interrupt', 'epoch'].includes(saved.meta.reason), saved.meta.reason);
  const resumed = await promisify(execFile)(process.execPath, [
    bin('adcorre-train'),
    ...args,
    '--epochs',
    '2',
    '--resume',
  ]);
  t.regex(resumed.stdout, /^done: 10 steps/);
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  const evaluated = JSON.parse(
    (
      await promisify(execFile)(process.execPath, [
        bin('adcorre-eval'),
        '--model',
        join(out, 'model.onnx'),
        '--data',
        data,
        '--json',
      ])
    ).stdout,
  );
  t.is(evaluated.accuracy, summary.best.accuracy);
  t.is(evaluated.samples, 14);
  const onnx = join(out, 'exported.onnx');
  await promisify(execFile)(process.execPath, [bin('adcorre-export'), join(out, 'best.ckpt'), '-o', onnx]);
  const again = JSON.parse(
    (await promisify(execFile)(process.execPath, [bin('adcorre-eval'), '--model', onnx, '--data', data, '--json']))
      .stdout,
  );
  t.is(again.accuracy, summary.best.accuracy);
  // evaluation-only settings at export: the metadata says so and the model runs
  const tta = join(out, 'tta.onnx');
  await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    join(out, 'best.ckpt'),
    '-o',
    tta,
    '--flip-average',
  ]);
  t.like(readMetadata(readFileSync(tta), 'tta.onnx').config, { ...tiny, flipAverage: true });
  // and off again, whatever the checkpoint says (flip averaging is adcorre-train's default)
  const once = join(out, 'once.onnx');
  await promisify(execFile)(process.execPath, [bin('adcorre-export'), tta, '-o', once, '--no-flip-average']);
  t.falsy(readMetadata(readFileSync(once), 'once.onnx').config.flipAverage);
  const shifted = join(out, 'shifted.onnx');
  await promisify(execFile)(process.execPath, [bin('adcorre-export'), tta, '-o', shifted, '--shift-average', '2']);
  t.like(readMetadata(readFileSync(shifted), 'shifted.onnx').config, { flipAverage: true, shiftAverage: 2 });
  const unshifted = join(out, 'unshifted.onnx');
  await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    shifted,
    '-o',
    unshifted,
    '--shift-average',
    '0',
  ]);
  t.is(readMetadata(readFileSync(unshifted), 'unshifted.onnx').config.shiftAverage, undefined);
  const chart = join(out, 'tta-confusion.png');
  const withTta = JSON.parse(
    (
      await promisify(execFile)(process.execPath, [
        bin('adcorre-eval'),
        '--model',
        tta,
        '--data',
        data,
        '--json',
        '--confusion',
        chart,
      ])
    ).stdout,
  );
  t.is(withTta.samples, 14);
  t.deepEqual([...readFileSync(chart).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  // several checkpoints of one configuration: an ensemble
  const ensemble = join(out, 'ensemble.onnx');
  const made = await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    join(out, 'best.ckpt'),
    join(out, 'last.ckpt'),
    '-o',
    ensemble,
    '--float16',
  ]);
  t.regex(made.stdout, /an ensemble of 2 models/);
  const meta = readMetadata(readFileSync(ensemble), 'ensemble.onnx');
  t.is(meta.members, 2);
  t.deepEqual(
    meta.training.ensemble.map((m) => m.checkpoint),
    [join(out, 'best.ckpt'), join(out, 'last.ckpt')],
  );
  const viaEnsemble = JSON.parse(
    (await promisify(execFile)(process.execPath, [bin('adcorre-eval'), '--model', ensemble, '--data', data, '--json']))
      .stdout,
  );
  t.is(viaEnsemble.samples, 14);
  // an exported single model stands in for its checkpoint: the same ensemble, the same probabilities
  const fromCheckpoints = join(out, 'ensemble-ckpt.onnx');
  const fromModel = join(out, 'ensemble-onnx.onnx');
  await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    join(out, 'best.ckpt'),
    join(out, 'last.ckpt'),
    '-o',
    fromCheckpoints,
  ]);
  await promisify(execFile)(process.execPath, [bin('adcorre-export'), onnx, join(out, 'last.ckpt'), '-o', fromModel]);
  t.is(readMetadata(readFileSync(fromModel), 'ensemble-onnx.onnx').training.ensemble[0].model, onnx);
  const image = { data: pattern(36, 36, 1, 7), width: 36, height: 36, channels: 1 };
  const probabilities = async (file) => {
    const fer = await FER.load({ model: file, device: 'cpu' });
    try {
      return (await fer.predict(image)).faces[0].probabilities;
    } finally {
      await fer.close();
    }
  };
  t.deepEqual(await probabilities(fromModel), await probabilities(fromCheckpoints));
  // an ensemble as an input adds all its members (a shipped ensemble extended or re-exported with other views);
  // --member exports one of them alone (to train from it)
  const extended = join(out, 'extended.onnx');
  const extendedCkpt = join(out, 'extended-ckpt.onnx');
  const exportArgs = (args) => promisify(execFile)(process.execPath, [bin('adcorre-export'), ...args]).catch((e) => e);
  t.regex(
    (await exportArgs([fromCheckpoints, join(out, 'last.ckpt'), '-o', extended])).stdout,
    /an ensemble of 3 models/,
  );
  await exportArgs([join(out, 'best.ckpt'), join(out, 'last.ckpt'), join(out, 'last.ckpt'), '-o', extendedCkpt]);
  t.is(readMetadata(readFileSync(extended), 'extended.onnx').members, 3);
  t.deepEqual(
    readMetadata(readFileSync(extended), 'extended.onnx').training.ensemble.map((m) => [m.member, m.checkpoint]),
    [
      [0, join(out, 'best.ckpt')],
      [1, join(out, 'last.ckpt')],
      [undefined, join(out, 'last.ckpt')],
    ],
  );
  t.deepEqual(await probabilities(extended), await probabilities(extendedCkpt));
  const second = join(out, 'second.onnx');
  const lastAlone = join(out, 'last-alone.onnx');
  await exportArgs([fromCheckpoints, '--member', '1', '-o', second]);
  await exportArgs([join(out, 'last.ckpt'), '-o', lastAlone]);
  t.is(readMetadata(readFileSync(second), 'second.onnx').members, undefined);
  t.deepEqual(await probabilities(second), await probabilities(lastAlone));
  const beyond = await exportArgs([fromCheckpoints, '--member', '2', '-o', join(out, 'x.onnx')]);
  t.is(beyond.code, 2);
  t.regex(beyond.stderr, /Expected an index below .*ensemble-ckpt\.onnx's 2 members for --member but received 2/);
  const notOne = await exportArgs([fromCheckpoints, onnx, '--member', '0', '-o', join(out, 'x.onnx')]);
  t.is(notOne.code, 2);
  t.regex(notOne.stderr, /Expected one ensemble \(\.onnx\) as the only input for --member but received 2 inputs/);
  t.false(existsSync(join(out, 'x.onnx')));
  // members of other architectures (here a wider, deeper single model) join an ensemble; another input does not
  const labels = readMetadata(readFileSync(onnx), 'exported.onnx').labels;
  const single = (config, file) => {
    writeFileSync(join(out, file), exportOnnx(config, initWeights(buildArchitecture(config), 3), { labels }));
    return join(out, file);
  };
  const wider = single({ ...tiny, width: 0.125, middleBlocks: 2, d: 4 }, 'wider.onnx');
  const mixed = join(out, 'mixed.onnx');
  // the checkpoint flip-averages (adcorre-train's default), the single model not: one setting must be chosen
  const undecided = await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    join(out, 'best.ckpt'),
    wider,
    '-o',
    mixed,
  ]).catch((e) => e);
  t.is(undecided.code, 1);
  t.regex(undecided.stderr, /must share one evaluation setting: .*wider\.onnx has flipAverage false.*--flip-average/);
  await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    join(out, 'best.ckpt'),
    wider,
    '-o',
    mixed,
    '--flip-average',
  ]);
  const mixedMeta = readMetadata(readFileSync(mixed), 'mixed.onnx');
  t.deepEqual(mixedMeta.memberConfigs, [tiny, { ...tiny, width: 0.125, middleBlocks: 2, d: 4 }]);
  t.like(mixedMeta.config, tiny);
  const viaMixed = JSON.parse(
    (await promisify(execFile)(process.execPath, [bin('adcorre-eval'), '--model', mixed, '--data', data, '--json']))
      .stdout,
  );
  t.is(viaMixed.samples, 14);
  // a member of another architecture comes out of the ensemble with its own (and the ensemble's views)
  const widerBack = join(out, 'wider-back.onnx');
  await exportArgs([mixed, '--member', '1', '-o', widerBack]);
  t.like(readMetadata(readFileSync(widerBack), 'wider-back.onnx').config, {
    ...tiny,
    width: 0.125,
    middleBlocks: 2,
    d: 4,
    flipAverage: true,
  });
  const larger = single({ ...tiny, inputSize: 40 }, 'larger.onnx');
  const refused = await promisify(execFile)(process.execPath, [
    bin('adcorre-export'),
    join(out, 'best.ckpt'),
    larger,
    '-o',
    join(out, 'refused.onnx'),
  ]).catch((e) => e);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /must share one input and one set of classes: .*larger\.onnx has 40x40x1 input, 7 classes/);
});

test('label smoothing: (1 - e) x the one-hot label or the vote distribution + e / classes; rows sum to 1', (t) => {
  const hard = smoothedTargets(Int32Array.of(2, 0), undefined, 4, 0.1);
  t.deepEqual(
    [...hard].map((v) => Number(v.toFixed(6))),
    [0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025, 0.025],
  );
  const votes = Float32Array.of(0.5, 0.5, 0, 0, 0, 0, 0.2, 0.8);
  const soft = smoothedTargets(Int32Array.of(0, 3), votes, 4, 0.2);
  t.deepEqual(
    [...soft].map((v) => Number(v.toFixed(6))),
    [0.45, 0.45, 0.05, 0.05, 0.05, 0.05, 0.21, 0.69],
  );
  for (const row of [hard.subarray(0, 4), hard.subarray(4), soft.subarray(0, 4), soft.subarray(4)])
    t.true(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6);
});
