// Bad input: each case throws a TypeError or RangeError that names the
// parameter, what was expected and what was received; never a crash. The
// async variant rejects with the same error. The native module itself is also
// called directly with inconsistent arguments to show it cannot read out of bounds.
import { createRequire } from 'node:module';
import test from 'ava';
import { adCorreLoss, adCorreLossAsync, backendInfo } from 'adcorre-native';

const require = createRequire(import.meta.url);
const k = 2,
  n = 3,
  d = 4,
  numClasses = 3;
const E = () => Float32Array.from({ length: k * n * d }, (_, i) => Math.sin(i));
const labels = [0, 1, 2];
const ok = { k, d, numClasses };

const cases = [
  [
    'k not an integer',
    () => [E(), labels, { ...ok, k: 1.5 }],
    RangeError,
    /Expected positive integer for options\.k but received 1\.5 of type number/,
  ],
  ['k zero', () => [E(), labels, { ...ok, k: 0 }], RangeError, /options\.k.*received 0/],
  [
    'k a string',
    () => [E(), labels, { ...ok, k: '2' }],
    TypeError,
    /Expected positive integer for options\.k but received '2' of type string/,
  ],
  ['d negative', () => [E(), labels, { ...ok, d: -4 }], RangeError, /options\.d/],
  ['n missing d', () => [E(), labels, { k, numClasses }], TypeError, /options\.d but received undefined/],
  [
    'numClasses NaN',
    () => [E(), labels, { ...ok, numClasses: Number.NaN }],
    RangeError,
    /options\.numClasses but received NaN/,
  ],
  [
    'n disagrees with labels',
    () => [E(), labels, { ...ok, n: 4 }],
    RangeError,
    /Expected length n = 4 for labels but received length 3/,
  ],
  ['no labels', () => [new Float32Array(0), [], ok], RangeError, /labels/],
  [
    'embeddings too short',
    () => [E().subarray(1), labels, ok],
    RangeError,
    /Expected length k\*n\*d = 2\*3\*4 = 24 for embeddings but received length 23/,
  ],
  [
    'embeddings not an array',
    () => ['1,2,3', labels, ok],
    TypeError,
    /for embeddings but received '1,2,3' of type string/,
  ],
  [
    'embeddings with NaN',
    () => {
      const e = E();
      e[13] = Number.NaN;
      return [e, labels, ok];
    },
    RangeError,
    /Expected finite numbers for embeddings but received NaN at index 13 \(head 1, sample 0, dim 1\)/,
  ],
  [
    'embeddings with Infinity',
    () => {
      const e = E();
      e[23] = Number.POSITIVE_INFINITY;
      return [e, labels, ok];
    },
    RangeError,
    /received Infinity at index 23/,
  ],
  [
    'label out of range',
    () => [E(), [0, 3, 1], ok],
    RangeError,
    /Expected integer in \[0, 3\) for labels\[1\] but received 3 of type number/,
  ],
  ['label negative', () => [E(), Int32Array.of(0, -1, 1), ok], RangeError, /labels\[1\]/],
  ['label fractional', () => [E(), [0, 1.5, 1], ok], RangeError, /labels\[1\] but received 1\.5/],
  ['label not a number', () => [E(), [0, '1', 1], ok], TypeError, /labels\[1\] but received '1' of type string/],
  ['labels not an array', () => [E(), 7, ok], TypeError, /for labels but received 7 of type number/],
  [
    'classAccuracy above 1',
    () => [E(), labels, { ...ok, classAccuracy: [0.5, 1.2, 0] }],
    RangeError,
    /Expected number in \[0, 1\] for options\.classAccuracy\[1\] but received 1\.2/,
  ],
  [
    'classAccuracy NaN',
    () => [E(), labels, { ...ok, classAccuracy: [0.5, Number.NaN, 0] }],
    RangeError,
    /classAccuracy\[1\] but received NaN/,
  ],
  [
    'classAccuracy wrong length',
    () => [E(), labels, { ...ok, classAccuracy: [0.5, 0.5] }],
    RangeError,
    /Expected length numClasses = 3 for options\.classAccuracy but received length 2/,
  ],
  [
    'weights not finite',
    () => [E(), labels, { ...ok, weights: { fd: Number.POSITIVE_INFINITY } }],
    RangeError,
    /options\.weights\.fd/,
  ],
  [
    'unknown weight',
    () => [E(), labels, { ...ok, weights: { fe: 1 } }],
    TypeError,
    /Unknown option 'fe' in options\.weights/,
  ],
  [
    'unknown option',
    () => [E(), labels, { ...ok, weight: { fd: 1 } }],
    TypeError,
    /Unknown option 'weight' in options/,
  ],
  [
    'grad not boolean',
    () => [E(), labels, { ...ok, grad: 1 }],
    TypeError,
    /Expected boolean for options\.grad but received 1 of type number/,
  ],
  [
    'gradOut wrong length',
    () => [E(), labels, { ...ok, gradOut: new Float32Array(3) }],
    RangeError,
    /Expected length k\*n\*d = 24 for options\.gradOut but received length 3/,
  ],
  [
    'gradOut wrong type',
    () => [E(), labels, { ...ok, gradOut: new Float64Array(24) }],
    TypeError,
    /Expected Float32Array for options\.gradOut but received Float64Array/,
  ],
  [
    'gradOut aliasing embeddings',
    () => {
      const e = E();
      return [e, labels, { ...ok, gradOut: e }];
    },
    RangeError,
    /does not share memory with embeddings/,
  ],
  [
    'gradOut with grad: false',
    () => [E(), labels, { ...ok, grad: false, gradOut: new Float32Array(24) }],
    RangeError,
    /options\.grad/,
  ],
  [
    'device unknown',
    () => [E(), labels, { ...ok, device: 'gpu' }],
    RangeError,
    /Expected 'auto', 'cpu' or 'cuda' for options\.device but received 'gpu'/,
  ],
  ['options missing', () => [E(), labels, undefined], TypeError, /for options but received undefined/],
  [
    'too many elements',
    () => [new Float32Array(1), [0, 1], { k: 40000, d: 40000, numClasses: 2 }],
    RangeError,
    /k\*n\*d <= 2147483647/,
  ],
];

