// Issue #28: faces aligned by their eyes and mouth onto the training crops'
// framing, one transform shared by prediction, the pipeline evaluation and
// the aligned training crops; and the whole-pipeline evaluation itself.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import sharp from 'sharp';
import { boxSquare, faceSquare, toSquare, TRAINING_FRAMING } from 'adcorre-native/internal';
import { resampleSquare, resampleWindow } from 'adcorre-native/internal';
import { tempDir, writeFacelessManifest } from './helpers/fixtures.js';

const bin = (name) => new URL(`../bin/${name}.js`, import.meta.url).pathname;
const cli = (name, args) =>
  promisify(execFile)(process.execPath, [bin(name), ...args], { timeout: 240_000, maxBuffer: 1 << 26 }).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
const dir = tempDir('adcorre-align-');
const posed = new URL('../../shared/data/posed-dev', import.meta.url).pathname;
const havePosed = existsSync(posed);
const skipNote = havePosed ? '' : ` (skipped: ${posed} is absent)`;

/** A face whose eyes are `eyes` px apart, turned by `degrees`, mouth below the eye midpoint, centred at (cx, cy). */
function syntheticFace(cx, cy, eyes, degrees) {
  const a = (degrees * Math.PI) / 180;
  const at = (dx, dy) => [cx + Math.cos(a) * dx - Math.sin(a) * dy, cy + Math.sin(a) * dx + Math.cos(a) * dy];
  const mouth = (eyes * TRAINING_FRAMING.eyeToMouth) / TRAINING_FRAMING.eyeDistance;
  const side = eyes * 2.2;
  return {
    x: cx - side / 2,
    y: cy - side / 2,
    width: side,
    height: side,
    score: 0.9,
    keypoints: [at(-eyes / 2, 0), at(eyes / 2, 0), at(0, mouth / 2), at(0, mouth), at(-eyes, 0), at(eyes, 0)],
  };
}

test('faceSquare puts the eyes and mouth where the training crops hold them, at any turn and scale', (t) => {
  const size = 48;
  for (const [eyes, degrees] of [
    [30, 0],
    [61.5, 17],
    [120, -33],
    [12, 90],
  ]) {
    const face = syntheticFace(300, 200, eyes, degrees);
    const square = faceSquare(face);
    t.true(Math.abs(square.angle - (degrees * Math.PI) / 180) < 1e-9, `angle at ${degrees} degrees`);
    const [right, left, , mouth] = face.keypoints.map(([x, y]) => toSquare(square, size, x, y));
    const [ex, ey] = TRAINING_FRAMING.eyeCentre.map((v) => v * size);
    const half = (TRAINING_FRAMING.eyeDistance * size) / 2;
    const close = (got, want, what) => t.true(Math.abs(got - want) < 1e-6, `${what}: ${got} vs ${want}`);
    close(right[0], ex - half, 'right eye x');
    close(left[0], ex + half, 'left eye x');
    close(right[1], ey, 'right eye y');
    close(left[1], ey, 'left eye y');
    close(mouth[0], ex, 'mouth x');
    close(mouth[1], ey + TRAINING_FRAMING.eyeToMouth * size, 'mouth y');
  }
});

test('faceSquare falls back to the box when the keypoints are missing or not a face', (t) => {
  const face = syntheticFace(100, 100, 40, 0);
  t.deepEqual(faceSquare({ ...face, keypoints: [] }), boxSquare(face));
  const collapsed = { ...face, keypoints: face.keypoints.map(() => [100, 100]) };
  t.deepEqual(faceSquare(collapsed), boxSquare(face));
  t.deepEqual(boxSquare({ x: 10, y: 20, width: 40, height: 30 }, 1.5), { cx: 30, cy: 29, side: 60, angle: 0 });
});

/** An RGB image, black but for a bright 3x3 spot centred at (x, y). */
function spot(w, h, x, y) {
  const img = new Uint8Array(w * h * 3);
  for (let j = y - 1; j <= y + 1; j++)
    for (let i = x - 1; i <= x + 1; i++) img.fill(255, (j * w + i) * 3, (j * w + i) * 3 + 3);
  return img;
}

function centroid(rgb, size) {
  let sx = 0,
    sy = 0,
    s = 0;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const v = rgb[(y * size + x) * 3];
      sx += v * (x + 0.5);
      sy += v * (y + 0.5);
      s += v;
    }
  return [sx / s, sy / s];
}

