#!/usr/bin/env node
// Forward + backward of the Ad-Corre loss: plain JavaScript (the definition,
// float32), the native CPU kernels and the CUDA kernels, in one run.
//
//   node bench/loss.js [--json] [--quick] [--js-all] [--min-time ms]
//
// Times are medians. "native cpu" and "cuda e2e" are end to end from JS with
// host arrays (validation, copies and all), writing the gradient into a reused
// buffer (gradOut) as a training loop would; "cuda gpu" is GPU time from CUDA
// events with the inputs on the device, launched kernel by kernel, and "cuda
// graph" the same replayed as a CUDA graph. GFLOP/s counts 6*k*n^2*d, the
// FLOPs of the Gram-matrix formulation; the kernels here do O(k*n*d) work
// (the class-factorised form), so for them it is an effective rate.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { helpOption, printUsage } from './usage.js';
import { adCorreLoss, backendInfo } from '../dist/index.js';
import { native } from '../dist/native.js';
import { randomCase } from '../test/helpers/random.js';
// the plain-JavaScript baseline is the tests' own definition of the loss (float64, explicit n x n
// correlations, O(k n^2 d)): one definition kept, and the one the tests hold the kernels to
import { referenceLoss as plainJsLoss } from '../test/helpers/reference.js';

const { values: args } = parseArgs({
  options: {
    ...helpOption,
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'js-all': { type: 'boolean', default: false },
    'min-time': { type: 'string', default: '1000' },
  },
});
if (args.help) {
  printUsage(import.meta.url);
  process.exit(0);
}
const minTime = Number(args['min-time']);

const sizes = [
  { name: 'paper', k: 7, n: 50, d: 256 },
  { name: 'reference code', k: 10, n: 50, d: 256 },
  { name: 'N=256', k: 7, n: 256, d: 256 },
  { name: 'N=1024', k: 7, n: 1024, d: 256 },
  { name: 'N=4096', k: 7, n: 4096, d: 256 },
].slice(0, args.quick ? 3 : undefined);
const numClasses = 7;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Runs fn until minTime ms have passed (at least 3 times, at most 2000), returns the median in us.
function timeIt(fn, { maxReps = 2000, minReps = 3 } = {}) {
  const warm = performance.now();
  do fn();
  while (performance.now() - warm < Math.min(200, minTime / 5)); // JIT, caches, thread pool
  const times = [];
  const start = performance.now();
  while (times.length < minReps || (performance.now() - start < minTime && times.length < maxReps)) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) * 1000);
  }
  return median(times);
}

function cpuModel() {
  const fallback = { model: cpus()[0]?.model ?? 'unknown', avx2: false, avx512: false, mhz: cpus()[0]?.speed ?? 0 };
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const flags = ` ${/flags\s*:(.*)/.exec(text)?.[1] ?? ''} `;
    const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(text)?.[1] ?? fallback.mhz);
    return { ...fallback, avx2: flags.includes(' avx2 '), avx512: flags.includes(' avx512f '), mhz };
  } catch {
    return fallback;
  }
}

const info = backendInfo();
const cpu = cpuModel();
// fp32 FMA peak: 2 FMA pipes of 256 bits (AVX2 and Zen 4's AVX-512 alike), 2 FLOPs each, per thread.
const lanes = cpu.avx2 || cpu.avx512 ? 8 : 4;
const cpuPeak = (info.cpu.threads * cpu.mhz * 1e6 * lanes * 2 * 2) / 1e9;
const rows = [];
let jsPerFlop = 0;

