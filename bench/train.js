#!/usr/bin/env node
// Training throughput of the engine: images/s of full steps (forward,
// 50 x cross-entropy + Ad-Corre, backward, Adam) on random inputs, and the
// evaluation pass (forward only, batch 32) that validation uses.
//   node bench/train.js [--json] [--runs small:64,mini:64,compact:64] [--seconds 10] [--device cpu|cuda]
//                       [--precision fp32|bf16|auto, or a list: fp32,bf16 runs both, alternated --rounds times]
//   node bench/train.js --compare [--rounds 2]   # beside PyTorch CPU (../shared/tools/torch_cpu_train.py), alternated
//   node bench/train.js --precision bf16 --compare   # beside PyTorch's fastest CPU configuration (bf16 autocast,
//                                                   # channels_last: BF16=1 CL=1), the bf16 rows; fp32 rows beside fp32
//   node bench/train.js --device cuda --table    # issue #4's configurations, beside PyTorch on an H100
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { helpOption, printUsage } from './usage.js';
import { backendInfo, Engine, PRESETS } from '../dist/index.js';

// PyTorch 2.11 on an H100 (issue #4): fp32 parameters, cuDNN's default TF32
// convolutions, Adam, this loss; images/s. Only comparable with a run on the same kind of card.
const TABLE = [
  { run: 'paper:50', pytorch: 895, note: '544 in strict fp32' },
  { run: 'fer-48:256', pytorch: 8216 },
  { run: 'compact:256', pytorch: 14469 },
];
const TORCH_SCRIPT = new URL('../../shared/tools/torch_cpu_train.py', import.meta.url).pathname;
const EVAL_BATCH = 32; // as torch_cpu_train.py's eval

const { values: args } = parseArgs({
  options: {
    ...helpOption,
    json: { type: 'boolean', default: false },
    runs: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    device: { type: 'string', default: 'cpu' },
    precision: { type: 'string', default: 'fp32' },
    table: { type: 'boolean', default: false },
    compare: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '2' },
    python: { type: 'string', default: 'python3' },
  },
});
if (args.help) {
  printUsage(import.meta.url);
  process.exit(0);
}
const seconds = Number(args.seconds);
if (!(seconds > 0)) throw new Error(`Expected a positive number for --seconds but received ${args.seconds}`);
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`Expected a positive integer for --rounds but received ${args.rounds}`);
const precisions = args.precision.split(',');
for (const p of precisions)
  if (!['fp32', 'bf16', 'auto'].includes(p))
    throw new Error(`Expected fp32, bf16 or auto (or a comma-separated list) for --precision but received ${p}`);
const alternated = args.compare || precisions.length > 1;
const runs = args.table
  ? TABLE
  : (args.runs ?? (args.compare ? 'small:64,mini:64,compact:64' : 'compact:64')).split(',').map((run) => ({ run }));
const info = backendInfo();
const where = args.device === 'cpu' ? `CPU, ${info.cpu.threads} threads` : (info.cuda.devices[0]?.name ?? 'CUDA');
const cpuName = os.cpus()[0]?.model.trim() ?? 'unknown CPU';

if (args.compare) {
  if (args.device !== 'cpu') throw new Error('--compare runs PyTorch on the CPU: use it with --device cpu');
  if (!existsSync(TORCH_SCRIPT)) throw new Error(`--compare needs ${TORCH_SCRIPT} (../shared/tools beside the clone)`);
  try {
    execFileSync(args.python, ['-c', 'import torch'], { stdio: 'ignore' });
  } catch {
    throw new Error(`--compare needs PyTorch: ${args.python} cannot import torch (pip install torch)`);
  }
}

function timeEngine(preset, batch, precision) {
  const config = PRESETS[preset];
  if (!config) throw new Error(`Unknown preset ${preset} (${Object.keys(PRESETS).join(', ')})`);
  const engine = Engine.create(config, {
    maxBatch: Math.max(batch, EVAL_BATCH),
    seed: 1,
    device: args.device,
    precision,
  });
  const perImage = config.channels * config.inputSize ** 2;
  const images = Float32Array.from({ length: batch * perImage }, () => Math.random());
  const labels = Int32Array.from({ length: batch }, (_, i) => i % config.classes);
  for (let s = 0; s < 2; s++) engine.trainStep(images, labels, { lr: 1e-4, lambdaCE: 50, seed: s }); // warm-up
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000)
    engine.trainStep(images, labels, { lr: 1e-4, lambdaCE: 50, seed: steps++ });
  const msPerStep = (performance.now() - t0) / steps;
  const evalImages = images.length >= EVAL_BATCH * perImage ? images.subarray(0, EVAL_BATCH * perImage) : null;
  let evalImagesPerSecond = null;
  if (evalImages) {
    for (let s = 0; s < 2; s++) engine.predict(evalImages, EVAL_BATCH);
    let passes = 0;
    const e0 = performance.now();
    while (performance.now() - e0 < (seconds * 1000) / 2) {
      engine.predict(evalImages, EVAL_BATCH);
      passes++;
    }
    evalImagesPerSecond = (EVAL_BATCH * passes * 1000) / (performance.now() - e0);
  }
  return {
    config,
    device: engine.device,
    precision: engine.precision,
    steps,
    msPerStep,
    imagesPerSecond: (batch * 1000) / msPerStep,
    evalImagesPerSecond,
  };
}

