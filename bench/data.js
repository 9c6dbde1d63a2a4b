#!/usr/bin/env node
// Data-loading throughput (decode + augment + batch), the figures README reports:
//  1. FER-2013 at 48x48 grey with augmentation, from the decoded cache
//     (../shared/data/fer2013 when present, else generated 48x48 JPEGs);
//  2. 224x224 RGB from JPEG files (generated photos-like images, 256x256),
//     decoded every epoch (no cache), with augmentation.
//   node bench/data.js [--json] [--workers n] [--count n]
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { helpOption, printUsage } from './usage.js';
import sharp from 'sharp';
import { DataLoader } from '../dist/data/loader.js';
import { openDataset } from '../dist/data/open.js';

const { values: args } = parseArgs({
  options: {
    ...helpOption,
    json: { type: 'boolean', default: false },
    workers: { type: 'string', default: String(availableParallelism()) },
    count: { type: 'string', default: '1500' },
  },
});
if (args.help) {
  printUsage(import.meta.url);
  process.exit(0);
}
const workers = Number(args.workers);
const shared = new URL('../../shared/data/fer2013', import.meta.url).pathname;

async function makeJpegs(dir, count, side, channels) {
  for (const label of ['happy', 'sad', 'neutral']) mkdirSync(join(dir, label), { recursive: true });
  for (let i = 0; i < count; i++) {
    // Smooth random blobs compress like photographs, unlike white noise.
    const small = Buffer.from(Array.from({ length: 8 * 8 * channels }, () => Math.floor(Math.random() * 256)));
    await sharp(small, { raw: { width: 8, height: 8, channels } })
      .resize(side, side, { kernel: 'cubic' })
      .jpeg({ quality: 90 })
      .toFile(join(dir, ['happy', 'sad', 'neutral'][i % 3], `${i}.jpg`));
  }
}

async function throughput(split, options, epochs) {
  const loader = new DataLoader(split, { workers, ...options });
  try {
    const t0 = performance.now();
    for await (const _ of loader.epoch(0)) {
      /* warm-up: cache fill, JIT */
    }
    const warm = (performance.now() - t0) / 1000;
    let n = 0;
    const t1 = performance.now();
    for (let e = 1; e <= epochs; e++) for await (const b of loader.epoch(e)) n += b.count;
    const seconds = (performance.now() - t1) / 1000;
    return { samplesPerSecond: n / seconds, firstEpochSeconds: warm, samples: n };
  } finally {
    await loader.close();
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'adcorre-bench-'));
const rows = [];
try {
  let ferPath = shared;
  let ferNote = 'FER-2013 train (28,709 images, ../shared)';
  if (!existsSync(join(shared, 'train'))) {
    ferPath = join(tmp, 'fer');
    await makeJpegs(join(ferPath, 'train'), 5000, 48, 1);
    ferNote = '5,000 generated 48x48 grey JPEGs (../shared absent)';
  }
  const fer = (await openDataset(ferPath)).splits.get('train');
  const r1 = await throughput(fer, { batchSize: 256, size: 48, channels: 1, augment: true, shuffle: true }, 2);
  rows.push({ name: '48x48 grey, augmented, cached', data: ferNote, goal: 5000, ...r1 });

  const photos = join(tmp, 'photos');
  await makeJpegs(photos, Number(args.count), 256, 3);
  const split = (await openDataset(photos)).splits.get('all');
  const r2 = await throughput(
    split,
    { batchSize: 64, size: 224, channels: 3, augment: true, shuffle: true, cache: false },
    1,
  );
  rows.push({
    name: '224x224 RGB from JPEG, augmented',
    data: `${args.count} generated 256x256 JPEGs, decoded every epoch`,
    goal: 400,
    ...r2,
  });
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

if (args.json) {
  console.log(JSON.stringify({ workers, rows }, null, 2));
} else {
  console.log(`data loading, ${workers} worker threads`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(36)} ${r.samplesPerSecond.toFixed(0).padStart(7)} samples/s  (goal ${r.goal}; ` +
        `first epoch ${r.firstEpochSeconds.toFixed(1)} s; ${r.data})`,
    );
  }
}
