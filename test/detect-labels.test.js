// The detector's pure parts (merging detections of several passes, the passes
// a photo gets) and the annotated pictures' label placement, on hand-made boxes
// and synthetic scenes: a face at each border and corner, and a crowd.
import test from 'ava';
import { mergeDetections, planPasses, PLANS } from 'adcorre-native/internal';
import { resampleWindow, resampleWindowJs } from 'adcorre-native/internal';
import { optionalNative } from 'adcorre-native/internal';
import { clipBox, placeLabels } from 'adcorre-native/internal';
import { labelFontSize, overlaySvg } from 'adcorre-native/internal';

const box = (x, y, width, height, score = 0.9) => ({
  x,
  y,
  width,
  height,
  score,
  keypoints: [[x + width / 2, y + height / 2]],
});

function area(a, b) {
  const w = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const h = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0;
}

test('merge: overlapping boxes of one face become one, averaged by score', (t) => {
  const merged = mergeDetections([box(100, 100, 50, 50, 0.6), box(110, 100, 50, 50, 0.9), box(400, 50, 30, 30, 0.7)]);
  t.is(merged.length, 2);
  const [a, b] = merged;
  t.is(a.score, 0.9); // the group's best
  t.true(Math.abs(a.x - (100 * 0.6 + 110 * 0.9) / 1.5) < 1e-9);
  t.is(a.y, 100);
  t.deepEqual(a.keypoints[0], [(125 * 0.6 + 135 * 0.9) / 1.5, 125]);
  t.like(b, { x: 400, y: 50, score: 0.7 });
  t.true(Math.abs(b.width - 30) < 1e-9 && Math.abs(b.height - 30) < 1e-9);
});

test('merge: a part of a face inside its box joins it without pulling the box', (t) => {
  // the whole face from one pass, its lower half from a tile: one face, the whole box
  const merged = mergeDetections([box(100, 100, 100, 100, 0.8), box(120, 150, 50, 45, 0.95)]);
  t.is(merged.length, 1);
  t.like(merged[0], { x: 100, y: 100, width: 100, height: 100, score: 0.95 });
});

test('merge: neighbouring faces that touch or overlap a little stay apart', (t) => {
  const crowd = [box(0, 0, 40, 40), box(36, 0, 40, 40), box(0, 38, 40, 40), box(36, 36, 40, 40)];
  t.is(mergeDetections(crowd).length, 4);
  t.deepEqual(mergeDetections([]), []);
});

test('passes: whole image first, then overlapping tiles covering a large photo', (t) => {
  const plan = PLANS.multi;
  const passes = planPasses(1600, 1200, plan);
  t.deepEqual(
    passes.slice(0, 2).map((p) => [p.network, p.level]),
    [
      ['full', 0],
      ['short', 0],
    ],
  );
  t.true(passes[1].mirror); // the short-range look sees the image extended by its mirror image
  const tiles = passes.filter((p) => p.level === 1);
  t.is(tiles.length, 4);
  for (const p of tiles) t.true(p.x >= 0 && p.y >= 0 && p.x + p.side <= 1600 + 1e-9 && p.y + p.side <= 1200 + 1e-9);
  // neighbours share at least a quarter of a tile
  const xs = [...new Set(tiles.map((p) => p.x))].sort((a, b) => a - b);
  t.true(xs[0] + tiles[0].side - xs[1] >= 0.25 * tiles[0].side - 1e-9);
  // a small photo gets no tiles; the single-model set-ups one pass
  t.is(planPasses(256, 256, plan).filter((p) => p.level > 0).length, 0);
  t.is(planPasses(1600, 1200, PLANS.full).length, 1);
  t.is(planPasses(1600, 1200, PLANS.short).length, 1);
});

test('detector input resize: area average when shrinking, edges kept when enlarging', (t) => {
  // 4x2 RGB: left half 0, right half 200 -> 2x1: 0 and 200; 1x1: 100
  const src = new Uint8Array(4 * 2 * 3);
  for (let y = 0; y < 2; y++) for (let x = 2; x < 4; x++) src.fill(200, (y * 4 + x) * 3, (y * 4 + x) * 3 + 3);
  const whole = { x: 0, y: 0, width: 4, height: 2 };
  t.deepEqual([...resampleWindow(src, 4, 2, whole, 2, 1)], [0, 0, 0, 200, 200, 200]);
  t.deepEqual([...resampleWindow(src, 4, 2, whole, 1, 1)], [100, 100, 100]);
  const up = resampleWindow(src, 4, 2, whole, 8, 4);
  t.is(up.length, 8 * 4 * 3);
  t.is(up[0], 0);
  t.is(up[(8 * 4 - 1) * 3], 200);
});

