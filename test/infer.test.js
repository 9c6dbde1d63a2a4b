// Prediction: FER.load / predict on ONNX Runtime with a freshly exported small
// model, face detection on synthetic scenes (a real FER-2013 crop from
// ../shared pasted at a known place), every bad input, and the CLI.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import sharp from 'sharp';
import {
  buildArchitecture,
  exportOnnx,
  FER,
  InputError,
  initWeights,
  labelNames,
  NoModelError,
  BUNDLED_MODELS,
} from 'adcorre-native';
import { pattern, tempDir } from './helpers/fixtures.js';
import { sharedDir } from './helpers/shared.js';

const dir = tempDir('adcorre-infer-');
const modelPath = join(dir, 'tiny.onnx');
const config = { inputSize: 48, channels: 1, width: 0.0625, middleBlocks: 1, k: 2, d: 8, classes: 7 };
writeFileSync(
  modelPath,
  exportOnnx(config, initWeights(buildArchitecture(config), 3), {
    labels: labelNames(7),
    training: { note: 'test fixture' },
  }),
);

const ferDir = join(sharedDir, 'data', 'fer2013', 'val');
const haveFer = existsSync(ferDir);
const ferCrop = (cls, i = 0) => join(ferDir, cls, readdirSync(join(ferDir, cls)).sort()[i]);

async function scene(faces, width = 480, height = 360) {
  const composites = await Promise.all(
    faces.map(async ({ file, left, top, side }) => ({
      input: await sharp(file).resize(side, side).toColourspace('srgb').png().toBuffer(),
      left,
      top,
    })),
  );
  return sharp({ create: { width, height, channels: 3, background: { r: 90, g: 120, b: 100 } } })
    .composite(composites)
    .jpeg({ quality: 92 })
    .toBuffer();
}

function iou(a, b) {
  const x0 = Math.max(a.x, b.x),
    y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width),
    y1 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  return inter / (a.width * a.height + b.width * b.height - inter);
}

let fer;
test.before(async () => {
  fer = await FER.load({ model: modelPath, device: 'cpu' });
});
test.after.always(async () => {
  await fer?.close();
});

test('info: metadata and provider', (t) => {
  const info = fer.info();
  t.is(info.provider, 'cpu');
  t.is(info.detector, 'multi');
  t.deepEqual(info.labels, labelNames(7));
  t.deepEqual(info.config, config);
  t.deepEqual(info.training, { note: 'test fixture' });
  t.is(info.members, undefined);
});

test('info: an ensemble says how many models it averages', async (t) => {
  const file = join(dir, 'ensemble.onnx');
  const arch = buildArchitecture(config);
  writeFileSync(
    file,
    exportOnnx(config, [initWeights(arch, 3), initWeights(arch, 4)], {
      labels: labelNames(7),
      training: { note: 'test fixture' },
    }),
  );
  const ensemble = await FER.load({ model: file, device: 'cpu' });
  try {
    t.is(ensemble.info().members, 2);
    const {
      faces: [face],
    } = await ensemble.predict(
      { data: pattern(48, 48, 1, 5), width: 48, height: 48, channels: 1 },
      { embeddings: true },
    );
    t.true(Math.abs(Object.values(face.probabilities).reduce((s, p) => s + p, 0) - 1) < 1e-5);
    t.is(face.embeddings.length, 2);
  } finally {
    await ensemble.close();
  }
});

test('small images are face crops; path, Buffer and raw pixels agree', async (t) => {
  const png = await sharp(Buffer.from(pattern(48, 48, 1, 5)), { raw: { width: 48, height: 48, channels: 1 } })
    .png()
    .toBuffer();
  const file = join(dir, 'crop.png');
  writeFileSync(file, png);
  const a = await fer.predict(file);
  const b = await fer.predict(png);
  const c = await fer.predict({ data: pattern(48, 48, 1, 5), width: 48, height: 48, channels: 1 });
  t.false(a.detected);
  t.is(a.faces.length, 1);
  t.deepEqual(a.faces[0].box, { x: 0, y: 0, width: 48, height: 48 });
  t.deepEqual(b.faces[0].probabilities, a.faces[0].probabilities);
  t.deepEqual(c.faces[0].probabilities, a.faces[0].probabilities);
  const f = a.faces[0];
  t.true(labelNames(7).includes(f.label));
  t.is(f.confidence, Math.max(...Object.values(f.probabilities)));
  t.is(f.top.length, 3);
  t.true(Math.abs(Object.values(f.probabilities).reduce((s, p) => s + p, 0) - 1) < 1e-5);
  const e = await fer.predict(file, { embeddings: true, top: 7 });
  t.is(e.faces[0].embeddings.length, 2);
  t.is(e.faces[0].top.length, 7);
});