test('resampleSquare: a turned square samples where toSquare says each image point lands', (t) => {
  const [w, h] = [320, 240];
  for (const [angle, px, py] of [
    [0.4, 190, 100],
    [-1.1, 120, 150],
    [Math.PI / 2, 170, 140],
  ]) {
    const square = { cx: 160, cy: 120, side: 150, angle };
    const out = resampleSquare(spot(w, h, px, py), w, h, square, 48);
    const [gx, gy] = centroid(out, 48);
    const [ex, ey] = toSquare(square, 48, px + 0.5, py + 0.5);
    t.true(Math.hypot(gx - ex, gy - ey) < 0.35, `angle ${angle}: spot at ${gx},${gy}, expected ${ex},${ey}`);
  }
});

test('resampleSquare unturned is resampleWindow on the whole-pixel square (the crop before alignment)', (t) => {
  const [w, h] = [90, 70];
  const img = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) % 251);
  const square = { cx: 40.3, cy: 33.6, side: 51.4, angle: 0 };
  const want = resampleWindow(img, w, h, { x: 15, y: 8, width: 51, height: 51 }, 48, 48);
  t.deepEqual(resampleSquare(img, w, h, square, 48), want);
});

test('adcorre-eval --pipeline: a photo without a face counts as wrong, in the no-face column', async (t) => {
  const { manifest } = await writeFacelessManifest(dir, 200, 'happy');
  const r = await cli('adcorre-eval', ['--pipeline', '--data', manifest, '--json']);
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.samples, 1);
  t.is(out.facesFound, 0);
  t.is(out.noFace, 1);
  t.is(out.accuracy, 0);
  t.deepEqual(out.confusionColumns.at(-1), 'no face');
  t.is(out.confusion[1][7], 1, 'happy row, no-face column');
});

(havePosed ? test : test.skip)(
  `adcorre-eval --pipeline answers what adcorre-predict answers, photo by photo${skipNote}`,
  async (t) => {
    // two photos of each class
    const rows = readdirSync(posed, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) =>
        readdirSync(join(posed, d.name))
          .slice(0, 2)
          .map((f) => [join(posed, d.name, f), d.name]),
      );
    const manifest = join(dir, 'posed.csv');
    writeFileSync(manifest, `path,label\n${rows.map((r) => r.join(',')).join('\n')}\n`);
    const evaluated = await cli('adcorre-eval', ['--pipeline', '--data', manifest, '--json']);
    t.is(evaluated.code, 0, evaluated.stderr);
    const metrics = JSON.parse(evaluated.stdout);
    const predicted = await cli('adcorre-predict', ['--json', ...rows.map((r) => r[0])]);
    t.is(predicted.code, 0, predicted.stderr);
    const answers = predicted.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // the largest face's label per photo, tallied into the same confusion
    const labels = metrics.confusionColumns.slice(0, -1);
    const tally = labels.map(() => new Array(labels.length + 1).fill(0));
    const canonical = {
      angry: 'anger',
      happy: 'happy',
      sad: 'sad',
      fear: 'fear',
      disgust: 'disgust',
      neutral: 'neutral',
      surprise: 'surprise',
    };
    for (const [i, [, cls]] of rows.entries()) {
      const faces = answers[i].faces;
      const largest = faces.sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height)[0];
      tally[labels.indexOf(canonical[cls])][largest ? labels.indexOf(largest.label) : labels.length]++;
      if (largest) t.true(Math.abs(largest.crop.angle) < 30, 'an aligned crop carries its turn in degrees');
    }
    t.deepEqual(metrics.confusion, tally);
    t.is(metrics.samples, rows.length);
  },
);

(havePosed ? test : test.skip)(`adcorre-data align writes the crops prediction classifies${skipNote}`, async (t) => {
  const out = join(dir, 'aligned');
  const manifest = join(dir, 'few.csv');
  const files = readdirSync(join(posed, 'happy')).slice(0, 3);
  writeFileSync(manifest, `path,label\n${files.map((f) => `${join(posed, 'happy', f)},happy`).join('\n')}\n`);
  const r = await cli('adcorre-data', ['align', manifest, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^3 aligned 48x48 crops of 3 photos/);
  const written = readdirSync(join(out, 'all', 'happy')).sort();
  t.deepEqual(
    written,
    files.map((f) => f.replace(/\.jpg$/, '.png')),
  );
  const meta = await sharp(join(out, 'all', 'happy', written[0])).metadata();
  t.is(meta.width, 48);
  t.is(meta.channels, 1);
});