test('face crop resample: a window reaching outside the image repeats the edge pixels, area averaged', (t) => {
  for (const resample of [resampleWindowJs, resampleWindow]) {
    // a 7x5 RGB image of distinct values; the window (-3, -2) 9x9 shrunk 3x to 3x3: each output pixel is the
    // mean of a 3x3 block of the edge-extended image, computed here directly
    const sw = 7,
      sh = 5;
    const src = new Uint8Array(sw * sh * 3);
    for (let i = 0; i < src.length; i++) src[i] = (i * 37 + 11) % 251;
    const at = (x, y, c) => src[(Math.min(sh - 1, Math.max(0, y)) * sw + Math.min(sw - 1, Math.max(0, x))) * 3 + c];
    const win = { x: -3, y: -2, width: 9, height: 9 };
    const out = resample(src, sw, sh, win, 3, 3);
    t.is(out.length, 3 * 3 * 3);
    for (let oy = 0; oy < 3; oy++)
      for (let ox = 0; ox < 3; ox++)
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let dy = 0; dy < 3; dy++)
            for (let dx = 0; dx < 3; dx++) sum += at(win.x + 3 * ox + dx, win.y + 3 * oy + dy, c);
          const got = out[(oy * 3 + ox) * 3 + c];
          t.true(Math.abs(got - sum / 9) < 1e-3, `pixel (${ox}, ${oy}) channel ${c}: ${got} vs ${sum / 9}`);
        }
    // enlarging a window inside the image: corner pixels kept, every value within the source's range
    const up = resample(src, sw, sh, { x: 1, y: 1, width: 3, height: 3 }, 12, 12);
    for (let c = 0; c < 3; c++) {
      t.true(Math.abs(up[c] - at(1, 1, c)) < 1e-3);
      t.true(Math.abs(up[(12 * 12 - 1) * 3 + c] - at(3, 3, c)) < 1e-3);
    }
    t.true(up.every((v) => v >= 0 && v <= 255));
  }
});

test('resampling borders: reflect mirrors the image about its edges, constant fills, scale and bias apply', (t) => {
  // a 3x1 image 10, 20, 30 seen through a window twice as wide, one pixel per output pixel
  const src = Uint8Array.from([10, 10, 10, 20, 20, 20, 30, 30, 30]);
  const win = { x: -3, y: 0, width: 9, height: 1 };
  for (const resample of [resampleWindowJs, resampleWindow]) {
    const row = (o) => [...resample(src, 3, 1, win, 9, 1, o)].filter((_, i) => i % 3 === 0);
    t.deepEqual(row({ border: 'reflect' }), [30, 20, 10, 10, 20, 30, 30, 20, 10]);
    t.deepEqual(row({ border: 'edge' }), [10, 10, 10, 10, 20, 30, 30, 30, 30]);
    t.deepEqual(row({ border: 'constant', constant: 5 }), [5, 5, 5, 10, 20, 30, 5, 5, 5]);
    t.deepEqual(row({ border: 'constant', scale: 0.5, bias: -1 }), [-1, -1, -1, 4, 9, 14, -1, -1, -1]);
  }
});

test('resampling: the addon equals the JavaScript reference on random windows (1e-3 of 255)', (t) => {
  if (!optionalNative()) return t.pass('the addon is not built: only the JavaScript resampler exists here');
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let worst = 0;
  for (let trial = 0; trial < 60; trial++) {
    const sw = 1 + Math.floor(rand() * 37),
      sh = 1 + Math.floor(rand() * 29);
    const src = Uint8Array.from({ length: sw * sh * 3 }, () => Math.floor(rand() * 256));
    // windows inside, across the border, outside, fractional; outputs smaller and larger than the window
    const win = {
      x: (rand() - 0.3) * sw * (trial % 3 === 0 ? 1 : Math.round(1 + rand())),
      y: (rand() - 0.3) * sh,
      width: 0.5 + rand() * 2 * sw,
      height: 0.5 + rand() * 2 * sh,
    };
    if (trial % 4 === 0) Object.assign(win, { x: Math.round(win.x), y: Math.round(win.y) });
    const dw = 1 + Math.floor(rand() * 40),
      dh = 1 + Math.floor(rand() * 40);
    const options = { border: ['edge', 'reflect', 'constant'][trial % 3], constant: 17, scale: 1 / 127.5, bias: -1 };
    const js = resampleWindowJs(src, sw, sh, win, dw, dh, options);
    const addon = resampleWindow(src, sw, sh, win, dw, dh, options);
    t.is(addon.length, js.length);
    for (let i = 0; i < js.length; i++) worst = Math.max(worst, Math.abs(js[i] - addon[i]) * 127.5);
  }
  t.true(worst < 1e-3, `largest difference ${worst} of 255`);
});

const size = (w = 90, h = 24) => ({ width: w, height: h });