test('no face: said so; optionally the whole image, flagged', async (t) => {
  const blank = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#406080' } })
    .png()
    .toBuffer();
  const r = await fer.predict(blank);
  t.true(r.detected);
  t.true(r.noFace);
  t.deepEqual(r.faces, []);
  const w = await fer.predict(blank, { wholeImageFallback: true });
  t.true(w.wholeImage);
  t.is(w.faces.length, 1);
  const crop = await fer.predict(blank, { detect: false });
  t.false(crop.detected);
  t.is(crop.faces.length, 1);
});

test('timings: each stage of a prediction, on request', async (t) => {
  const scene = await sharp({ create: { width: 320, height: 240, channels: 3, background: '#406080' } })
    .png()
    .toBuffer();
  t.is((await fer.predict(scene)).timings, undefined);
  const [a, b] = await fer.predictBatch([scene, scene], { timings: true, wholeImageFallback: true });
  for (const r of [a, b]) {
    t.deepEqual(Object.keys(r.timings).sort(), ['classify', 'decode', 'detect']);
    for (const v of Object.values(r.timings)) t.true(Number.isFinite(v) && v >= 0);
    t.true(r.timings.classify > 0, 'both images were classified (whole-image fallback)');
  }
  // one batch held both images' faces: its time is each image's classify time
  t.is(a.timings.classify, b.timings.classify);
  await t.throwsAsync(() => fer.predict(scene, { timings: 'yes' }), {
    instanceOf: TypeError,
    message: /Expected boolean for options\.timings but received/,
  });
});

(haveFer ? test : test.skip)(
  `detection: a FER-2013 crop pasted into a scene is found (IoU >= 0.5)${haveFer ? '' : ` (skipped: ${ferDir} is absent)`}`,
  async (t) => {
    const placements = [
      { file: ferCrop('happy'), left: 60, top: 50, side: 120 },
      { file: ferCrop('surprise', 1), left: 250, top: 120, side: 160 },
    ];
    for (const p of placements) {
      const r = await fer.predict(await scene([p]));
      t.true(r.detected);
      t.is(r.faces.length, 1, `faces in ${p.file}`);
      const got = iou(r.faces[0].crop, { x: p.left, y: p.top, width: p.side, height: p.side });
      t.true(got >= 0.5, `IoU ${got.toFixed(2)}`);
    }
    const two = await fer.predict(await scene(placements));
    t.is(two.faces.length, 2);
    // EXIF orientation is honoured: a rotated JPEG tagged to display upright finds the same face
    const upright = await scene([placements[0]]);
    const tagged = await sharp(upright).rotate(90).withMetadata({ orientation: 8 }).jpeg().toBuffer();
    const r = await fer.predict(tagged);
    t.is(r.width, 480);
    t.is(r.faces.length, 1);
    t.true(iou(r.faces[0].crop, { x: 60, y: 50, width: 120, height: 120 }) >= 0.5);
  },
);

test('bad inputs: each a clear InputError naming it; the rest of a batch goes on', async (t) => {
  const text = join(dir, 'notes.jpg');
  writeFileSync(text, 'not an image');
  const empty = join(dir, 'empty.png');
  writeFileSync(empty, Buffer.alloc(0));
  const good = await sharp(Buffer.from(pattern(64, 64, 3, 2)), { raw: { width: 64, height: 64, channels: 3 } })
    .jpeg()
    .toBuffer();
  const truncated = join(dir, 'truncated.jpg');
  writeFileSync(truncated, good.subarray(0, good.length >> 1));
  const bmp = join(dir, 'image.bmp');
  writeFileSync(bmp, Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]));
  const results = await fer.predictBatch([text, empty, join(dir, 'missing.jpg'), truncated, bmp, dir, good]);
  const messages = results.slice(0, 6).map((r) => (r instanceof InputError ? r.message : 'no error'));
  t.regex(messages[0], /notes\.jpg: not an image, or an unsupported format/);
  t.regex(messages[1], /empty\.png: empty file/);
  t.regex(messages[2], /missing\.jpg: file not found/);
  t.regex(messages[3], /truncated\.jpg: cannot decode image/);
  t.regex(messages[4], /image\.bmp: not an image, or an unsupported format/);
  t.regex(messages[5], /is a folder/);
  t.false(results[6] instanceof Error);
  t.is(results[6].faces.length, 1);
  await t.throwsAsync(() => fer.predict({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }), {
    instanceOf: InputError,
    message: /expected 48 bytes/,
  });
  await t.throwsAsync(() => fer.predict(42), { instanceOf: TypeError });
});

test('a 50-megapixel image is shrunk on load, not a crash', async (t) => {
  const big = await sharp({ create: { width: 8660, height: 5780, channels: 3, background: '#808080' } })
    .jpeg({ quality: 50 })
    .toBuffer();
  const r = await fer.predict(big, { wholeImageFallback: true });
  t.is(r.width, 8660);
  t.is(r.height, 5780);
  t.true(r.noFace);
});

