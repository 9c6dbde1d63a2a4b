// DataLoader: tensor layout and values, evaluation = plain resize, seeded
// reproducibility across worker counts, class-balanced sampling, the cache,
// bad files skipped and counted (or strict), augmentation's geometry.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { DataError, DataLoader, openDataset } from 'adcorre-native';
import sharp from 'sharp';
import { BLUR_SIGMA, cropMatrix, eraseRect, JPEG_QUALITY, LOW_RES_SIDE, randomWarp } from 'adcorre-native/internal';
import { degrade, quantisationTable } from 'adcorre-native/internal';
import { mulberry32 } from 'adcorre-native/internal';
import { native } from 'adcorre-native/internal';
import { fer2013Csv, ferPixels, tempDir, writeBrokenImages, writeImage } from './helpers/fixtures.js';

async function ferCsvSplit(n, labelOf = (i) => i % 7) {
  const dir = tempDir();
  const rows = Array.from({ length: n }, (_, i) => [[6, 3, 4, 5, 2, 1, 0][labelOf(i)], ferPixels(i), 'Training']);
  writeFileSync(join(dir, 'fer.csv'), fer2013Csv(rows));
  return (await openDataset(join(dir, 'fer.csv'))).splits.get('train');
}

async function collect(loader, epoch = 0, opts) {
  const out = [];
  for await (const b of loader.epoch(epoch, opts)) out.push(b);
  return out;
}

test('batches: NCHW float32 in [0, 1], labels, sizes, dropLast', async (t) => {
  const split = await ferCsvSplit(10);
  const loader = new DataLoader(split, { batchSize: 4, size: 32, channels: 3, workers: 0 });
  const batches = await collect(loader);
  t.deepEqual(
    batches.map((b) => b.count),
    [4, 4, 2],
  );
  t.is(batches[0].images.length, 4 * 3 * 32 * 32);
  t.true(batches[0].images.every((v) => v >= 0 && v <= 1));
  t.deepEqual(Array.from(batches[0].labels), [0, 1, 2, 3]);
  t.deepEqual(Array.from(batches[2].indices), [8, 9]);
  // grey replicated into three identical planes
  const plane = 32 * 32;
  t.deepEqual(batches[0].images.subarray(0, plane), batches[0].images.subarray(plane, 2 * plane));
  const dropping = new DataLoader(split, { batchSize: 4, size: 32, channels: 1, workers: 0, dropLast: true });
  t.is(dropping.length, 2);
  t.deepEqual(
    (await collect(dropping)).map((b) => b.count),
    [4, 4],
  );
});

test('evaluation at the native size reproduces the pixels exactly', async (t) => {
  const split = await ferCsvSplit(3);
  const loader = new DataLoader(split, { batchSize: 3, size: 48, channels: 1, workers: 0 });
  const [batch] = await collect(loader);
  const expected = Float32Array.from(ferPixels(1), (v) => v / 255);
  const got = batch.images.subarray(48 * 48, 2 * 48 * 48);
  t.true(got.every((v, i) => Math.abs(v - expected[i]) < 1e-6));
});

test('same seed, same batches, whatever the worker count; epochs differ', async (t) => {
  const split = await ferCsvSplit(40);
  const options = { batchSize: 8, size: 40, channels: 1, augment: true, shuffle: true, seed: 7 };
  const inline = new DataLoader(split, { ...options, workers: 0 });
  const threaded = new DataLoader(split, { ...options, workers: 2 });
  try {
    const a = await collect(inline, 3);
    const b = await collect(threaded, 3);
    t.deepEqual(
      a.map((x) => Array.from(x.indices)),
      b.map((x) => Array.from(x.indices)),
    );
    t.deepEqual(
      a.map((x) => x.images),
      b.map((x) => x.images),
    );
    const c = await collect(inline, 4);
    t.notDeepEqual(
      a.map((x) => Array.from(x.indices)),
      c.map((x) => Array.from(x.indices)),
    );
    // evaluation pass of the same loader is not augmented
    const plain = await collect(inline, 3, { augment: false });
    t.notDeepEqual(plain[0].images, a[0].images);
  } finally {
    await threaded.close();
  }
});

test('class-balanced sampling evens out a skewed split', async (t) => {
  const split = await ferCsvSplit(700, (i) => (i < 600 ? 1 : (i % 3) + 2)); // 600 happy, 100 of three others
  const count = (balanced) =>
    collect(new DataLoader(split, { batchSize: 100, size: 8, channels: 1, workers: 0, balanced, shuffle: true })).then(
      (bs) => {
        const h = [0, 0, 0, 0, 0, 0, 0];
        for (const b of bs) for (const l of b.labels) h[l]++;
        return h;
      },
    );
  const skewed = await count(false);
  const balanced = await count(true);
  t.is(skewed[1], 600);
  for (const c of [1, 2, 3, 4]) t.true(balanced[c] > 120 && balanced[c] < 230, `class ${c}: ${balanced[c]}`);
});

