import test from 'ava';
import { ConfusionTracker } from 'adcorre-native';

test('recall per class over the window; 0 for a class with no history', (t) => {
  const tracker = new ConfusionTracker(3);
  tracker.update([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0]);
  t.deepEqual(Array.from(tracker.recall()), [0.75, 0.5, 0]);
  t.is(tracker.size, 6);
  t.deepEqual(tracker.confusion(), [
    [3, 1, 0],
    [1, 1, 0],
    [0, 0, 0],
  ]);
});

test('keeps only the last `history` pairs', (t) => {
  const tracker = new ConfusionTracker(2, { history: 4 });
  tracker.update([0, 0, 0, 0], [1, 1, 1, 1]); // class 0 recall 0
  t.deepEqual(Array.from(tracker.recall()), [0, 0]);
  tracker.update([0, 0, 0], [0, 0, 0]); // three of the four wrong ones fall out
  t.deepEqual(Array.from(tracker.recall()), [0.75, 0]);
  t.is(tracker.size, 4);
  tracker.update([1, 0, 0, 0], [1, 0, 0, 0]);
  t.deepEqual(Array.from(tracker.recall()), [1, 1]);
});

test('default history is 1000', (t) => {
  const tracker = new ConfusionTracker(2);
  for (let i = 0; i < 1500; i++) tracker.add(i % 2, i < 500 ? 1 - (i % 2) : i % 2);
  t.is(tracker.size, 1000);
  t.deepEqual(Array.from(tracker.recall()), [1, 1]);
});

test('state round-trips through JSON, oldest first', (t) => {
  const tracker = new ConfusionTracker(3, { history: 5 });
  tracker.update([0, 1, 2, 0, 1, 2, 2], [0, 2, 2, 1, 1, 2, 0]);
  const state = JSON.parse(JSON.stringify(tracker));
  t.deepEqual(state.labels, [2, 0, 1, 2, 2]);
  const copy = ConfusionTracker.fromJSON(state);
  t.deepEqual(copy.recall(), tracker.recall());
  copy.add(1, 1);
  tracker.add(1, 1);
  t.deepEqual(copy.confusion(), tracker.confusion());
});

test('reset forgets everything', (t) => {
  const tracker = new ConfusionTracker(2);
  tracker.update([0, 1], [0, 1]);
  tracker.reset();
  t.is(tracker.size, 0);
  t.deepEqual(Array.from(tracker.recall()), [0, 0]);
});

test('bad input names the parameter', (t) => {
  t.throws(() => new ConfusionTracker(0), {
    instanceOf: RangeError,
    message: /positive integer for numClasses but received 0/,
  });
  t.throws(() => new ConfusionTracker(3, { history: 2.5 }), { instanceOf: RangeError, message: /options\.history/ });
  const tracker = new ConfusionTracker(3);
  t.throws(() => tracker.add(3, 0), {
    instanceOf: RangeError,
    message: /Expected integer in \[0, 3\) for label but received 3/,
  });
  t.throws(() => tracker.add(0, -1), { instanceOf: RangeError, message: /for prediction/ });
  t.throws(() => tracker.update([0, 1], [0]), {
    instanceOf: RangeError,
    message: /length 2 .* for predictions but received length 1/,
  });
  t.is(tracker.size, 0);
});

test('feeds adCorreLoss as classAccuracy', async (t) => {
  const { adCorreLoss } = await import('adcorre-native');
  const tracker = new ConfusionTracker(2);
  tracker.update([0, 1, 1], [0, 1, 0]);
  const E = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.cos(i * 1.7));
  const r = adCorreLoss(E, [0, 1, 1], { k: 2, d: 4, numClasses: 2, classAccuracy: tracker.recall(), device: 'cpu' });
  t.true(Number.isFinite(r.loss));
});