for (const size of sizes) {
  const c = randomCase(2024, { ...size, numClasses });
  const opts = { k: size.k, n: size.n, d: size.d, numClasses, classAccuracy: c.classAccuracy, grad: true };
  const flops = 6 * size.k * size.n * size.n * size.d;
  const add = (backend, us, note = '') =>
    rows.push({
      size: size.name,
      k: size.k,
      n: size.n,
      d: size.d,
      backend,
      us,
      gflops: us ? flops / us / 1e3 : null,
      note,
    });

  const gradOut = new Float32Array(size.k * size.n * size.d);
  const cpuResult = adCorreLoss(c.embeddings, c.labels, { ...opts, device: 'cpu' });
  add(
    'native cpu',
    timeIt(() => adCorreLoss(c.embeddings, c.labels, { ...opts, gradOut, device: 'cpu' })),
  );

  const jsEstimate = (jsPerFlop * flops) / 1e3; // us
  if (args['js-all'] || jsPerFlop === 0 || jsEstimate < 20e6) {
    const js = plainJsLoss(c.embeddings, c.labels, opts);
    const err = Math.abs(js.loss - cpuResult.loss) / Math.abs(cpuResult.loss);
    if (!(err < 1e-4))
      throw new Error(`plain JS disagrees with native at ${size.name}: ${js.loss} vs ${cpuResult.loss}`);
    const us = timeIt(() => plainJsLoss(c.embeddings, c.labels, opts), { minReps: 1, maxReps: 50 });
    jsPerFlop = (us * 1e3) / flops;
    add('plain js', us);
  } else {
    add('plain js', null, `skipped: about ${(jsEstimate / 1e6).toFixed(0)} s per run (--js-all runs it)`);
  }

  if (info.cuda.usable) {
    const gpu = adCorreLoss(c.embeddings, c.labels, { ...opts, device: 'cuda' });
    const err = Math.abs(gpu.loss - cpuResult.loss) / Math.abs(cpuResult.loss);
    if (!(err < 1e-5)) throw new Error(`CUDA disagrees with CPU at ${size.name}: ${gpu.loss} vs ${cpuResult.loss}`);
    add(
      'cuda e2e',
      timeIt(() => adCorreLoss(c.embeddings, c.labels, { ...opts, gradOut, device: 'cuda' })),
    );
    const request = {
      embeddings: c.embeddings,
      labels: c.labels,
      classAccuracy: c.classAccuracy,
      k: size.k,
      n: size.n,
      d: size.d,
      numClasses,
      weights: new Float64Array([1, 1, 1]),
      grad: true,
      device: 'cuda',
    };
    add('cuda gpu', median(native().cudaTime(request, 200, false)));
    add('cuda graph', median(native().cudaTime(request, 200, true)));
  }
}

// Ratios within this run, per size.
for (const row of rows) {
  const same = (b) => rows.find((r) => r.size === row.size && r.backend === b)?.us;
  row.vsPlainJs = row.us && same('plain js') ? same('plain js') / row.us : null;
  row.vsNativeCpu = row.us && same('native cpu') ? same('native cpu') / row.us : null;
}

const machine = {
  cpu: cpu.model,
  threads: info.cpu.threads,
  cpuPeakGflops: Math.round(cpuPeak),
  gpu: info.cuda.usable ? info.cuda.devices.map((dv) => dv.name).join(', ') : null,
  cudaCompiled: info.cuda.compiled,
  node: process.version,
};

if (args.json) {
  console.log(JSON.stringify({ machine, rows }, null, 2));
} else {
  console.log(
    `CPU: ${machine.cpu} at ${cpu.mhz ? `${Math.round(cpu.mhz)} MHz` : 'unknown MHz'}, ${machine.threads} threads ` +
      `(fp32 FMA peak about ${machine.cpuPeakGflops || '?'} GFLOP/s)`,
  );
  console.log(`GPU: ${machine.gpu ?? `none usable (${info.cuda.error})`}`);
  console.log('GFLOP/s = 6*k*n^2*d / time (effective for the O(knd) kernels)\n');
  const fmt = (x, digits = 1) => (x === null || x === undefined ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
  const header = ['size', 'k', 'n', 'd', 'backend', 'median us', 'GFLOP/s', 'x plain js', 'x native cpu'];
  const table = rows.map((r) =>
    [
      r.size,
      r.k,
      r.n,
      r.d,
      r.backend,
      r.us === null ? r.note : fmt(r.us),
      fmt(r.gflops),
      fmt(r.vsPlainJs),
      fmt(r.vsNativeCpu, 2),
    ].map(String),
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...table.filter((r) => i < 6 || r[5].length < 20).map((r) => r[i].length)),
  );
  const line = (cells) =>
    cells.map((cell, i) => (i < 5 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(line(header));
  for (const r of table) console.log(r[5].length >= 20 ? `${line(r.slice(0, 5))}  ${r[5]}` : line(r));
}