test('image folders are cached in memory once: later epochs need no files', async (t) => {
  const dir = tempDir();
  for (let i = 0; i < 6; i++) await writeImage(join(dir, ['happy', 'sad'][i % 2], `${i}.jpg`), { seed: i });
  const split = (await openDataset(dir)).splits.get('all');
  const loader = new DataLoader(split, { batchSize: 4, size: 48, channels: 1, workers: 2 });
  try {
    const first = await collect(loader, 0);
    rmSync(dir, { recursive: true });
    const second = await collect(loader, 0);
    t.deepEqual(
      second.map((b) => b.images),
      first.map((b) => b.images),
    );
  } finally {
    await loader.close();
  }
});

test('bad files: skipped and counted on worker threads; strict stops with the file', async (t) => {
  const dir = tempDir();
  await writeImage(join(dir, 'happy', 'ok.jpg'));
  await writeBrokenImages(join(dir, 'sad'));
  const split = (await openDataset(dir)).splits.get('all');
  for (const cache of [false, true]) {
    const loader = new DataLoader(split, { batchSize: 2, size: 24, channels: 1, workers: 2, cache });
    try {
      const batches = await collect(loader);
      t.is(
        batches.reduce((s, b) => s + b.count, 0),
        1,
      );
      t.is(loader.report.total, 3);
      await collect(loader, 1); // a second epoch leaves the bad files out and does not count them again
      t.is(loader.report.total, 3);
    } finally {
      await loader.close();
    }
  }
  const strict = new DataLoader(split, { batchSize: 4, size: 24, channels: 1, workers: 0, strict: true, cache: false });
  await t.throwsAsync(() => collect(strict), { instanceOf: DataError, message: /sad\/(empty|text|truncated)\.jpg/ });
});

test('bad loader options name the parameter', (t) => {
  const split = { name: 'x', samples: [{ label: 0, source: '/nope.jpg', where: 'x' }] };
  t.throws(() => new DataLoader(split, { batchSize: 0, size: 8, channels: 1 }), {
    instanceOf: RangeError,
    message: /batchSize/,
  });
  t.throws(() => new DataLoader(split, { batchSize: 2, size: 8, channels: 2 }), {
    instanceOf: RangeError,
    message: /1 or 3 for channels/,
  });
  t.throws(() => new DataLoader({ name: 'e', samples: [] }, { batchSize: 2, size: 8, channels: 1 }), {
    instanceOf: DataError,
  });
});

test('augmentation geometry: the flip mirrors, rotation turns, crops stay inside', (t) => {
  const w = 5,
    h = 4;
  const src = Uint8Array.from({ length: w * h }, (_, i) => i * 10);
  const out = new Float32Array(w * h);
  // flip about the centre with no scaling maps column u to column w-1-u
  native().warpAffine(src, w, h, 1, out, 0, w, h, 1, cropMatrix(w, w / 2, h / 2, w, h, 0, -1), 1, 0);
  t.true(Math.abs(out[0] - src[w - 1] / 255) < 1e-6);
  t.true(Math.abs(out[w - 1] - src[0] / 255) < 1e-6);
  // 180 degrees (square) maps (u, v) to (S-1-u, S-1-v)
  const sq = Uint8Array.from({ length: 16 }, (_, i) => i * 15);
  const rot = new Float32Array(16);
  native().warpAffine(sq, 4, 4, 1, rot, 0, 4, 4, 1, cropMatrix(4, 2, 2, 4, 4, Math.PI, 1), 1, 0);
  t.true(Math.abs(rot[0] - sq[15] / 255) < 1e-5);
  // random crops sample inside the image (before rotation)
  let i = 0;
  const seq = [0, 0.99, 0.5, 0.5, 0.5, 0.9, 0.5, 0.5];
  const s = randomWarp(48, 48, 48, { rotation: 0, brightness: 0, contrast: 0 }, () => seq[i++ % seq.length]);
  const corners = [
    [0, 0],
    [47, 47],
  ].map(([u, v]) => [s.matrix[0] * u + s.matrix[1] * v + s.matrix[2], s.matrix[3] * u + s.matrix[4] * v + s.matrix[5]]);
  for (const [x, y] of corners) t.true(x >= -0.5 && x <= 47.5 && y >= -0.5 && y <= 47.5, `${x}, ${y}`);
});

