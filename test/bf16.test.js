// bf16 precision (issue #42): the native numerics checks (native/engine/bf16_test.cpp) on every float GEMM
// kernel this CPU has; a whole engine step in bf16 against fp32; the precision option on the Engine, the
// Trainer (checkpoint record, resume in another precision) and backendInfo.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { backendInfo, buildArchitecture, ConfusionTracker, Engine } from 'adcorre-native';
import { buildProgram, native, readCheckpoint, Trainer } from 'adcorre-native/internal';
import { syntheticBatch, trainSynthetic } from './helpers/synthetic.js';
import { tempDir, writeImageFolder } from './helpers/fixtures.js';
import { tiny } from './helpers/models.js';

const binary = new URL('../build/Release/adcorre_bf16_test', import.meta.url).pathname;
const info = backendInfo();
const cpuFlags = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';

// cap: ADCORRE_GEMM (the fp32 kernel); kernel: ADCORRE_BF16_KERNEL=reference runs the GEMM's bf16-pair path (the
// AVX512-BF16 kernel's packing and tiles) through its plain C++ tile kernel, so that path is tested on every CPU
for (const [cap, kernel] of [
  ['', ''],
  ['avx2', ''],
  ['portable', ''],
  ['', 'reference'],
]) {
  test(`bf16 numerics: rounding, GEMM vs rounded-input reference, backend ops${cap ? ` (float GEMM capped at ${cap})` : ''}${kernel ? ' (bf16 pairs through the reference tile kernel)' : ''}`, async (t) => {
    if (!existsSync(binary)) {
      t.fail(`${binary} is missing: run npm run compile:native`);
      return;
    }
    const env = { ...process.env, ADCORRE_GEMM: cap, ADCORRE_BF16_KERNEL: kernel };
    const { stdout } = await promisify(execFile)(binary, { env });
    const lines = stdout.trim().split('\n');
    t.log(lines[0], '|', lines.at(-1));
    for (const skip of lines.filter((l) => l.startsWith('skip '))) t.log(skip);
    t.regex(stdout, /^\d+ passed, 0 failed$/m);
    t.notRegex(stdout, /FAIL/);
    t.regex(stdout, /^ok +bf16_round 0x3f818000 -> 0x3f82/m); // the hand-worked cases ran
    t.regex(stdout, /^ok +bf16 gemm 41x31x601 trans_a=1 trans_b=1 accumulate=1/m);
    if (kernel) t.regex(stdout, /bf16 kernel: reference;/);
    if (cap === 'portable') t.regex(stdout, /^skip bf16 gemm from NCHW layouts/m);
    else if (info.cpu.gemm !== 'portable') t.regex(stdout, /^ok +bf16 gemm NCHW input gradient \(accumulate\)/m);
    // the AVX512-BF16 kernel test: said to be skipped, naming the flag, where the CPU lacks it
    if (!/\bavx512_bf16\b/.test(cpuFlags)) t.regex(stdout, /^skip AVX512-BF16 kernel test: this CPU lacks avx512bf16/m);
  });
}

test('backendInfo().cpu reports the GEMM kernels and bf16 support as /proc/cpuinfo says', (t) => {
  t.true(['avx512', 'avx2', 'portable'].includes(info.cpu.gemm));
  t.is(typeof info.cpu.bf16, 'boolean');
  t.is(typeof info.cpu.bf16Kernel, 'string');
  if (cpuFlags) t.is(info.cpu.bf16, /\b(avx512_bf16|amx_bf16)\b/.test(cpuFlags));
  t.log(`gemm ${info.cpu.gemm}, bf16 instructions ${info.cpu.bf16}, bf16 kernel ${info.cpu.bf16Kernel}`);
});

test("Engine precision: default fp32, bf16 on request, 'auto' resolved, bad values refused naming the option", (t) => {
  t.is(Engine.create(tiny, { maxBatch: 2 }).precision, 'fp32');
  t.is(Engine.create(tiny, { maxBatch: 2, precision: 'bf16', device: 'cpu' }).precision, 'bf16');
  // auto: bf16 only where it runs a bf16 kernel of its own (not the emulated one)
  const auto = Engine.create(tiny, { maxBatch: 2, precision: 'auto', device: 'cpu' }).precision;
  t.is(auto, info.cpu.bf16Kernel === 'avx512bf16' ? 'bf16' : 'fp32');
  t.throws(() => Engine.create(tiny, { maxBatch: 2, precision: 'fp16' }), {
    instanceOf: RangeError,
    message: /Expected one of 'fp32', 'bf16', 'auto' for options\.precision but received 'fp16'/,
  });
  // the native engine refuses bf16 on a GPU before touching it, and anything else it does not know
  const program = buildProgram(buildArchitecture(tiny));
  const Native = native().Engine;
  t.throws(() => new Native(program, 2, 0, 'bf16'), { message: /precision 'fp32' or 'auto' on cuda:0.*'bf16'/ });
  t.throws(() => new Native(program, 2, -1, 'half'), { message: /precision 'fp32', 'bf16' or 'auto'.*'half'/ });
  t.is(new Native(program, 2, -1).precision, 'fp32');
});

