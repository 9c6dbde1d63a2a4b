#!/usr/bin/env node
// Training throughput of the engine: images/s of full steps (forward,
// cross-entropy + Ad-Corre, backward, Adam) on random inputs.
//   node bench/train.js [--json] [--runs compact:64,fer-48:64] [--steps 5] [--device cpu|cuda]
//   node bench/train.js --device cuda --table    # issue #4's configurations, beside PyTorch on an H100
import { parseArgs } from 'node:util';
import { backendInfo, Engine, PRESETS } from '../dist/index.js';

// PyTorch 2.11 on an H100 (issue #4): fp32 parameters, cuDNN's default TF32
// convolutions, Adam, this loss; images/s. Only comparable with a run on the same kind of card.
const TABLE = [
  { run: 'paper:50', pytorch: 895, note: '544 in strict fp32' },
  { run: 'fer-48:256', pytorch: 8216 },
  { run: 'compact:256', pytorch: 14469 },
];

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    runs: { type: 'string', default: 'compact:64' },
    steps: { type: 'string', default: '5' },
    device: { type: 'string', default: 'cpu' },
    table: { type: 'boolean', default: false },
  },
});
const runs = args.table ? TABLE : args.runs.split(',').map((run) => ({ run }));
const info = backendInfo();
const where = args.device === 'cpu' ? `CPU, ${info.cpu.threads} threads` : (info.cuda.devices[0]?.name ?? 'CUDA');

const rows = [];
for (const { run, pytorch, note } of runs) {
  const [preset, batchText] = run.split(':');
  const config = PRESETS[preset];
  if (!config) throw new Error(`Unknown preset ${preset} (${Object.keys(PRESETS).join(', ')})`);
  const batch = Number(batchText ?? 64);
  const engine = Engine.create(config, { maxBatch: batch, seed: 1, device: args.device });
  const images = Float32Array.from({ length: batch * config.channels * config.inputSize ** 2 }, () => Math.random());
  const labels = Int32Array.from({ length: batch }, (_, i) => i % config.classes);
  engine.trainStep(images, labels, { lr: 1e-4 }); // warm-up
  const times = [];
  for (let s = 0; s < Number(args.steps); s++) {
    const t0 = performance.now();
    engine.trainStep(images, labels, { lr: 1e-4, lambdaCE: 50, seed: s });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1];
  const imagesPerSecond = (batch * 1000) / ms;
  rows.push({
    preset,
    config,
    batch,
    device: engine.device,
    where,
    msPerStep: ms,
    imagesPerSecond,
    ...(pytorch ? { pytorchH100: pytorch, ratio: imagesPerSecond / pytorch, ...(note ? { note } : {}) } : {}),
  });
}
if (args.json) console.log(JSON.stringify(rows, null, 2));
else
  for (const r of rows) {
    const shape = `${r.config.inputSize}x${r.config.inputSize}x${r.config.channels}`;
    console.log(
      `${r.preset.padEnd(8)} ${shape.padEnd(10)} width ${r.config.width} r ${r.config.middleBlocks} batch ${r.batch}: ` +
        `${r.msPerStep.toFixed(1)} ms/step, ${r.imagesPerSecond.toFixed(1)} images/s (${r.where})` +
        (r.pytorchH100 ? `; PyTorch on an H100: ${r.pytorchH100} images/s, ratio ${r.ratio.toFixed(2)}` : ''),
    );
  }
