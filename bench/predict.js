#!/usr/bin/env node
// Prediction speed on this machine's CPU (and any GPU provider with --device):
//  - one face crop at a time (48x48 grey raw pixels in, decode excluded), latency;
//  - batches of 32 face crops, faces/s;
//  - a whole photo: 640x480 JPEG with one face (decode + detect + classify), latency.
// Models are untrained exports of each preset (speed does not depend on the weights).
//   node bench/predict.js [--json] [--device cpu] [--presets compact,fer-48,paper]
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { buildArchitecture, exportOnnx, FER, initWeights, labelNames, PRESETS } from '../dist/index.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    device: { type: 'string', default: 'cpu' },
    presets: { type: 'string', default: 'compact,fer-48,paper' },
    'min-time': { type: 'string', default: '2000' },
  },
});
const minTime = Number(args['min-time']);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function timeIt(fn) {
  for (let i = 0; i < 3; i++) await fn();
  const times = [];
  const start = performance.now();
  while (times.length < 5 || (performance.now() - start < minTime && times.length < 500)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
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

const rows = [];
for (const preset of args.presets.split(',')) {
  const config = PRESETS[preset];
  const model = exportOnnx(config, initWeights(buildArchitecture(config), 1), { labels: labelNames(config.classes) });
  const session = await FER.load({ model, device: args.device });
  const pixels = { data: crop, width: 48, height: 48, channels: 1 };
  const one = await timeIt(() => session.predict(pixels));
  const batch = Array.from({ length: 32 }, () => pixels);
  const batched = await timeIt(() => session.predictBatch(batch, { batch: 32 }));
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

if (args.json) console.log(JSON.stringify(rows, null, 2));
else {
  console.log(`prediction speed (${faceFile ? 'a FER-2013 face' : 'a synthetic face'}; untrained weights)`);
  console.log('preset    input        provider  one face  batch of 32     photo 640x480 (decode+detect+classify)');
  for (const r of rows) {
    console.log(
      `${r.preset.padEnd(9)} ${`${r.config.inputSize}x${r.config.inputSize}x${r.config.channels}`.padEnd(12)} ${r.provider.padEnd(9)} ` +
        `${r.faceMs.toFixed(2).padStart(6)} ms ${r.facesPerSecondBatch32.toFixed(0).padStart(7)} faces/s  ${r.photoMs.toFixed(1).padStart(7)} ms (${r.facesInPhoto} face)`,
    );
  }
}
