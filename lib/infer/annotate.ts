// A copy of a photo with each face's box and label drawn on it (an SVG
// overlay composited by sharp), written atomically.
import { basename, extname, join } from 'node:path';
import sharp from 'sharp';
import { ensureDir, writeFileAtomic } from '../io.js';
import type { PredictResult } from './fer.js';

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function overlaySvg(result: PredictResult): string {
  const { width, height } = result;
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 200));
  const font = Math.max(12, Math.round(Math.min(width, height) / 30));
  const parts = result.faces.map((f) => {
    const b = f.box;
    const text = `${escape(f.label)} ${(f.confidence * 100).toFixed(0)}%`;
    const ty = b.y > font + 4 ? b.y - 4 : b.y + b.height + font;
    return (
      `<rect x="${b.x.toFixed(1)}" y="${b.y.toFixed(1)}" width="${b.width.toFixed(1)}" height="${b.height.toFixed(1)}" ` +
      `fill="none" stroke="#ffd400" stroke-width="${stroke}"/>` +
      `<text x="${b.x.toFixed(1)}" y="${ty.toFixed(1)}" font-family="sans-serif" font-size="${font}" fill="#ffd400" ` +
      `stroke="#000" stroke-width="${Math.max(1, stroke / 2)}" paint-order="stroke">${text}</text>`
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
): Promise<string> {
  ensureDir(dir, 'the annotation folder'); // fails fast on /proc and the like, where a recursive mkdir hangs
  const stem = typeof input === 'string' ? basename(input, extname(input)) : `image-${index}`;
  const png = typeof input === 'string' && extname(input).toLowerCase() === '.png';
  const out = join(dir, `${stem}.annotated.${png ? 'png' : 'jpg'}`);
  const image = sharp(input)
    .rotate()
    .composite([{ input: Buffer.from(overlaySvg(result)), top: 0, left: 0 }]);
  writeFileAtomic(out, await (png ? image.png() : image.jpeg({ quality: 90 })).toBuffer());
  return out;
}