// A whole step (forward, 50 x CE + Ad-Corre, backward) from the same weights on the same batch, bf16 against
// fp32. This untrained network's gradient is itself sensitive: moving every weight by a random relative
// amount up to 2^-8 (the size of one bf16 rounding) changes the fp32 gradient by 20-30 % (relative L2), and
// bf16 rounds activations and gradients too, so the bound is relative to that sensitivity: bf16's gradient
// differs from fp32's by at most twice what such a perturbation does (measured here: 1.3-1.4 times), and the
// loss by at most 1 % (measured: 4e-4 to 4e-3). A wrong operand (a transposition, a stale panel) is far past it.
const relativeDistance = (a, b) => {
  let d = 0,
    n = 0;
  for (const { name } of a.architecture.params) {
    const ga = a.gradient(name),
      gb = b.gradient(name);
    for (let i = 0; i < ga.length; i++) {
      d += (ga[i] - gb[i]) ** 2;
      n += ga[i] ** 2;
    }
  }
  return Math.sqrt(d / n);
};

test('a train step in bf16 against fp32: loss and gradients within the documented tolerance, not identical', (t) => {
  const config = { ...tiny, width: 0.125 };
  const a = Engine.create(config, { maxBatch: 32, seed: 4, device: 'cpu' });
  const weights = a.getWeights();
  const b = Engine.create(config, { maxBatch: 32, weights, device: 'cpu', precision: 'bf16' });
  let state = 12345; // a fixed LCG: the perturbation is the same on every run
  const uniform = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  const perturbed = new Map(
    [...weights].map(([name, w]) => [
      name,
      /\.(mean|var)$/.test(name) ? w : w.map((x) => x * (1 + 2 * uniform() * 2 ** -8)),
    ]),
  );
  const c = Engine.create(config, { maxBatch: 32, weights: perturbed, device: 'cpu' });
  const { images, labels } = syntheticBatch(32, 4, { size: config.inputSize });
  const [sa, sb] = [a, b, c].map((e) => e.trainStep(images, labels, { lr: 1e-3, seed: 1 }));
  t.true(sa.finite && sb.finite);
  const lossError = Math.abs(sa.loss - sb.loss) / Math.abs(sa.loss);
  const bf16 = relativeDistance(a, b),
    sensitivity = relativeDistance(a, c);
  t.log(
    `loss ${sa.loss.toFixed(5)} fp32, ${sb.loss.toFixed(5)} bf16 (relative ${lossError.toExponential(2)}); gradient ` +
      `relative L2 ${bf16.toExponential(2)}, fp32 under a 2^-8 weight perturbation ${sensitivity.toExponential(2)}`,
  );
  t.true(bf16 > 0 && lossError > 0, 'bf16 changed the step');
  t.true(lossError < 0.01, `loss ${lossError}`);
  t.true(bf16 < 2 * sensitivity, `gradient ${bf16} against ${sensitivity}`);
});

test('bf16 trains: the learnable synthetic task to near-zero loss, as fp32 does', (t) => {
  const engine = Engine.create({ ...tiny, inputSize: 35, classes: 4 }, { maxBatch: 16, seed: 3, precision: 'bf16' });
  t.is(engine.precision, 'bf16');
  const { ce, correct } = trainSynthetic(t, engine, ConfusionTracker);
  t.is(correct, 16);
  t.true(ce < 0.05, `cross-entropy after 300 steps: ${ce}`);
});

const dataReady = writeImageFolder(tempDir('adcorre-bf16-data-'), [
  ['train', 3],
  ['val', 1],
]);

test('Trainer: the checkpoint records the precision; a resume in another precision is allowed and recorded', async (t) => {
  const out = tempDir('adcorre-bf16-run-');
  const data = await dataReady;
  const base = { data, arch: tiny, batch: 8, lr: 3e-3, seed: 3, workers: 0, device: 'cpu', out };
  const starts = [];
  const onProgress = (e) => e.start && starts.push(e.start.precision);
  await new Trainer({ ...base, epochs: 2, maxSteps: 3, precision: 'bf16' }).train(onProgress);
  const first = readCheckpoint(join(out, 'last.ckpt')).meta;
  t.is(first.precision, 'bf16');
  t.is(first.options.precision, 'bf16');
  const second = await new Trainer({ ...base, epochs: 2, resume: true, precision: 'fp32' }).train(onProgress);
  t.false(second.interrupted);
  const last = readCheckpoint(join(out, 'last.ckpt')).meta;
  t.is(last.precision, 'fp32');
  t.is(last.step, second.steps);
  t.deepEqual(starts, ['bf16', 'fp32']);
  t.throws(() => new Trainer({ ...base, epochs: 1, precision: 'half' }), { message: /precision/ });
});
