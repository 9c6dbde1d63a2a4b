#!/usr/bin/env node
// Prediction speed on this machine's CPU (and any GPU provider with --device):
//  - one face crop at a time (48x48 grey raw pixels in, decode excluded), latency;
//  - batches of 32 face crops, faces/s;
//  - a whole photo: 640x480 JPEG with one face (decode + detect + classify), latency;
//  - single photos with the default model (models/adcorre-fer2013.onnx) and the default detector:
//    a 256x256 JPEG and a 12-megapixel (4000x3000) JPEG, decode + detect + classify, latency
//    (wall-clock median and best, and the process CPU time per photo, which other load on the
//    machine disturbs less), and the median of each stage (decode, detect, classify: the
//    timings option of FER.predict); goals: under 30 ms and under 150 ms.
// Preset models are untrained exports (speed does not depend on the weights); 'default' is the bundled default
// model, and a bundled model's name (fer2013, ferplus) that model.
//   node bench/predict.js [--json] [--device cpu] [--presets default,ferplus,compact,fer-48,paper] [--detector multi|full|short]
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { helpOption, printUsage } from './usage.js';
import sharp from 'sharp';
import {
  buildArchitecture,
  BUNDLED_MODELS,
  DEFAULT_MODEL,
  exportOnnx,
  FER,
  initWeights,
  labelNames,
  PRESETS,
} from '../dist/index.js';
import { resolveModel } from '../dist/infer/fer.js';

const { values: args } = parseArgs({
  options: {
    ...helpOption,
    json: { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
    presets: { type: 'string', default: 'default,compact,fer-48,paper' },
    'min-time': { type: 'string', default: '2000' },
    detector: { type: 'string', default: 'multi' },
  },
});
if (args.help) {
  printUsage(import.meta.url);
  process.exit(0);
}
const presetNames = args.presets.split(',').filter(Boolean);
const known = ['default', ...Object.keys(BUNDLED_MODELS), ...Object.keys(PRESETS)];
for (const name of presetNames)
  if (!known.includes(name)) {
    console.error(`bench/predict.js: Expected one of ${known.join(', ')} in --presets but received '${name}'`);
    process.exit(2);
  }
const minTime = Number(args['min-time']);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function timeIt(fn, stats = false) {
  for (let i = 0; i < 3; i++) await fn();
  const times = [];
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  while (times.length < 5 || (performance.now() - start < minTime && times.length < 500)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  if (!stats) return median(times);
  return { median: median(times), best: Math.min(...times), cpu: (cpu.user + cpu.system) / 1000 / times.length };
}

// A face: a FER-2013 crop from ../shared when present, else a synthetic pattern.
const fer = new URL('../../shared/data/fer2013/val/happy', import.meta.url).pathname;
const faceFile = existsSync(fer) ? join(fer, readdirSync(fer).sort()[0]) : null;
const crop = faceFile
  ? await sharp(faceFile).greyscale().raw().toBuffer()
  : Buffer.from(Array.from({ length: 48 * 48 }, (_, i) => (i * 37) % 256));
const faceImage = await sharp(crop, { raw: { width: 48, height: 48, channels: 1 } })
  .resize(180, 180)
  .toColourspace('srgb')
  .png()
  .toBuffer();
const photo = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 120, b: 100 } } })
  .composite([{ input: faceImage, left: 230, top: 120 }])
  .jpeg({ quality: 90 })
  .toBuffer();

// Single photos for the default model: a 256x256 portrait, and a 12-megapixel photo (a scene with
// texture, as a camera's JPEG has, and the face at a tenth of its height).
const portrait = await sharp({
  create: { width: 256, height: 256, channels: 3, background: { r: 90, g: 120, b: 100 } },
})
  .composite([{ input: await sharp(faceImage).resize(150, 150).toBuffer(), left: 53, top: 40 }])
  .jpeg({ quality: 90 })
  .toBuffer();
const bigW = 4000,
  bigH = 3000;
