// lib/model/finite.ts: the one search for NaN and infinite weights that the trainer and the exporter share.
import test from 'ava';
import { countNonFinite, describeNonFinite, firstNonFiniteParameter } from 'adcorre-native/internal';

test('countNonFinite counts NaN and both infinities, and nothing else', (t) => {
  t.is(countNonFinite(Float32Array.of(0, -0, 1e38, -1e-45)), 0);
  t.is(countNonFinite(Float32Array.of(NaN, 1, Infinity, -Infinity, 2)), 3);
  t.is(countNonFinite([]), 0);
});

test('firstNonFiniteParameter: the first bad parameter in order, with its count and size; null when all are finite', (t) => {
  const weights = new Map([
    ['a.weight', Float32Array.of(1, 2, 3)],
    ['b.weight', Float32Array.of(1, NaN, NaN, 4)],
    ['c.bias', Float32Array.of(Infinity)],
  ]);
  t.deepEqual(firstNonFiniteParameter(weights), { name: 'b.weight', bad: 2, length: 4 });
  // names give the order (the exporter's: the architecture's parameters); names not in the map are passed over
  t.deepEqual(firstNonFiniteParameter(weights, ['missing', 'c.bias', 'b.weight']), {
    name: 'c.bias',
    bad: 1,
    length: 1,
  });
  t.is(firstNonFiniteParameter(weights, ['a.weight']), null);
  t.is(firstNonFiniteParameter(new Map()), null);
  t.is(describeNonFinite({ name: 'b.weight', bad: 2, length: 4 }), 'parameter b.weight: 2 of its 4 values');
});
