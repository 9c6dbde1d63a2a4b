// The CUDA kernels against the CPU kernels on the same fresh random inputs
// (odd sizes, absent classes, one class, k = 1, n = 1, d = 1), against the
// golden vectors, run to run determinism, and the async path. Runs only where
// a GPU is usable (npm run test:gpu on the device machine); elsewhere each
// test is reported as skipped, with the reason.
// Tolerances: loss parts relative error <= 1e-5 against the CPU (float32
// kernels with double reductions), gradient ||g - g_cpu|| / ||g_cpu|| <= 1e-4.
import test from 'ava';
import { adCorreLoss, adCorreLossAsync, backendInfo } from 'adcorre-native';
import { relativeError, relativeNormError } from './helpers/compare.js';
import { randomCase, rng } from './helpers/random.js';
import { loadGolden } from './helpers/shared.js';

const info = backendInfo();
const why = info.cuda.usable ? '' : ` (skipped: no usable CUDA GPU: ${info.cuda.error ?? 'none found'})`;
const gpuTest = info.cuda.usable ? test : test.skip;

if (info.cuda.usable) {
  test('CUDA devices are reported', (t) => {
    t.true(info.cuda.compiled);
    t.true(info.cuda.devices.length > 0);
    t.log(info.cuda.devices.map((dev) => `${dev.name} (sm ${dev.computeCapability})`).join(', '));
  });
}

function compare(t, c, weights = { fd: 1, md: 1, ed: 1 }) {
  const opts = {
    k: c.k,
    n: c.n,
    d: c.d,
    numClasses: c.numClasses,
    classAccuracy: c.classAccuracy,
    weights,
    grad: true,
  };
  const cpu = adCorreLoss(c.embeddings, c.labels, { ...opts, device: 'cpu' });
  const gpu = adCorreLoss(c.embeddings, c.labels, { ...opts, device: 'cuda' });
  t.is(gpu.device, 'cuda');
  for (const part of ['loss', 'fd', 'md', 'ed']) {
    const err = relativeError(gpu[part], cpu[part]);
    t.true(err <= 1e-5, `${part}: cuda ${gpu[part]} vs cpu ${cpu[part]} (relative error ${err})`);
  }
  const err = relativeNormError(gpu.grad, cpu.grad);
  t.true(err <= 1e-4, `gradient relative error ${err}`);
  t.true(gpu.grad.every(Number.isFinite));
  return gpu;
}

const shapes = [
  { k: 1, n: 1, d: 1, numClasses: 2 },
  { k: 1, n: 2, d: 3, numClasses: 2 },
  { k: 7, n: 50, d: 256, numClasses: 7 },
  { k: 10, n: 50, d: 256, numClasses: 7 },
  { k: 3, n: 33, d: 31, numClasses: 5, classes: [1, 4] },
  { k: 5, n: 17, d: 257, numClasses: 8, classes: [6] },
  { k: 2, n: 300, d: 600, numClasses: 8 },
  { k: 7, n: 1024, d: 255, numClasses: 7, withAccuracy: false },
  { k: 7, n: 4096, d: 256, numClasses: 7 },
  { k: 4, n: 129, d: 1000, numClasses: 300 }, // many classes, most absent
];
const r = rng(9);
for (let i = 0; i < 10; i++) {
  shapes.push({ k: r.int(1, 10), n: r.int(1, 300), d: r.int(1, 600), numClasses: r.int(2, 8) });
}

for (const [i, shape] of shapes.entries()) {
  gpuTest(`CUDA = CPU: k=${shape.k} n=${shape.n} d=${shape.d} C=${shape.numClasses}${why}`, (t) => {
    compare(t, randomCase(5000 + i, shape), { fd: 1, md: 0.5 + (i % 3) * 0.5, ed: 1.25 });
  });
}

gpuTest(`CUDA is deterministic run to run${why}`, (t) => {
  const c = randomCase(77, { k: 7, n: 1000, d: 256, numClasses: 7 });
  const opts = { k: 7, d: 256, numClasses: 7, classAccuracy: c.classAccuracy, grad: true, device: 'cuda' };
  t.deepEqual(adCorreLoss(c.embeddings, c.labels, opts), adCorreLoss(c.embeddings, c.labels, opts));
});

gpuTest(`CUDA async equals sync, and shapes can change between calls${why}`, async (t) => {
  for (const shape of [
    { k: 7, n: 50, d: 256, numClasses: 7 },
    { k: 2, n: 3000, d: 64, numClasses: 3 },
    { k: 3, n: 5, d: 7, numClasses: 2 },
  ]) {
    const c = randomCase(88, shape);
    const opts = { ...shape, classAccuracy: c.classAccuracy, grad: true, device: 'cuda' };
    t.deepEqual(await adCorreLossAsync(c.embeddings, c.labels, opts), adCorreLoss(c.embeddings, c.labels, opts));
  }
});

gpuTest(`CUDA forward without gradient${why}`, (t) => {
  const c = randomCase(99, { k: 7, n: 50, d: 256, numClasses: 7 });
  const opts = { k: 7, d: 256, numClasses: 7, classAccuracy: c.classAccuracy };
  const gpu = adCorreLoss(c.embeddings, c.labels, { ...opts, device: 'cuda' });
  const cpu = adCorreLoss(c.embeddings, c.labels, { ...opts, device: 'cpu' });
  t.is(gpu.grad, undefined);
  t.true(relativeError(gpu.loss, cpu.loss) <= 1e-5);
});

const { cases, reason } = loadGolden();
for (const c of cases ?? []) {
  gpuTest(`CUDA golden '${c.note}'${why}`, (t) => {
    const g = adCorreLoss(Float32Array.from(c.embeddings), c.labels, {
      k: c.k,
      d: c.d,
      numClasses: c.numClasses,
      classAccuracy: c.classAccuracy,
      grad: true,
      device: 'cuda',
    });
    for (const part of ['fd', 'md', 'ed']) t.true(relativeError(g[part], c[part]) <= 1e-5, `${part}`);
    t.true(relativeNormError(g.grad, c.grad) <= 1e-4);
  });
}
if (!cases) test.skip(`CUDA golden vectors (skipped: ${reason})`, () => {});
