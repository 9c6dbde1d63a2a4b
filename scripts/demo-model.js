#!/usr/bin/env node
// Writes an UNTRAINED model (random weights) of a given preset, for trying the
// inference path and for benchmarks: never use its predictions as results.
//   node scripts/demo-model.js <out.onnx> [preset=compact] [seed=0]
import { writeFileSync } from 'node:fs';
import { buildArchitecture, exportOnnx, initWeights, labelNames, PRESETS } from '../dist/index.js';

const [out, preset = 'compact', seed = '0'] = process.argv.slice(2);
if (!out || !PRESETS[preset]) {
  console.error(`usage: node scripts/demo-model.js <out.onnx> [${Object.keys(PRESETS).join('|')}] [seed]`);
  process.exit(2);
}
const config = PRESETS[preset];
writeFileSync(
  out,
  exportOnnx(config, initWeights(buildArchitecture(config), Number(seed)), { labels: labelNames(config.classes) }),
);
console.log(`wrote ${out}: untrained ${preset} model (${JSON.stringify(config)})`);
