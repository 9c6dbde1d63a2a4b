// The native CPU kernels against the float64 reference on random shapes:
// k in 1..10, n in 1..300 (1 and 2 included), d in 1..600 (1 and odd sizes),
// C in 2..8, absent classes and a single class. Tolerances: loss parts
// relative error <= 1e-5, gradient ||g - g_ref|| / ||g_ref|| <= 1e-4.
import test from 'ava';
import { adCorreLoss } from 'adcorre-native';
import { relativeError, relativeNormError } from './helpers/compare.js';
import { randomCase, rng } from './helpers/random.js';
import { referenceLoss } from './helpers/reference.js';

const fixed = [
  { k: 1, n: 1, d: 1, numClasses: 2 },
  { k: 1, n: 2, d: 1, numClasses: 2 },
  { k: 2, n: 2, d: 3, numClasses: 2 },
  { k: 7, n: 1, d: 17, numClasses: 7 },
  { k: 10, n: 2, d: 1, numClasses: 8 },
  { k: 3, n: 300, d: 7, numClasses: 8 },
  { k: 2, n: 40, d: 600, numClasses: 3 },
  { k: 7, n: 50, d: 256, numClasses: 7 }, // the paper's shape
  { k: 4, n: 31, d: 33, numClasses: 8, classes: [0, 5, 7] }, // absent classes
  { k: 5, n: 23, d: 19, numClasses: 6, classes: [4] }, // one class
  { k: 3, n: 64, d: 129, numClasses: 5, withAccuracy: false }, // uniform attention
];

const r = rng(42);
const drawn = Array.from({ length: 12 }, () => {
  const numClasses = r.int(2, 8);
  const present = r.int(1, numClasses);
  const classes = Array.from({ length: numClasses }, (_, c) => c)
    .sort(() => r.next() - 0.5)
    .slice(0, present);
  return { k: r.int(1, 10), n: r.int(1, 300), d: r.int(1, 600), numClasses, classes };
});

for (const [i, shape] of [...fixed, ...drawn].entries()) {
  const label =
    `k=${shape.k} n=${shape.n} d=${shape.d} C=${shape.numClasses}` +
    (shape.classes ? ` present=[${shape.classes}]` : '') +
    (shape.withAccuracy === false ? ' uniform' : '');
  test(`native CPU = float64 reference: ${label}`, (t) => {
    const c = randomCase(1000 + i, shape);
    const weights = { fd: 1, md: 0.5 + (i % 3) * 0.25, ed: 1.5 };
    const opts = { k: c.k, n: c.n, d: c.d, numClasses: c.numClasses, classAccuracy: c.classAccuracy, weights };
    const got = adCorreLoss(c.embeddings, c.labels, { ...opts, grad: true, device: 'cpu' });
    const ref = referenceLoss(c.embeddings, Array.from(c.labels), opts);
    for (const part of ['loss', 'fd', 'md', 'ed']) {
      const err = relativeError(got[part], ref[part]);
      t.true(err <= 1e-5, `${part}: ${got[part]} vs ${ref[part]} (relative error ${err})`);
    }
    const err = relativeNormError(got.grad, ref.grad);
    t.true(err <= 1e-4, `gradient relative error ${err}`);
  });
}

test('uniform attention equals classAccuracy of all ones', (t) => {
  const c = randomCase(7, { k: 3, n: 20, d: 9, numClasses: 4 });
  const base = { k: 3, d: 9, numClasses: 4, grad: true, device: 'cpu' };
  const omitted = adCorreLoss(c.embeddings, c.labels, base);
  const ones = adCorreLoss(c.embeddings, c.labels, { ...base, classAccuracy: [1, 1, 1, 1] });
  t.deepEqual(omitted, ones);
});

test('weights scale each part; zero weights give a zero gradient', (t) => {
  const c = randomCase(8, { k: 3, n: 20, d: 9, numClasses: 4 });
  const base = { k: 3, d: 9, numClasses: 4, classAccuracy: c.classAccuracy, grad: true, device: 'cpu' };
  const one = adCorreLoss(c.embeddings, c.labels, base);
  const w = adCorreLoss(c.embeddings, c.labels, { ...base, weights: { fd: 2, md: 0, ed: 0.5 } });
  t.is(w.fd, one.fd);
  t.true(Math.abs(w.loss - (2 * one.fd + 0.5 * one.ed)) <= 1e-12);
  const zero = adCorreLoss(c.embeddings, c.labels, { ...base, weights: { fd: 0, md: 0, ed: 0 } });
  t.is(zero.loss, 0);
  t.true(zero.grad.every((g) => g === 0));
});

test('grad is absent unless asked for; result names the device', (t) => {
  const c = randomCase(9, { k: 2, n: 5, d: 4, numClasses: 2 });
  const r = adCorreLoss(c.embeddings, c.labels, { k: 2, d: 4, numClasses: 2, device: 'cpu' });
  t.is(r.grad, undefined);
  t.is(r.device, 'cpu');
});

test('number[] and Float64Array embeddings give the Float32Array result', (t) => {
  const c = randomCase(10, { k: 2, n: 6, d: 5, numClasses: 3 });
  const opts = { k: 2, d: 5, numClasses: 3, grad: true, device: 'cpu' };
  const f32 = adCorreLoss(c.embeddings, c.labels, opts);
  t.deepEqual(adCorreLoss(Array.from(c.embeddings), Array.from(c.labels), opts), f32);
  t.deepEqual(adCorreLoss(Float64Array.from(c.embeddings), Uint8Array.from(c.labels), opts), f32);
});

test('the result does not depend on the number of CPU threads', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const script = `
    import { adCorreLoss } from './dist/index.js';
    import { randomCase } from './test/helpers/random.js';
    const c = randomCase(11, { k: 7, n: 512, d: 256, numClasses: 7 });
    const r = adCorreLoss(c.embeddings, c.labels, { k: 7, d: 256, numClasses: 7, classAccuracy: c.classAccuracy, grad: true, device: 'cpu' });
    let h = 0; for (const g of r.grad) h = (h * 31 + Math.round(g * 1e12)) % 1000000007;
    console.log(JSON.stringify([r.loss, h]));`;
  const run = (threads) =>
    execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, ADCORRE_NUM_THREADS: String(threads) },
      cwd: new URL('..', import.meta.url),
    }).toString();
  t.is(run(1), run(3));
});

test('gradOut receives the gradient and is returned as grad', (t) => {
  const c = randomCase(12, { k: 3, n: 10, d: 7, numClasses: 3 });
  const opts = { k: 3, d: 7, numClasses: 3, classAccuracy: c.classAccuracy, device: 'cpu' };
  const fresh = adCorreLoss(c.embeddings, c.labels, { ...opts, grad: true });
  const out = new Float32Array(3 * 10 * 7).fill(123);
  const r = adCorreLoss(c.embeddings, c.labels, { ...opts, gradOut: out });
  t.is(r.grad, out);
  t.deepEqual(out, fresh.grad);
});
