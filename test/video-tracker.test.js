// Face tracks from synthetic detections (no model, no ffmpeg): two faces that
// cross and swap sides keep their ids, through frames where one hides the
// other; a track ends after maxMissed frames; smoothing and summaries.
import test from 'ava';
import { Tracker } from 'adcorre-native/internal';
import { ProbabilitySmoother } from 'adcorre-native/internal';
import { FaceTracker } from 'adcorre-native/internal';

const vector = (seed) => Float32Array.from({ length: 16 }, (_, i) => Math.sin(seed * 7.3 + i * 1.7));

/** Face A walks left to right, B right to left, 1 px lower; detections come in either order. */
function crossing(frames = 40, hidden = new Set()) {
  return Array.from({ length: frames }, (_, f) => {
    const t = f / 10;
    const a = { box: { x: 20 + f * 10, y: 100, width: 60, height: 60 }, embedding: vector(1), who: 'A' };
    const b = { box: { x: 420 - f * 10, y: 101, width: 60, height: 60 }, embedding: vector(2), who: 'B' };
    const faces = hidden.has(f) ? [a] : f % 2 ? [b, a] : [a, b];
    return { t, faces };
  });
}

function idsOf(frames, tracker) {
  const seen = { A: new Set(), B: new Set() };
  for (const { t, faces } of frames) {
    const ids = tracker.update(faces, t);
    faces.forEach((f, i) => seen[f.who].add(ids[i]));
  }
  return seen;
}

test('two faces crossing keep their ids', (t) => {
  const seen = idsOf(crossing(), new Tracker());
  t.deepEqual([...seen.A], [1]);
  t.deepEqual([...seen.B], [2]);
});

test('a face hidden behind another for a few frames keeps its id, by motion alone too', (t) => {
  const hidden = new Set([18, 19, 20, 21, 22]); // B behind A as they cross
  for (const withEmbeddings of [true, false]) {
    const frames = crossing(40, hidden).map(({ t, faces }) => ({
      t,
      faces: faces.map((f) => (withEmbeddings ? f : { ...f, embedding: undefined })),
    }));
    const seen = idsOf(frames, new Tracker());
    t.deepEqual([...seen.A], [1], `A, embeddings ${withEmbeddings}`);
    t.deepEqual([...seen.B], [2], `B, embeddings ${withEmbeddings}`);
  }
});

test('a track ends after maxMissed frames; a face seen again later gets a new id', (t) => {
  const tracker = new Tracker({ maxMissed: 2 });
  const face = { box: { x: 10, y: 10, width: 50, height: 50 } };
  t.deepEqual(tracker.update([face], 0), [1]);
  t.deepEqual(tracker.update([], 0.1), []);
  t.deepEqual(tracker.update([], 0.2), []);
  t.deepEqual(tracker.update([face], 0.3), [1], 'two frames missed: kept');
  for (let i = 0; i < 3; i++) tracker.update([], 0.4 + i / 10);
  t.deepEqual(tracker.update([face], 0.8), [2], 'three frames missed: a new track');
});

test('tracker options are checked, naming the option', (t) => {
  t.throws(() => new Tracker({ maxMissed: -1 }), { message: /options\.maxMissed/ });
  t.throws(() => new Tracker({ appearanceWeight: 2 }), { message: /options\.appearanceWeight/ });
});

test('smoothing: off gives the raw answers; on, a step is followed at the time constant', (t) => {
  const raw = new ProbabilitySmoother(0);
  const p = { happy: 1, sad: 0 };
  t.is(raw.next(1, 0, p), p);
  const s = new ProbabilitySmoother(1);
  t.deepEqual(s.next(1, 0, { happy: 0, sad: 1 }), { happy: 0, sad: 1 });
  const after = s.next(1, 1, { happy: 1, sad: 0 });
  t.true(Math.abs(after.happy - (1 - Math.exp(-1))) < 1e-9);
  t.deepEqual(s.next(2, 1, { happy: 1, sad: 0 }), { happy: 1, sad: 0 }, 'tracks are smoothed apart');
});

test('FaceTracker: records, summaries and the time checks', async (t) => {
  const answers = [
    { happy: 0.9, sad: 0.1 },
    { happy: 0.8, sad: 0.2 },
    { happy: 0.3, sad: 0.7 },
    { happy: 0.9, sad: 0.1 },
  ];
  let call = 0;
  const predict = async () => ({
    faces: [{ box: { x: 10, y: 10, width: 40, height: 40 }, probabilities: answers[call++] }],
  });
  const tracker = new FaceTracker(predict, ['happy', 'sad']);
  const pixels = { data: new Uint8Array(3), width: 1, height: 1, channels: 3 };
  for (let i = 0; i < 4; i++) {
    const r = await tracker.push(pixels, i * 0.5);
    t.is(r.frame, i);
    t.is(r.faces[0].track, 1);
    t.is(r.faces[0].label, i === 2 ? 'sad' : 'happy');
  }
  const [summary] = tracker.summary();
  t.like(summary, { track: 1, frames: 4, seconds: 2, first: 0, last: 1.5, dominant: 'happy' });
  t.deepEqual(summary.shares, { happy: 0.75, sad: 0.25 });
  await t.throwsAsync(tracker.push(pixels, 1), { message: /time/ });
  await t.throwsAsync(tracker.push(pixels, Number.NaN), { message: /time/ });
});
