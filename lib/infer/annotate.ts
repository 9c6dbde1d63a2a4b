// A copy of a photo with each face's box and label drawn on it (an SVG
// overlay composited by sharp), written atomically. Boxes are clipped to the
// image; labels are placed by placeLabels() (labels.ts): inside the image, on
// no other label and no other face where that can be avoided.
import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { ensureDir, writeFileAtomic } from '../io.js';
import type { FaceResult, PredictResult } from './fer.js';
import { clipBox, placeLabels } from './labels.js';
import { MAX_IMAGE_FILE_BYTES, readInputFile } from '../input-file.js';
import { printable } from '../terminal.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Box and label colours, one per face in turn, so that a label is told apart from its neighbours' */
const COLOURS = ['#ffd400', '#00e5ff', '#ff6ec7', '#7cff4f', '#ff9b3d', '#b69cff'];
/** A monospace font: a label's width is its length times CHAR_WIDTH font sizes, wherever it is drawn */
const FONT = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace";
const CHAR_WIDTH = 0.61;

export interface OverlayOptions {
  /** runner-up labels listed under each face's label (default 0) */
  runnersUp?: number;
  /** each face's colour, by number (default: the faces in turn); a video gives each track its own */
  colours?: number[];
}

/** What an overlay draws: the image's size, and each face's box and labels. */
export type Overlay = Pick<PredictResult, 'width' | 'height'> & {
  faces: Pick<FaceResult, 'box' | 'label' | 'confidence' | 'top'>[];
};

export interface AnnotateOptions extends OverlayOptions {
  /**
   * the file name to write in `dir` (default: annotatedName(input)); inputs of the same name from
   * different folders need their own (annotatedNames gives one to each)
   */
  name?: string;
}

/** `<stem>.annotated.<jpg|png>`: the default name of an input's annotated copy (PNG stays PNG, all else is JPEG). */
export function annotatedName(input: string | Uint8Array, index = 0): string {
  const stem = typeof input === 'string' ? basename(input, extname(input)) : `image-${index}`;
  const png = typeof input === 'string' && extname(input).toLowerCase() === '.png';
  return `${stem}.annotated.${png ? 'png' : 'jpg'}`;
}

/**
 * One annotated-copy name per input, all different (also where only letter case differs, for file
 * systems that ignore it), and none an input's own name in `dir`: the default name where it is the
 * only one, else `<stem>-<n>.annotated.<ext>` for the second and later inputs that would share it
 * (a/x.jpg and b/x.jpg; x.jpg and x.jpeg), in input order, skipping numbers already taken.
 */
export function annotatedNames(inputs: readonly string[], dir: string): string[] {
  const key = (name: string) => name.toLowerCase();
  const taken = new Set<string>();
  // the inputs themselves, where they lie in dir: a copy never replaces a photo still to be read
  const folder = resolve(dir);
  for (const input of inputs) if (dirname(resolve(input)) === folder) taken.add(key(basename(input)));
  const wanted = inputs.map((input) => annotatedName(input));
  const counts = new Map<string, number>();
  for (const name of wanted) counts.set(key(name), (counts.get(key(name)) ?? 0) + 1);
  // names wanted once keep them; shared names go to the first input that wants them
  const out: string[] = new Array(inputs.length);
  wanted.forEach((name, i) => {
    if (counts.get(key(name)) === 1 && !taken.has(key(name))) {
      out[i] = name;
      taken.add(key(name));
    }
  });
  wanted.forEach((name, i) => {
    if (out[i] !== undefined) return;
    if (!taken.has(key(name))) {
      out[i] = name;
      taken.add(key(name));
      return;
    }
    const ext = name.slice(name.lastIndexOf('.annotated.'));
    const stem = name.slice(0, name.length - ext.length);
    let n = 2;
    while (taken.has(key(`${stem}-${n}${ext}`))) n++;
    out[i] = `${stem}-${n}${ext}`;
    taken.add(key(out[i]));
  });
  return out;
}

/** Text size for an image: readable when the picture is shown at screen size, smaller in a crowd of small faces. */
export function labelFontSize(width: number, height: number, faceWidths: number[]): number {
  const base = Math.max(11, Math.round(Math.min(width, height) / 30));
  if (faceWidths.length < 2) return base;
  const median = [...faceWidths].sort((a, b) => a - b)[faceWidths.length >> 1];
  return Math.max(11, Math.min(base, Math.round(median / 5)));
}