test('model loading errors say what to do', async (t) => {
  await t.throwsAsync(() => FER.load({ model: join(dir, 'nope.onnx') }), {
    message: /Model file not found: .*nope\.onnx/,
  });
  const junk = join(dir, 'junk.onnx');
  writeFileSync(junk, 'garbage');
  await t.throwsAsync(() => FER.load({ model: junk }), {
    message: /junk\.onnx is not an ONNX model|junk\.onnx has no/,
  });
  const foreign = new URL('../models/blazeface/face_detection_short_range_128.onnx', import.meta.url).pathname;
  await t.throwsAsync(() => FER.load({ model: foreign }), { message: /has no 'adcorre\.config' metadata/ });
  await t.throwsAsync(() => FER.load({ model: modelPath, device: 'tpu' }), {
    instanceOf: RangeError,
    message: /Expected 'auto', 'cpu', 'cuda' or 'webgpu' for options\.device but received 'tpu'/,
  });
  if (!existsSync(new URL('../models/adcorre-fer2013.onnx', import.meta.url))) {
    await t.throwsAsync(() => FER.load(), { instanceOf: NoModelError, message: /No trained model is installed/ });
  }
  // bundled models by name: each resolves to its file under models/; a missing one says which file to reinstall
  for (const [name, file] of Object.entries(BUNDLED_MODELS)) {
    t.true(file.endsWith(`models/adcorre-${name}.onnx`), file);
    if (existsSync(file)) {
      const fer = await FER.load({ model: name, device: 'cpu' });
      t.is(fer.info().model, file);
      // the FER+ model has FER+'s eighth class
      t.is(fer.info().labels.length, name === 'ferplus' ? 8 : 7, name);
      t.is(fer.info().labels.includes('contempt'), name === 'ferplus', name);
      await fer.close();
    } else
      await t.throwsAsync(() => FER.load({ model: name }), {
        instanceOf: NoModelError,
        message: new RegExp(`reinstall the package, which ships the trained .*models/adcorre-${name}\\.onnx`),
      });
  }
  await t.throwsAsync(() => FER.load({ model: 'fer+' }), {
    message:
      /Model file not found: fer\+ \(expected a path to an ONNX model or a bundled model's name: fer2013, ferplus\)/,
  });
  if (!existsSync('/dev/nvidia0')) {
    await t.throwsAsync(() => FER.load({ model: modelPath, device: 'cuda' }), {
      message: /cuda execution provider cannot run here/,
    });
  }
});

const cli = (args) =>
  promisify(execFile)(process.execPath, [new URL('../bin/adcorre-predict.js', import.meta.url).pathname, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('adcorre-predict: table, JSON lines, annotate, exit codes', async (t) => {
  const inputs = join(dir, 'cli');
  const crop = join(inputs, 'face.png');
  await sharp(Buffer.from(pattern(48, 48, 1, 9)), { raw: { width: 48, height: 48, channels: 1 } })
    .png()
    .toFile(crop)
    .catch(async () => {
      (await import('node:fs')).mkdirSync(inputs, { recursive: true });
      await sharp(Buffer.from(pattern(48, 48, 1, 9)), { raw: { width: 48, height: 48, channels: 1 } })
        .png()
        .toFile(crop);
    });
  const ok = await cli([crop, '--model', modelPath]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /face\.png\twhole image\t(neutral|happy|sad|surprise|fear|disgust|anger) \d+\.\d%/);
  const json = await cli([inputs, '--model', modelPath, '--json', '--top', '2']);
  t.is(json.code, 0);
  const line = JSON.parse(json.stdout.trim().split('\n')[0]);
  t.is(line.faces[0].top.length, 2);
  writeFileSync(join(inputs, 'broken.jpg'), 'nope');
  const annotated = join(dir, 'annotated');
  const partial = await cli([inputs, join(dir, 'absent.jpg'), '--model', modelPath, '--annotate', annotated]);
  t.is(partial.code, 1);
  t.regex(partial.stderr, /broken\.jpg: not an image/);
  t.regex(partial.stderr, /absent\.jpg: no such file/);
  t.regex(partial.stdout, /face\.png/);
  t.true(existsSync(join(annotated, 'face.annotated.png')));
  const noModel = await cli([crop, '--model', join(dir, 'none.onnx')]);
  t.is(noModel.code, 2);
  t.regex(noModel.stderr, /Model file not found/);
  t.is((await cli([])).code, 2);
  t.is((await cli([crop, '--top', '0', '--model', modelPath])).code, 2);
  t.is((await cli([crop, '--device', 'tpu'])).code, 2);
});