function checkLabels(t, boxes, sizes, image, { faceOverlap = 0 } = {}) {
  const labels = placeLabels(boxes, sizes, image);
  t.is(labels.length, boxes.length);
  labels.forEach((r, i) => {
    t.true(r.x >= 0 && r.y >= 0, `label ${i} starts inside (${r.x}, ${r.y})`);
    t.true(r.x + r.width <= image.width + 1e-9 && r.y + r.height <= image.height + 1e-9, `label ${i} ends inside`);
    t.is(r.width, sizes[i].width);
    t.is(r.height, sizes[i].height);
    labels.forEach((o, j) => {
      if (j > i) t.is(area(r, o), 0, `label ${i} on label ${j}`);
    });
    boxes.forEach((b, j) => {
      if (j !== i) t.true(area(r, b) <= faceOverlap * b.width * b.height, `label ${i} on face ${j}`);
    });
  });
  return labels;
}

test('labels: a face at each border and corner of a synthetic scene', (t) => {
  const image = { width: 640, height: 480 };
  const s = 80;
  const boxes = [
    { x: -7, y: -12, width: s, height: s }, // top-left corner, cut by both borders
    { x: 280, y: -20, width: s, height: s }, // top
    { x: 600, y: -5, width: s, height: s }, // top-right, cut
    { x: -30, y: 200, width: s, height: s }, // left
    { x: 590, y: 200, width: s, height: s }, // right, cut
    { x: -10, y: 420, width: s, height: s }, // bottom-left, cut
    { x: 280, y: 430, width: s, height: s }, // bottom
    { x: 575, y: 415, width: s, height: s }, // bottom-right
  ];
  const labels = checkLabels(
    t,
    boxes,
    boxes.map(() => size(120, 40)),
    image,
  );
  // each label stays next to its face: it touches or lies within a label's height of the (clipped) box
  labels.forEach((r, i) => {
    const c = clipBox(boxes[i], image.width, image.height);
    const dx = Math.max(0, c.x - (r.x + r.width), r.x - (c.x + c.width));
    const dy = Math.max(0, c.y - (r.y + r.height), r.y - (c.y + c.height));
    t.true(dx <= r.height && dy <= r.height, `label ${i} is ${dx}, ${dy} from its face`);
  });
});

test('labels: a crowd of small faces, no label on another label or face', (t) => {
  const image = { width: 1000, height: 700 };
  const boxes = [];
  for (let row = 0; row < 3; row++)
    for (let col = 0; col < 7; col++)
      boxes.push({ x: 30 + col * 140 + (row % 2) * 40, y: 60 + row * 220, width: 56, height: 56 });
  checkLabels(
    t,
    boxes,
    boxes.map((_, i) => size(100 + (i % 3) * 10, 36)),
    image,
  );
});

test('labels: where no free spot exists, a label still stays inside the image', (t) => {
  // the faces fill the picture: labels must go on faces, but never outside
  const image = { width: 200, height: 100 };
  const boxes = [
    { x: 0, y: 0, width: 100, height: 100 },
    { x: 100, y: 0, width: 100, height: 100 },
  ];
  const labels = placeLabels(boxes, [size(80, 20), size(80, 20)], image);
  for (const r of labels) t.true(r.x >= 0 && r.y >= 0 && r.x + r.width <= 200 && r.y + r.height <= 100);
  t.is(area(labels[0], labels[1]), 0);
});

test('annotation overlay: boxes clipped to the image, text size follows the image size', (t) => {
  const face = (x, y, side) => ({
    box: { x, y, width: side, height: side },
    label: 'happy',
    confidence: 0.8,
    top: [
      { label: 'happy', probability: 0.8 },
      { label: 'neutral', probability: 0.1 },
      { label: 'sad', probability: 0.05 },
    ],
  });
  const result = { width: 640, height: 480, faces: [face(-7, 100, 120), face(560, 400, 120)] };
  const svg = overlaySvg(result, { runnersUp: 2 });
  const rects = [...svg.matchAll(/<rect x="([-\d.]+)" y="([-\d.]+)" width="([-\d.]+)" height="([-\d.]+)"/g)].map((m) =>
    m.slice(1).map(Number),
  );
  t.is(rects.length, 4); // two boxes, two label backgrounds
  for (const [x, y, w, h] of rects) t.true(x >= 0 && y >= 0 && x + w <= 640 + 1e-6 && y + h <= 480 + 1e-6);
  t.true(svg.includes('neutral 10% sad 5%'));
  t.false(overlaySvg(result).includes('neutral 10%'));
  // text grows with the picture, and shrinks in a crowd of small faces (not below 11 px)
  t.true(labelFontSize(4000, 3000, [400]) > labelFontSize(640, 480, [120]));
  t.is(labelFontSize(640, 480, [120]), 16);
  t.true(labelFontSize(4000, 3000, [60, 60, 60]) < labelFontSize(4000, 3000, [600]));
  t.true(labelFontSize(200, 150, [20, 20]) >= 11);
});