export function overlaySvg(result: Overlay, options: OverlayOptions = {}): string {
  const colour = (i: number) => COLOURS[(options.colours?.[i] ?? i) % COLOURS.length];
  const { width, height } = result;
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 250));
  const font = labelFontSize(
    width,
    height,
    result.faces.map((f) => f.box.width),
  );
  const small = Math.max(9, Math.round(font * 0.8));
  const pad = Math.max(2, Math.round(font * 0.2));
  const texts = result.faces.map((f) => {
    const main = `${f.label} ${(f.confidence * 100).toFixed(0)}%`;
    const more = f.top
      .slice(1, 1 + (options.runnersUp ?? 0))
      .map((t) => `${t.label} ${(t.probability * 100).toFixed(0)}%`)
      .join(' ');
    return { main, more };
  });
  const sizes = texts.map(({ main, more }) => ({
    width: Math.ceil(Math.max(main.length * font, more.length * small) * CHAR_WIDTH) + 2 * pad,
    height: Math.ceil(font * 1.15 + (more ? small * 1.15 : 0)) + 2 * pad,
  }));
  const boxes = result.faces.map((f) => f.box);
  const labels = placeLabels(boxes, sizes, { width, height });
  const parts: string[] = [];
  // boxes first, clipped to the image (the stroke drawn inside it), then the labels over them
  boxes.forEach((b, i) => {
    const c = clipBox(b, width, height);
    if (!c) return;
    const inset = stroke / 2;
    parts.push(
      `<rect x="${(c.x + inset).toFixed(1)}" y="${(c.y + inset).toFixed(1)}" width="${Math.max(0, c.width - stroke).toFixed(1)}" ` +
        `height="${Math.max(0, c.height - stroke).toFixed(1)}" fill="none" stroke="${colour(i)}" stroke-width="${stroke}"/>`,
    );
  });
  labels.forEach((r, i) => {
    const { main, more } = texts[i];
    parts.push(
      `<rect x="${r.x.toFixed(1)}" y="${r.y.toFixed(1)}" width="${r.width.toFixed(1)}" height="${r.height.toFixed(1)}" ` +
        `fill="#000" fill-opacity="0.72" stroke="${colour(i)}" stroke-width="1"/>` +
        `<text x="${(r.x + pad).toFixed(1)}" y="${(r.y + pad + font * 0.9).toFixed(1)}" font-family="${FONT}" font-size="${font}" ` +
        `fill="${colour(i)}">${escape(main)}</text>` +
        (more
          ? `<text x="${(r.x + pad).toFixed(1)}" y="${(r.y + pad + font * 1.15 + small * 0.9).toFixed(1)}" font-family="${FONT}" ` +
            `font-size="${small}" fill="#e8e8e8">${escape(more)}</text>`
          : ''),
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/**
 * Writes <dir>/<stem>.annotated.<ext> (JPEG or PNG; `options.name` to choose the name) and returns its
 * path. Several inputs of the same name (a/x.jpg, b/x.jpg) need a name each: see annotatedNames().
 */
export async function annotate(
  input: string | Uint8Array,
  result: PredictResult,
  dir: string,
  index = 0,
  options: AnnotateOptions = {},
): Promise<string> {
  ensureDir(dir, 'the annotation folder'); // fails fast on /proc and the like, where a recursive mkdir hangs
  const name = options.name ?? annotatedName(input, index);
  if (basename(name) !== name || name === '.' || name === '..')
    throw new RangeError(`Expected a file name without a folder for options.name but received '${printable(name)}'`);
  const png = name.toLowerCase().endsWith('.png');
  const out = join(dir, name);
  // the bytes read once, as a regular file (sharp given a path would read /dev/zero or a named pipe without end)
  const image = sharp(
    typeof input === 'string' ? await readInputFile(input, MAX_IMAGE_FILE_BYTES, 'an image file') : input,
  )
    .rotate()
    .composite([{ input: Buffer.from(overlaySvg(result, options)), top: 0, left: 0 }]);
  writeFileAtomic(out, await (png ? image.png() : image.jpeg({ quality: 90 })).toBuffer());
  return out;
}
