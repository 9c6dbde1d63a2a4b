// adcorre-data align <photos> --out <folder>: training crops from photos, made
// exactly as prediction makes them (the same detector, the largest face, the
// same alignment and resampling: lib/infer/align.ts), written as an image
// folder (split/class/name.png) that adcorre-train and adcorre-eval read. A run again into the same --out keeps
// the crops already made (an interrupted run goes on where it stopped).
import { closeSync, lstatSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import sharp from 'sharp';
import { type Command, InvalidArgumentError } from 'commander';
import { type Dataset, DATASET_FORMATS, type SampleRef } from '../data/dataset.js';
import { EXPRESSIONS } from '../data/labels.js';
import { openDataset } from '../data/open.js';
import { checkDatasetPath } from '../data/readers/files.js';
import { faceSquare, faceTensor, largestBy } from '../infer/align.js';
import { FaceDetector } from '../infer/detect.js';
import { decodeInput, InputError } from '../infer/image.js';
import { ensureDir, pathInside, writeFileAtomic } from '../io.js';
import { printable } from '../terminal.js';
import { parseDigits } from '../validate.js';

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

/**
 * Each photo's crop, decided by the dataset alone: split/class/name.png, name-2.png for a second photo of that
 * name in the folder, and so on, in the dataset's order; never by what is on disk, so that a run again into the
 * same --out finds the crops of the first (issue #43: they were written again as name-2.png). A split that
 * cannot be a folder name inside --out (a manifest's '../../escaped') gives the reason instead of a path.
 */
function cropPaths(dataset: Dataset, out: string): Map<SampleRef, string | Error> {
  const paths = new Map<SampleRef, string | Error>();
  const taken = new Set<string>();
  for (const [split, { samples }] of dataset.splits) {
    for (const s of samples) {
      if (typeof s.source !== 'string') continue;
      let folder: string;
      try {
        folder = pathInside(out, split, EXPRESSIONS[s.label]);
      } catch (err) {
        paths.set(s, err as Error);
        continue;
      }
      const stem = basename(s.source, extname(s.source));
      let path = join(folder, `${stem}.png`);
      for (let i = 2; taken.has(path); i++) path = join(folder, `${stem}-${i}.png`);
      taken.add(path);
      paths.set(s, path);
    }
  }
  return paths;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Whether `crop` holds what this run would write there: a PNG of the size and colour asked for (8-bit grey or
 * RGB, read from its header), made after its photo last changed. Such a crop is kept; any other is replaced.
 */
function cropDone(crop: string, photo: string, size: number, channels: 1 | 3): boolean {
  try {
    const st = lstatSync(crop);
    if (!st.isFile() || st.mtimeMs < statSync(photo).mtimeMs) return false;
    const head = Buffer.alloc(26);
    const fd = openSync(crop, 'r');
    try {
      readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
    const colour = channels === 1 ? 0 : 2;
    return (
      head.subarray(0, 8).equals(PNG_SIGNATURE) &&
      head.toString('latin1', 12, 16) === 'IHDR' &&
      head.readUInt32BE(16) === size &&
      head.readUInt32BE(20) === size &&
      head[24] === 8 &&
      head[25] === colour
    );
  } catch {
    return false;
  }
}

/**
 * Ctrl-C (or SIGTERM) while aligning: the photo in hand is finished (its crop written whole, atomically), then
 * the run stops and says what it did; a second one quits at once (a crop is written synchronously: none is left
 * half-written). `stopping()` says whether to stop; `release()` removes the handlers.
 */
function interruptible(): { stopping: () => boolean; release: () => void } {
  let asked = false;
  const onSignal = () => {
    if (asked) process.exit(130);
    asked = true;
    process.stderr.write('\nadcorre-data: interrupted: stopping after this photo (again to quit at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stopping: () => asked,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

interface Tally {
  total: number;
  written: number;
  kept: number;
  noFace: number;
  unreadable: number;
  /** samples whose split cannot be a folder name, with the first reason */
  badSplit: number;
  badSplitReason?: string;
}

/** The run's summary line: what was written, kept and left out, and after an interrupt how to go on. */
function summary(t: Tally, o: AlignOptions, out: string, interruptedAt?: number): string {
  const parts = [
    `${t.written} aligned ${o.size}x${o.size} crops of ${t.total} photos in ${printable(out)}`,
    t.kept ? `${t.kept} already there (kept)` : '',
    t.noFace ? `no face found in ${t.noFace}` : '',
    t.unreadable ? `${t.unreadable} could not be read` : '',
    t.badSplit ? `${t.badSplit} left out, their split not a folder name (${printable(t.badSplitReason ?? '')})` : '',
  ];
  const line = parts.filter(Boolean).join('; ');
  if (interruptedAt === undefined) return `${line}\n`;
  return (
    `interrupted after ${interruptedAt} of ${t.total} photos: ${line}\n` +
    'run the same command again to go on: the crops written are kept\n'
  );
}

async function align(path: string, o: AlignOptions): Promise<number> {
  // the photos first, at once: a missing path, a device or a named pipe is refused (naming it) before the
  // output folder is made and the detector loaded
  checkDatasetPath(path, '<path>', 'a folder of labelled photos or a CSV manifest');
  const dataset = await openDataset(path, { format: o.format as never, classes: 8 });
  const out = ensureDir(o.out, '--out');
  const crops = cropPaths(dataset, out);
  const detector = await FaceDetector.create({ model: 'multi' });
  const channels = o.grey ? 1 : 3;
  const planar = new Float32Array(channels * o.size * o.size);
  const made = new Set<string>(); // each split/class folder checked and made once, not once per photo
  const t: Tally = { total: 0, written: 0, kept: 0, noFace: 0, unreadable: 0, badSplit: 0 };
  const samples = [...dataset.splits.values()].flatMap((split) => split.samples);
  t.total = samples.length;
  const signals = interruptible();
  let done = 0;
  try {
    for (const s of samples) {
      if (signals.stopping()) break;
      done++;
      const crop = crops.get(s);
      if (typeof s.source !== 'string' || crop === undefined) {
        t.unreadable++;
        continue;
      }
      if (crop instanceof Error) {
        t.badSplit++;
        t.badSplitReason ??= crop.message;
        continue;
      }
      if (cropDone(crop, s.source, o.size, channels)) {
        t.kept++;
        continue;
      }
      let image;
      try {
        image = await decodeInput(s.source, s.source);
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        process.stderr.write(`adcorre-data: skipped ${printable(err.message)}\n`);
        t.unreadable++;
        continue;
      }
      const face = largestBy(await detector.detect(image.rgb, image.width, image.height), (f) => f);
      if (!face) {
        t.noFace++;
        continue;
      }
      faceTensor(image, faceSquare(face), o.size, channels, planar, 0);
      const png = await pngOf(planar, o.size, channels);
      if (!made.has(dirname(crop))) made.add(ensureDir(dirname(crop), '--out'));
      writeFileAtomic(crop, png);
      t.written++;
      if (process.stderr.isTTY && t.written % 50 === 0) process.stderr.write(`\raligned ${t.written}/${t.total}`);
    }
  } finally {
    signals.release();
    await detector.close();
  }
  if (process.stderr.isTTY) process.stderr.write('\r');
  const interrupted = signals.stopping() && done < t.total;
  process.stdout.write(summary(t, o, out, interrupted ? done : undefined));
  if (interrupted) return 130;
  return t.written + t.kept ? 0 : 1;
}

/** --size: the crop's side, in [16, 1024] pixels (a model's input is 48 to 224). */
function cropSide(value: string): number {
  const n = parseDigits(value);
  if (!(n >= MIN_CROP_SIDE && n <= MAX_CROP_SIDE))
    throw new InvalidArgumentError(`Expected an integer in [${MIN_CROP_SIDE}, ${MAX_CROP_SIDE}] (pixels).`);
  return n;
}

const MIN_CROP_SIDE = 16;
const MAX_CROP_SIDE = 1024;

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
    .option('--size <px>', `crop side in pixels, ${MIN_CROP_SIDE} to ${MAX_CROP_SIDE}`, cropSide, 48)
    .option('--no-grey', 'keep colour (default: grey, as FER-2013)')
    .action(async (path: string, opts: AlignOptions) => setStatus(await align(path, opts)));
}