// bf16: PyTorch's fastest CPU configuration, bf16 autocast and channels_last (the script's BF16=1 CL=1)
function timeTorch(preset, batch, bf16) {
  const fastest = bf16 ? { BF16: '1', CL: '1' } : {};
  const out = execFileSync(args.python, [TORCH_SCRIPT, `${preset}:${batch}`], {
    env: { ...process.env, BENCH_S: String(seconds), THREADS: String(info.cpu.threads), ...fastest },
    encoding: 'utf8',
  });
  const row = JSON.parse(out.trim().split('\n').at(-1));
  return {
    imagesPerSecond: row.train_img_s,
    evalImagesPerSecond: row.eval_img_s_b32,
    version: row.torch,
    bf16: Boolean(row.bf16),
    channelsLast: Boolean(row.channels_last),
  };
}

const best = (a, b) => (a == null ? b : Math.max(a, b));
const plans = runs.flatMap(({ run, pytorch, note }) => {
  const [preset, batchText] = run.split(':');
  const batch = Number(batchText ?? 64);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`Expected a positive integer batch in ${run}`);
  return precisions.map((requested) => ({
    row: { preset, batch, requested, where, cpu: cpuName, rounds: alternated ? rounds : 1, engine: {}, pytorch: null },
    pytorch,
    note,
  }));
});
// Alternated rounds, best of each side: the shared machine's noise only ever
// slows a run down. Round by round over all the runs, so that a slow spell
// hits every preset rather than the last one.
for (let r = 0; r < (alternated ? rounds : 1); r++) {
  for (const { row } of plans) {
    const e = timeEngine(row.preset, row.batch, row.requested);
    row.config = e.config;
    row.device = e.device;
    row.precision = e.precision;
    row.bf16Kernel = e.precision === 'bf16' ? info.cpu.bf16Kernel : null;
    row.engine.imagesPerSecond = best(row.engine.imagesPerSecond, e.imagesPerSecond);
    row.engine.evalImagesPerSecond = best(row.engine.evalImagesPerSecond, e.evalImagesPerSecond);
    row.engine.msPerStep = 1000 * (row.batch / row.engine.imagesPerSecond);
    if (args.compare) {
      const t = timeTorch(row.preset, row.batch, row.precision === 'bf16');
      row.pytorch ??= { version: t.version, bf16: t.bf16, channelsLast: t.channelsLast };
      row.pytorch.imagesPerSecond = best(row.pytorch.imagesPerSecond, t.imagesPerSecond);
      row.pytorch.evalImagesPerSecond = best(row.pytorch.evalImagesPerSecond, t.evalImagesPerSecond);
    }
  }
}
for (const { row, pytorch, note } of plans) {
  if (row.pytorch) {
    row.ratio = row.engine.imagesPerSecond / row.pytorch.imagesPerSecond;
    row.evalRatio = row.engine.evalImagesPerSecond / row.pytorch.evalImagesPerSecond;
  }
  if (pytorch) Object.assign(row, { pytorchH100: pytorch, ratioH100: row.engine.imagesPerSecond / pytorch, note });
}

const rows = plans.map(({ row }) => row);
/** 'fp32', 'bf16 (emulated)' where bf16 ran on the fp32 kernels, 'fp32 (auto)' for an auto that chose fp32 */
function precisionText(r) {
  const kernel = r.bf16Kernel === 'emulated' ? ' (emulated)' : '';
  return `${r.precision}${kernel}${r.requested === 'auto' ? ' (auto)' : ''}`;
}
if (args.json) console.log(JSON.stringify(rows, null, 2));
else if (args.compare) {
  console.log(`${cpuName}, ${info.cpu.threads} threads; best of ${rounds} alternated rounds of ${seconds} s each side`);
  console.log(
    '| preset | batch | precision | engine train img/s | PyTorch train img/s | ratio | engine eval img/s | PyTorch eval img/s | eval ratio |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.preset} | ${r.batch} | ${precisionText(r)} vs ${r.pytorch.bf16 ? 'bf16 autocast' : 'fp32'}${r.pytorch.channelsLast ? ' channels_last' : ''} | ` +
        `${r.engine.imagesPerSecond.toFixed(1)} | ${r.pytorch.imagesPerSecond.toFixed(1)} | ` +
        `${r.ratio.toFixed(2)}x | ${r.engine.evalImagesPerSecond.toFixed(0)} | ${r.pytorch.evalImagesPerSecond.toFixed(0)} | ` +
        `${r.evalRatio.toFixed(2)}x |`,
    );
  console.log(`PyTorch ${rows[0]?.pytorch.version} running ${TORCH_SCRIPT}`);
} else
  for (const r of rows) {
    const shape = `${r.config.inputSize}x${r.config.inputSize}x${r.config.channels}`;
    console.log(
      `${r.preset.padEnd(8)} ${precisionText(r).padEnd(14)} ${shape.padEnd(10)} width ${r.config.width} r ${r.config.middleBlocks} batch ${r.batch}: ` +
        `${r.engine.msPerStep.toFixed(1)} ms/step, ${r.engine.imagesPerSecond.toFixed(1)} images/s` +
        (r.engine.evalImagesPerSecond ? `, eval ${r.engine.evalImagesPerSecond.toFixed(0)} images/s` : '') +
        ` (${r.where})` +
        (r.pytorchH100 ? `; PyTorch on an H100: ${r.pytorchH100} images/s, ratio ${r.ratioH100.toFixed(2)}` : ''),
    );
  }
