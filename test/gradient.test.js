// Finite differences. The float64 reference is checked against central
// differences of its own forward (relative error <= 1e-5), then the native
// gradient against central differences of the native float32 forward on tiny
// cases (h = 1e-2 in float32 inputs; relative error <= 2e-2: the forward is
// exact to ~1e-7, so this bounds truncation plus rounding).
import test from 'ava';
import { adCorreLoss } from 'adcorre-native';
import { relativeNormError } from './helpers/compare.js';
import { randomCase } from './helpers/random.js';
import { referenceLoss } from './helpers/reference.js';

const tiny = [
  { k: 1, n: 2, d: 3, numClasses: 2 }, // d = 2 is degenerate: every correlation is +-1 and the gradient vanishes
  { k: 2, n: 3, d: 1, numClasses: 2 },
  { k: 3, n: 5, d: 4, numClasses: 3 },
  { k: 2, n: 6, d: 5, numClasses: 4, classes: [1, 3] }, // absent classes
  { k: 3, n: 4, d: 3, numClasses: 3, classes: [2] }, // one class
  { k: 2, n: 7, d: 3, numClasses: 3, withAccuracy: false },
];
const weights = { fd: 1.3, md: 0.7, ed: 1.1 };

for (const [i, shape] of tiny.entries()) {
  const name = `k=${shape.k} n=${shape.n} d=${shape.d} C=${shape.numClasses}${shape.classes ? ` classes=${shape.classes}` : ''}`;

  test(`reference gradient = finite differences of the reference (${name})`, (t) => {
    const c = randomCase(100 + i, shape);
    const E = Float64Array.from(c.embeddings);
    const opts = { ...c, weights };
    const { grad } = referenceLoss(E, c.labels, opts);
    const h = 1e-6;
    const fdGrad = new Float64Array(E.length);
    for (let p = 0; p < E.length; p++) {
      const keep = E[p];
      E[p] = keep + h;
      const up = referenceLoss(E, c.labels, opts).loss;
      E[p] = keep - h;
      const down = referenceLoss(E, c.labels, opts).loss;
      E[p] = keep;
      fdGrad[p] = (up - down) / (2 * h);
    }
    const err = relativeNormError(grad, fdGrad);
    t.true(err <= 1e-5, `relative error ${err}`);
  });

  test(`native gradient = finite differences of the native forward (${name})`, (t) => {
    const c = randomCase(200 + i, shape);
    const opts = {
      k: c.k,
      n: c.n,
      d: c.d,
      numClasses: c.numClasses,
      classAccuracy: c.classAccuracy,
      weights,
      device: 'cpu',
    };
    const { grad } = adCorreLoss(c.embeddings, c.labels, { ...opts, grad: true });
    const E = Float32Array.from(c.embeddings);
    const fdGrad = new Float64Array(E.length);
    for (let p = 0; p < E.length; p++) {
      const keep = E[p];
      E[p] = keep + 1e-2;
      const upAt = E[p];
      const up = adCorreLoss(E, c.labels, opts).loss;
      E[p] = keep - 1e-2;
      const downAt = E[p];
      const down = adCorreLoss(E, c.labels, opts).loss;
      E[p] = keep;
      fdGrad[p] = (up - down) / (upAt - downAt); // the float32 step actually taken
    }
    const err = relativeNormError(grad, fdGrad);
    t.true(err <= 2e-2, `relative error ${err}`);
  });
}