test('random erasing: off by default (the random stream and the warp unchanged); on, a rectangle of 2-40 % inside the input, filled with noise', (t) => {
  const plain = randomWarp(48, 48, 48, {}, mulberry32(7));
  const off = randomWarp(48, 48, 48, { erase: 0 }, mulberry32(7));
  t.deepEqual(off, plain);
  t.is(plain.erase, undefined);
  let erased = 0;
  for (let seed = 0; seed < 200; seed++) {
    const s = randomWarp(48, 48, 48, { erase: 0.5 }, mulberry32(seed));
    t.deepEqual(s.matrix, randomWarp(48, 48, 48, {}, mulberry32(seed)).matrix); // drawn after the warp's numbers
    if (!s.erase) continue;
    erased++;
    const { x, y, width, height } = s.erase;
    t.true(x >= 0 && y >= 0 && x + width <= 48 && y + height <= 48, JSON.stringify(s.erase));
    const area = (width * height) / (48 * 48);
    t.true(area > 0.015 && area < 0.42, `area ${area}`);
  }
  t.true(erased > 70 && erased < 130, `${erased} of 200 erased at p = 0.5`);
  // the fill: only the rectangle, in every channel, values in [0, 1)
  const img = new Float32Array(2 * 5 * 5).fill(-1);
  eraseRect(img, 0, 5, 2, { x: 1, y: 2, width: 3, height: 2 }, mulberry32(1));
  for (let c = 0; c < 2; c++)
    for (let y = 0; y < 5; y++)
      for (let x = 0; x < 5; x++) {
        const v = img[(c * 5 + y) * 5 + x];
        const inside = x >= 1 && x < 4 && y >= 2 && y < 4;
        t.true(inside ? v >= 0 && v < 1 : v === -1, `${c} ${x} ${y}: ${v}`);
      }
});

test('photo degradations: off by default (the random stream, warp and erasing unchanged); on, drawn after erasing within their ranges', (t) => {
  for (let seed = 0; seed < 50; seed++) {
    const plain = randomWarp(48, 48, 48, { erase: 0.5 }, mulberry32(seed));
    t.deepEqual(randomWarp(48, 48, 48, { erase: 0.5, lowRes: 0, blur: 0 }, mulberry32(seed)), plain);
    t.is(plain.degrade, undefined);
  }
  let low = 0,
    blurred = 0;
  for (let seed = 0; seed < 200; seed++) {
    const s = randomWarp(64, 64, 64, { erase: 0.5, lowRes: 0.5, blur: 0.5 }, mulberry32(seed));
    const plain = randomWarp(64, 64, 64, { erase: 0.5 }, mulberry32(seed));
    t.deepEqual(s.matrix, plain.matrix);
    t.deepEqual(s.erase, plain.erase);
    if (s.degrade?.lowRes !== undefined) {
      low++;
      const side = s.degrade.lowRes;
      t.true(
        Number.isInteger(side) && side >= Math.round(64 * LOW_RES_SIDE[0]) && side <= Math.round(64 * LOW_RES_SIDE[1]),
        `${side}`,
      );
    }
    if (s.degrade?.blur !== undefined) {
      blurred++;
      // sigma scales with the input: 0.5-1.5 px at 48 px is 0.67-2 px at 64
      t.true(
        s.degrade.blur >= (BLUR_SIGMA[0] * 64) / 48 && s.degrade.blur <= (BLUR_SIGMA[1] * 64) / 48,
        `${s.degrade.blur}`,
      );
    }
  }
  t.true(low > 70 && low < 130, `${low} of 200 at p = 0.5`);
  t.true(blurred > 70 && blurred < 130, `${blurred} of 200 at p = 0.5`);
});

test('blur: an impulse spreads as a normalised Gaussian of 3 sigma each side; a constant stays; each channel on its own', (t) => {
  const n = 15,
    sigma = 1;
  const img = new Float32Array(2 * n * n).fill(0.25); // channel 0 constant, channel 1 an impulse
  img.fill(0, n * n);
  img[n * n + 7 * n + 7] = 1;
  degrade(img, 0, n, 2, { blur: sigma });
  const g = (d) => (Math.abs(d) <= 3 ? Math.exp(-(d * d) / 2) : 0);
  let z = 0;
  for (let d = -3; d <= 3; d++) z += g(d);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      t.true(Math.abs(img[y * n + x] - 0.25) < 1e-6, `constant at ${x} ${y}: ${img[y * n + x]}`);
      const expected = (g(y - 7) * g(x - 7)) / (z * z);
      t.true(
        Math.abs(img[n * n + y * n + x] - expected) < 1e-6,
        `impulse at ${x} ${y}: ${img[n * n + y * n + x]} vs ${expected}`,
      );
    }
});