const texture = Buffer.alloc(bigW * bigH * 3);
for (let i = 0, s = 1; i < texture.length; i++) {
  s = (s * 1103515245 + 12345) & 0x7fffffff;
  const x = (i / 3) % bigW,
    y = Math.floor(i / 3 / bigW);
  texture[i] = 60 + ((x >> 5) % 7) * 12 + ((y >> 6) % 5) * 10 + ((s >> 16) & 15);
}
const big = await sharp(texture, { raw: { width: bigW, height: bigH, channels: 3 } })
  .composite([{ input: await sharp(faceImage).resize(400, 400).toBuffer(), left: 1700, top: 900 }])
  .jpeg({ quality: 90 })
  .toBuffer();

const single = [];
if (existsSync(DEFAULT_MODEL)) {
  const session = await FER.load({ device: args.device, detector: args.detector });
  for (const [name, bytes, size] of [
    ['256x256 JPEG', portrait, '256x256'],
    [`12-MP JPEG (${(big.length / 1e6).toFixed(1)} MB)`, big, `${bigW}x${bigH}`],
  ]) {
    const t = await timeIt(() => session.predict(bytes), true);
    const faces = (await session.predict(bytes)).faces.length;
    // where the time goes: the median of each stage over 15 more runs
    const stages = [];
    for (let i = 0; i < 15; i++) stages.push((await session.predict(bytes, { timings: true })).timings);
    const stage = Object.fromEntries(['decode', 'detect', 'classify'].map((k) => [k, median(stages.map((s) => s[k]))]));
    single.push({ photo: name, size, ...t, faces, stages: stage });
  }
  await session.close();
}

const rows = [];
for (const preset of presetNames) {
  // 'default' or a bundled name: the bundled model as users run it (its evaluation views included); else an untrained preset
  const { path, bundled } = resolveModel(preset === 'default' ? undefined : preset);
  const model = bundled
    ? path
    : exportOnnx(PRESETS[preset], initWeights(buildArchitecture(PRESETS[preset]), 1), {
        labels: labelNames(PRESETS[preset].classes),
      });
  const session = await FER.load({ model, device: args.device, detector: args.detector });
  const config = bundled ? session.metadata.config : PRESETS[preset];
  const pixels = { data: crop, width: 48, height: 48, channels: 1 };
  const one = await timeIt(() => session.predict(pixels));
  const batch = Array.from({ length: 32 }, () => pixels);
  const batched = await timeIt(() => session.predictBatch(batch, { faceBatch: 32 }));
  const whole = await timeIt(() => session.predict(photo));
  const found = (await session.predict(photo)).faces.length;
  rows.push({
    preset,
    config,
    provider: session.info().provider,
    faceMs: one,
    facesPerSecondBatch32: 32000 / batched,
    photoMs: whole,
    facesInPhoto: found,
  });
  await session.close();
}

if (args.json) console.log(JSON.stringify({ presets: rows, singlePhotos: single, detector: args.detector }, null, 2));
else {
  if (single.length) {
    console.log(`single photos, default model, detector ${args.detector} (decode + detect + classify)`);
    console.log(
      'photo                     median      best   CPU/photo  faces   stages (medians): decode  detect  classify',
    );
    for (const r of single)
      console.log(
        `${r.photo.padEnd(24)} ${r.median.toFixed(1).padStart(7)} ms ${r.best.toFixed(1).padStart(6)} ms ${r.cpu.toFixed(1).padStart(7)} ms  ${String(r.faces).padEnd(5)}` +
          `                   ${r.stages.decode.toFixed(1).padStart(6)} ${r.stages.detect.toFixed(1).padStart(7)} ${r.stages.classify.toFixed(1).padStart(9)} ms`,
      );
  } else console.log(`single photos: skipped (no default model at ${DEFAULT_MODEL})`);
  console.log(
    `prediction speed (${faceFile ? 'a FER-2013 face' : 'a synthetic face'}; presets with untrained weights, default: the bundled model)`,
  );
  console.log('preset    input        provider  one face  batch of 32     photo 640x480 (decode+detect+classify)');
  for (const r of rows) {
    console.log(
      `${r.preset.padEnd(9)} ${`${r.config.inputSize}x${r.config.inputSize}x${r.config.channels}`.padEnd(12)} ${r.provider.padEnd(9)} ` +
        `${r.faceMs.toFixed(2).padStart(6)} ms ${r.facesPerSecondBatch32.toFixed(0).padStart(7)} faces/s  ${r.photoMs.toFixed(1).padStart(7)} ms (${r.facesInPhoto} face)`,
    );
  }
}
