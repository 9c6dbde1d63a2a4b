// Golden vectors from an independent float64 implementation (../shared).
// Tolerances (issue #2): loss parts relative error <= 1e-5; gradient
// ||g - g_ref|| / ||g_ref|| <= 1e-4.
import test from 'ava';
import { adCorreLoss, adCorreLossAsync } from 'adcorre-native';
import { relativeError, relativeNormError } from './helpers/compare.js';
import { referenceLoss } from './helpers/reference.js';
import { loadGolden } from './helpers/shared.js';

const { cases, reason } = loadGolden();

if (!cases) {
  test.skip(`golden vectors (skipped: ${reason})`, () => {});
} else {
  for (const c of cases) {
    const embeddings = Float32Array.from(c.embeddings);
    const options = { k: c.k, n: c.n, d: c.d, numClasses: c.numClasses, classAccuracy: c.classAccuracy };

    test(`golden '${c.note}' (k=${c.k} n=${c.n} d=${c.d} C=${c.numClasses}): native CPU`, (t) => {
      const r = adCorreLoss(embeddings, c.labels, { ...options, grad: true, device: 'cpu' });
      for (const part of ['fd', 'md', 'ed']) {
        t.true(relativeError(r[part], c[part]) <= 1e-5, `${part}: ${r[part]} vs golden ${c[part]}`);
      }
      t.true(relativeError(r.loss, c.fd + c.md + c.ed) <= 1e-5);
      const err = relativeNormError(r.grad, c.grad);
      t.true(err <= 1e-4, `gradient relative error ${err}`);
    });

    test(`golden '${c.note}': async equals sync`, async (t) => {
      const sync = adCorreLoss(embeddings, c.labels, { ...options, grad: true, device: 'cpu' });
      const asyncResult = await adCorreLossAsync(embeddings, c.labels, { ...options, grad: true, device: 'cpu' });
      t.deepEqual(asyncResult, sync);
    });

    test(`golden '${c.note}': the test's own float64 reference agrees`, (t) => {
      const r = referenceLoss(embeddings, c.labels, options);
      for (const part of ['fd', 'md', 'ed']) {
        t.true(relativeError(r[part], c[part]) <= 1e-9, `${part}: ${r[part]} vs golden ${c[part]}`);
      }
      t.true(relativeNormError(r.grad, c.grad) <= 1e-7);
    });
  }
}