test('low resolution: 4 px to 2 (block means) and back (linear between pixel centres), worked by hand; a full side is the identity', (t) => {
  // pixel (x, y) holds x + 4 y; its 2 x 2 block means are worked out below, then enlarged
  // along each axis as [b0, 0.75 b0 + 0.25 b1, 0.25 b0 + 0.75 b1, b1]
  const size = 4;
  const img = new Float32Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) img[y * size + x] = x + 4 * y;
  const before = img.slice();
  degrade(img, 0, size, 1, { lowRes: size });
  t.deepEqual(img, before);
  degrade(img, 0, size, 1, { lowRes: 2 });
  const up = (b0, b1) => [b0, 0.75 * b0 + 0.25 * b1, 0.25 * b0 + 0.75 * b1, b1];
  // block means: top-left 2.5, top-right 4.5, bottom-left 10.5, bottom-right 12.5
  const columns = [up(2.5, 10.5), up(4.5, 12.5)];
  for (let y = 0; y < size; y++) {
    const row = up(columns[0][y], columns[1][y]);
    for (let x = 0; x < size; x++)
      t.true(Math.abs(img[y * size + x] - row[x]) < 1e-5, `${x} ${y}: ${img[y * size + x]} vs ${row[x]}`);
  }
  // a checkerboard is averaged away at half resolution
  const board = Float32Array.from({ length: 64 }, (_, i) => ((i % 8) + Math.floor(i / 8)) % 2);
  degrade(board, 0, 8, 1, { lowRes: 4 });
  for (const v of board) t.true(Math.abs(v - 0.5) < 1e-6, `${v}`);
});

test('the loader applies the degradations after the same warp, alike inline and in workers', async (t) => {
  const split = await ferCsvSplit(16);
  const base = { batchSize: 8, size: 40, channels: 1, shuffle: false, seed: 3 };
  const degraded = { blur: 1, lowRes: 1 };
  const plain = await collect(new DataLoader(split, { ...base, workers: 0, augment: {} }));
  const inline = await collect(new DataLoader(split, { ...base, workers: 0, augment: degraded }));
  const threaded = new DataLoader(split, { ...base, workers: 2, augment: degraded });
  try {
    const viaWorkers = await collect(threaded);
    t.deepEqual(
      inline.map((b) => b.images),
      viaWorkers.map((b) => b.images),
    );
  } finally {
    await threaded.close();
  }
  // the same warped image, softer: the squared differences between neighbours shrink
  const roughness = (img, at) => {
    let r = 0;
    for (let y = 0; y < 40; y++)
      for (let x = 1; x < 40; x++) r += (img[at + y * 40 + x] - img[at + y * 40 + x - 1]) ** 2;
    return r;
  };
  for (let b = 0; b < plain.length; b++)
    for (let i = 0; i < plain[b].count; i++) {
      const smooth = roughness(inline[b].images, i * 1600),
        sharp = roughness(plain[b].images, i * 1600);
      t.true(smooth < sharp, `batch ${b} image ${i}: ${smooth} vs ${sharp}`);
    }
});

test("JPEG: the quality scaling is libjpeg's (50 = the standard table, 100 = all ones), drawn after blur within its range", (t) => {
  t.deepEqual(Array.from(quantisationTable(50)).slice(0, 8), [16, 11, 10, 16, 24, 40, 51, 61]);
  t.true(quantisationTable(100).every((v) => v === 1));
  t.deepEqual(Array.from(quantisationTable(10)).slice(0, 3), [80, 55, 50]); // scale 500 %
  let drawn = 0;
  for (let seed = 0; seed < 100; seed++) {
    const s = randomWarp(48, 48, 48, { blur: 0.5, jpeg: 0.5 }, mulberry32(seed));
    t.deepEqual(s.degrade?.blur, randomWarp(48, 48, 48, { blur: 0.5 }, mulberry32(seed)).degrade?.blur);
    if (s.degrade?.jpeg === undefined) continue;
    drawn++;
    t.true(Number.isInteger(s.degrade.jpeg) && s.degrade.jpeg >= JPEG_QUALITY[0] && s.degrade.jpeg <= JPEG_QUALITY[1]);
  }
  t.true(drawn > 30 && drawn < 70, `${drawn} of 100 at p = 0.5`);
});