for (const [name, args, ErrorType, message] of cases) {
  test(`bad input: ${name}`, async (t) => {
    t.throws(() => adCorreLoss(...args()), { instanceOf: ErrorType, message });
    await t.throwsAsync(() => adCorreLossAsync(...args()), { instanceOf: ErrorType, message });
  });
}

test("bad input: device 'cuda' without a usable GPU", (t) => {
  if (backendInfo().cuda.usable) {
    t.pass('a GPU is usable here; nothing to check');
    return;
  }
  t.throws(() => adCorreLoss(E(), labels, { ...ok, device: 'cuda' }), {
    instanceOf: RangeError,
    message: /Expected a usable CUDA GPU for device 'cuda' but received none: .+ Use device 'cpu' or 'auto'/,
  });
});

test('the native module checks lengths itself (no out-of-bounds read)', (t) => {
  const binding = require('node-gyp-build')(new URL('..', import.meta.url).pathname);
  const request = {
    embeddings: E(),
    labels: Int32Array.from(labels),
    classAccuracy: null,
    k,
    n,
    d,
    numClasses,
    weights: new Float64Array([1, 1, 1]),
    grad: true,
    device: 'cpu',
  };
  t.notThrows(() => binding.loss(request));
  t.throws(() => binding.loss({ ...request, n: 4 }), { message: /length n|k\*n\*d/ });
  t.throws(() => binding.loss({ ...request, embeddings: new Float32Array(5) }), { message: /k\*n\*d/ });
  t.throws(() => binding.loss({ ...request, labels: Int32Array.of(0, 1, 9) }), { message: /numClasses/ });
  t.throws(() => binding.loss({ ...request, classAccuracy: new Float32Array(1) }), { message: /classAccuracy/ });
  t.throws(() => binding.loss({ ...request, labels: [0, 1, 2] }), { instanceOf: TypeError });
  t.throws(() => binding.loss({ ...request, k: 2.5 }), { instanceOf: RangeError });
});
