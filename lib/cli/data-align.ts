// adcorre-data align <photos> --out <folder>: training crops from photos, made
// exactly as prediction makes them (the same detector, the largest face, the
// same alignment and resampling: lib/infer/align.ts), written as an image
// folder (split/class/name.png) that adcorre-train and adcorre-eval read.
import { existsSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import type { Command } from 'commander';
import { DATASET_FORMATS } from '../data/dataset.js';
import { EXPRESSIONS } from '../data/labels.js';
import { openDataset } from '../data/open.js';
import { checkDatasetPath } from '../data/readers/files.js';
import { faceSquare, faceTensor, largestBy } from '../infer/align.js';
import { FaceDetector } from '../infer/detect.js';
import { decodeInput, InputError } from '../infer/image.js';
import { ensureDir, writeFileAtomic } from '../io.js';
import { printable } from '../terminal.js';
import { positiveInt } from './args.js';

interface AlignOptions {
  out: string;
  format: string;
  size: number;
  grey: boolean;
}

/** The crop as 8-bit PNG bytes: planar floats in 0-1 (1 or 3 channels) to interleaved bytes. */
async function pngOf(planar: Float32Array, size: number, channels: 1 | 3): Promise<Buffer> {
  const plane = size * size;
  const bytes = Buffer.alloc(plane * channels);
  for (let i = 0; i < plane; i++)
    for (let c = 0; c < channels; c++)
      bytes[i * channels + c] = Math.max(0, Math.min(255, Math.round(planar[c * plane + i] * 255)));
  const image = sharp(bytes, { raw: { width: size, height: size, channels } });
  // sharp writes one raw channel as sRGB unless told the colour space
  return (channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer();
}

/** A file name in the output not yet taken: name.png, else name-2.png, ... (two photos may share a name). */
function freeName(folder: string, taken: Set<string>, source: string): string {
  const stem = basename(source, extname(source));
  for (let i = 1; ; i++) {
    const name = `${stem}${i > 1 ? `-${i}` : ''}.png`;
    const path = join(folder, name);
    if (!taken.has(path) && !existsSync(path)) {
      taken.add(path);
      return path;
    }
  }
}

async function align(path: string, o: AlignOptions): Promise<number> {
  // the photos first, at once: a missing path, a device or a named pipe is refused (naming it) before the
  // output folder is made and the detector loaded
  checkDatasetPath(path, '<path>', 'a folder of labelled photos or a CSV manifest');
  const dataset = await openDataset(path, { format: o.format as never, classes: 8 });
  const out = ensureDir(o.out, '--out');
  const detector = await FaceDetector.create({ model: 'multi' });
  const channels = o.grey ? 1 : 3;
  const planar = new Float32Array(channels * o.size * o.size);
  const taken = new Set<string>();
  // each split/class folder checked and made once, not once per photo
  const folders = new Map<string, string>();
  const folderOf = (split: string, label: number) => {
    const rel = join(split, EXPRESSIONS[label]);
    let folder = folders.get(rel);
    if (folder === undefined) folders.set(rel, (folder = ensureDir(join(out, rel), '--out')));
    return folder;
  };
  let written = 0,
    noFace = 0,
    unreadable = 0,
    total = 0;
  try {
    for (const [split, { samples }] of dataset.splits) {
      for (const s of samples) {
        total++;
        if (typeof s.source !== 'string') {
          unreadable++;
          continue;
        }
        let image;
        try {
          image = await decodeInput(s.source, s.source);
        } catch (err) {
          if (!(err instanceof InputError)) throw err;
          process.stderr.write(`adcorre-data: skipped ${printable(err.message)}\n`);
          unreadable++;
          continue;
        }
        const faces = await detector.detect(image.rgb, image.width, image.height);
        const face = largestBy(faces, (f) => f);
        if (!face) {
          noFace++;
          continue;
        }
        faceTensor(image, faceSquare(face), o.size, channels, planar, 0);
        writeFileAtomic(freeName(folderOf(split, s.label), taken, s.source), await pngOf(planar, o.size, channels));
        written++;
        if (process.stderr.isTTY && written % 50 === 0) process.stderr.write(`\raligned ${written}/${total}`);
      }
    }
  } finally {
    await detector.close();
  }
  if (process.stderr.isTTY) process.stderr.write('\r');
  process.stdout.write(
    `${written} aligned ${o.size}x${o.size} crops of ${total} photos in ${printable(out)}` +
      `${noFace ? `; no face found in ${noFace}` : ''}${unreadable ? `; ${unreadable} could not be read` : ''}\n`,
  );
  return written ? 0 : 1;
}

/** Adds `align` to adcorre-data; `setStatus` receives its exit status. */
export function addAlignCommand(program: Command, setStatus: (status: number) => void): void {
  program
    .command('align')
    .description(
      'aligned face crops of labelled photos, made as prediction makes them (detect, largest face, align by eyes and mouth), written as an image folder for training',
    )
    .argument('<path>', 'labelled photos: class folders (optionally under split folders) or a CSV manifest')
    .requiredOption('--out <dir>', 'output folder: split/class/name.png')
    .option('--format <format>', `dataset format (auto, ${DATASET_FORMATS.join(', ')})`, 'auto')
    .option('--size <px>', 'crop side in pixels', positiveInt, 48)
    .option('--no-grey', 'keep colour (default: grey, as FER-2013)')
    .action(async (path: string, opts: AlignOptions) => setStatus(await align(path, opts)));
}
