#!/usr/bin/env node
// Training throughput of the engine: images/s of full steps (forward,
// cross-entropy + Ad-Corre, backward, Adam) on random inputs.
//   node bench/train.js [--json] [--presets compact,fer-48] [--batch 64] [--steps 5]
import { parseArgs } from 'node:util';
import { Engine, PRESETS } from '../dist/index.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    presets: { type: 'string', default: 'compact' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '5' },
  },
});
const batch = Number(args.batch);
const rows = [];
for (const preset of args.presets.split(',')) {
  const config = PRESETS[preset];
  const engine = Engine.create(config, { maxBatch: batch, seed: 1 });
  const images = Float32Array.from({ length: batch * config.channels * config.inputSize ** 2 }, () => Math.random());
  const labels = Int32Array.from({ length: batch }, (_, i) => i % config.classes);
  engine.trainStep(images, labels, { lr: 1e-4 });  // warm-up
  const times = [];
  for (let s = 0; s < Number(args.steps); s++) {
    const t0 = performance.now();
    engine.trainStep(images, labels, { lr: 1e-4, seed: s });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1];
  rows.push({ preset, config, batch, msPerStep: ms, imagesPerSecond: (batch * 1000) / ms });
}
if (args.json) console.log(JSON.stringify(rows, null, 2));
else for (const r of rows) {
  console.log(`${r.preset.padEnd(8)} ${`${r.config.inputSize}x${r.config.inputSize}x${r.config.channels}`.padEnd(10)} width ${r.config.width} r ${r.config.middleBlocks} ` +
    `batch ${r.batch}: ${r.msPerStep.toFixed(0)} ms/step, ${r.imagesPerSecond.toFixed(1)} images/s (CPU)`);
}
