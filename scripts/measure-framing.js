#!/usr/bin/env node
// Where the face detector puts the eyes and mouth in FER-2013's training crops:
// the framing that alignment (lib/infer/align.ts TRAINING_FRAMING) maps real
// faces onto. Every 25th crop of each class is enlarged 4x (cubic) with 48 px
// of repeated edge around it (BlazeFace needs the face smaller than the
// picture), run through the same detector as prediction, and the keypoints are
// mapped back to 48 px coordinates. Prints medians and quartiles.
//   node scripts/measure-framing.js [--data ../shared/data/fer2013/train] [--every 25]
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { FaceDetector } from '../dist/infer/detect.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/fer2013/train' },
    every: { type: 'string', default: '25' },
  },
});
const SIDE = 48,
  UP = 4,
  PAD = 48;
const every = Number(values.every);
const detector = await FaceDetector.create({ model: 'multi' });
const rows = [];
let tried = 0;
for (const cls of readdirSync(values.data).sort()) {
  const files = readdirSync(join(values.data, cls))
    .sort()
    .filter((_, i) => i % every === 0);
  for (const file of files) {
    tried++;
    const { data, info } = await sharp(join(values.data, cls, file))
      .resize(SIDE * UP, SIDE * UP, { kernel: 'cubic' })
      .extend({ top: PAD, bottom: PAD, left: PAD, right: PAD, extendWith: 'copy' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const [face] = await detector.detect(new Uint8Array(data), info.width, info.height, { threshold: 0.5 });
    if (!face) continue;
    const back = ([x, y]) => [(x - PAD) / UP, (y - PAD) / UP];
    const [right, left, , mouth] = face.keypoints.map(back);
    const mid = [(right[0] + left[0]) / 2, (right[1] + left[1]) / 2];
    rows.push({
      eyeX: mid[0],
      eyeY: mid[1],
      eyes: Math.hypot(left[0] - right[0], left[1] - right[1]),
      toMouth: Math.hypot(mouth[0] - mid[0], mouth[1] - mid[1]),
      angle: (Math.atan2(left[1] - right[1], left[0] - right[0]) * 180) / Math.PI,
    });
  }
}
await detector.close();
const quantile = (key, q) => {
  const sorted = rows.map((r) => r[key]).sort((a, b) => a - b);
  return sorted[Math.floor(q * (sorted.length - 1))];
};
console.log(`${rows.length} of ${tried} crops with a face (every ${every}th of each class in ${values.data})`);
for (const key of ['eyeX', 'eyeY', 'eyes', 'toMouth', 'angle'])
  console.log(
    `${key.padEnd(8)} median ${quantile(key, 0.5).toFixed(2)}  quartiles ${quantile(key, 0.25).toFixed(2)} - ${quantile(key, 0.75).toFixed(2)}`,
  );
