// A copy of a photo with each face's box and label drawn on it (an SVG
// overlay composited by sharp), written atomically. Boxes are clipped to the
// image; labels are placed by placeLabels() (labels.ts): inside the image, on
// no other label and no other face where that can be avoided.
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { ensureDir, writeFileAtomic } from '../io.js';
import type { PredictResult } from './fer.js';
import { clipBox, placeLabels } from './labels.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Box and label colours, one per face in turn, so that a label is told apart from its neighbours' */
const COLOURS = ['#ffd400', '#00e5ff', '#ff6ec7', '#7cff4f', '#ff9b3d', '#b69cff'];
/** A monospace font: a label's width is its length times CHAR_WIDTH font sizes, wherever it is drawn */
const FONT = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace";
const CHAR_WIDTH = 0.61;

export interface OverlayOptions {
  /** runner-up labels listed under each face's label (default 0) */
  runnersUp?: number;
}

/** Text size for an image: readable when the picture is shown at screen size, smaller in a crowd of small faces. */
export function labelFontSize(width: number, height: number, faceWidths: number[]): number {
  const base = Math.max(11, Math.round(Math.min(width, height) / 30));
  if (faceWidths.length < 2) return base;
  const median = [...faceWidths].sort((a, b) => a - b)[faceWidths.length >> 1];
  return Math.max(11, Math.min(base, Math.round(median / 5)));
}

export function overlaySvg(result: PredictResult, options: OverlayOptions = {}): string {
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
        `height="${Math.max(0, c.height - stroke).toFixed(1)}" fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="${stroke}"/>`,
    );
  });
  labels.forEach((r, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const { main, more } = texts[i];
    parts.push(
      `<rect x="${r.x.toFixed(1)}" y="${r.y.toFixed(1)}" width="${r.width.toFixed(1)}" height="${r.height.toFixed(1)}" ` +
        `fill="#000" fill-opacity="0.72" stroke="${colour}" stroke-width="1"/>` +
        `<text x="${(r.x + pad).toFixed(1)}" y="${(r.y + pad + font * 0.9).toFixed(1)}" font-family="${FONT}" font-size="${font}" ` +
        `fill="${colour}">${escape(main)}</text>` +
        (more
          ? `<text x="${(r.x + pad).toFixed(1)}" y="${(r.y + pad + font * 1.15 + small * 0.9).toFixed(1)}" font-family="${FONT}" ` +
            `font-size="${small}" fill="#e8e8e8">${escape(more)}</text>`
          : ''),
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** Writes <dir>/<name>.annotated.<ext> (JPEG or PNG) and returns its path. */
export async function annotate(
  input: string | Uint8Array,
  result: PredictResult,
  dir: string,
  index = 0,
  options: OverlayOptions = {},
): Promise<string> {
  ensureDir(dir, 'the annotation folder'); // fails fast on /proc and the like, where a recursive mkdir hangs
  const stem = typeof input === 'string' ? basename(input, extname(input)) : `image-${index}`;
  const png = typeof input === 'string' && extname(input).toLowerCase() === '.png';
  const out = join(dir, `${stem}.annotated.${png ? 'png' : 'jpg'}`);
  const image = sharp(input)
    .rotate()
    .composite([{ input: Buffer.from(overlaySvg(result, options)), top: 0, left: 0 }]);
  writeFileAtomic(out, await (png ? image.png() : image.jpeg({ quality: 90 })).toBuffer());
  return out;
}