// The quantisation table sharp's libjpeg-turbo writes into a JPEG's DQT segment (zig-zag order), in row order.
function writtenTable(jpeg) {
  for (let i = 2; i + 4 < jpeg.length;) {
    const marker = jpeg[i + 1],
      length = jpeg.readUInt16BE(i + 2);
    if (marker === 0xdb && (jpeg[i + 4] & 0x0f) === 0 && jpeg[i + 4] >> 4 === 0) {
      const table = new Array(64);
      for (let z = 0; z < 64; z++) table[ZIGZAG[z]] = jpeg[i + 5 + z];
      return table;
    }
    i += 2 + length;
  }
  throw new Error('no 8-bit luminance DQT segment');
}
// zig-zag position -> row-order index (ITU T.81 figure A.6)
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63,
];

test('JPEG: the quantisation table equals the one libjpeg-turbo writes, at every quality, 1 to 100', async (t) => {
  const grey = await sharp(Buffer.alloc(64, 128), { raw: { width: 8, height: 8, channels: 1 } });
  for (let quality = 1; quality <= 100; quality++) {
    const jpeg = await grey.clone().jpeg({ quality, optimiseCoding: false }).toBuffer();
    t.deepEqual(Array.from(quantisationTable(quality)), writtenTable(jpeg), `quality ${quality}`);
  }
});

test('JPEG: the block quantisation equals an encode and decode by sharp (libjpeg-turbo), whole and partial blocks', async (t) => {
  for (const size of [48, 20]) {
    // a face-like mix of smooth shading and edges
    const bytes = Uint8Array.from({ length: size * size }, (_, i) => {
      const x = i % size,
        y = Math.floor(i / size);
      return Math.round(120 + 60 * Math.sin(x / 3) * Math.cos(y / 5) + (x > size / 2 ? 40 : -40) * (y % 7 < 3 ? 1 : 0));
    });
    for (const quality of [30, 60, 90]) {
      const jpg = await sharp(bytes, { raw: { width: size, height: size, channels: 1 } })
        .jpeg({ quality })
        .toBuffer();
      const { data, info } = await sharp(jpg).raw().toBuffer({ resolveWithObject: true });
      const plane = Float32Array.from(bytes, (v) => v / 255);
      degrade(plane, 0, size, 1, { jpeg: quality });
      let near = 0,
        total = 0,
        change = 0;
      for (let i = 0; i < size * size; i++) {
        const diff = Math.abs(plane[i] * 255 - data[i * info.channels]);
        if (diff <= 2 + 1e-4) near++;
        total += diff;
        change += Math.abs(bytes[i] - data[i * info.channels]);
      }
      // libjpeg-turbo's integer DCT against this float one: a coefficient on a rounding boundary may land a
      // step apart, which moves the pixels of its block: at most two blocks' worth beyond 2 levels, under half a
      // level on average, where the compression itself moves pixels by 1 (quality 90) to 6 levels (quality 30)
      const n = size * size;
      const what = `size ${size} quality ${quality}: ${near} of ${n} within 2 levels, mean ${total / n}, JPEG's own change ${change / n}`;
      t.true(n - near <= 2 * 64 && total / n < 0.5, what);
      t.true(change / n > 2 * (total / n), what);
    }
  }
});

test("zoom and shift (Keras' ranges): off by default; on, the crop's side within 1 +- zoom of the image and its centre within +-shift x the side", (t) => {
  t.deepEqual(randomWarp(48, 48, 48, { zoom: 0, shift: 0 }, mulberry32(3)), randomWarp(48, 48, 48, {}, mulberry32(3)));
  let larger = 0,
    smaller = 0;
  for (let seed = 0; seed < 300; seed++) {
    const { matrix: m } = randomWarp(
      48,
      48,
      48,
      { zoom: 0.2, shift: 0.2, rotation: 0, ratio: [1, 1] },
      mulberry32(seed),
    );
    // without rotation or flip the source side is m[0] x S, the source centre the image of the output's centre
    const side = Math.abs(m[0]) * 48;
    t.true(side >= 0.8 * 48 - 1e-9 && side <= 1.2 * 48 + 1e-9, `side ${side}`);
    const cx = m[0] * 23.5 + m[1] * 23.5 + m[2] + 0.5;
    const cy = m[3] * 23.5 + m[4] * 23.5 + m[5] + 0.5;
    for (const c of [cx, cy]) t.true(Math.abs(c - 24) <= 0.2 * side + 1e-9, `centre ${c} for side ${side}`);
    if (side > 48) larger++;
    else smaller++;
  }
  t.true(larger > 100 && smaller > 100, `${larger} zoomed out, ${smaller} zoomed in`);
});
