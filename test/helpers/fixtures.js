// Dataset fixtures made by the tests themselves (no dataset files are committed).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { labelNames } from 'adcorre-native/internal';

export function tempDir(prefix = 'adcorre-test-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A deterministic smooth image (w x h x channels bytes). */
export function pattern(w, h, channels, seed) {
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < channels; c++) {
        out[(y * w + x) * channels + c] =
          (Math.sin((x + seed) * 0.3 + c) * 60 + Math.cos((y - seed) * 0.2) * 60 + 128) & 255;
      }
    }
  }
  return out;
}

export async function writeImage(path, { w = 48, h = 48, channels = 1, seed = 0, format = 'jpeg' } = {}) {
  mkdirSync(dirname(path), { recursive: true });
  const img = sharp(Buffer.from(pattern(w, h, channels, seed)), { raw: { width: w, height: h, channels } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 95 })).toFile(path);
}

/** A JPEG cut in half, a zero-byte file and a text file named .jpg. */
export async function writeBrokenImages(dir) {
  mkdirSync(dir, { recursive: true });
  const good = await sharp(Buffer.from(pattern(64, 64, 3, 1)), { raw: { width: 64, height: 64, channels: 3 } })
    .jpeg()
    .toBuffer();
  writeFileSync(join(dir, 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 2)));
  writeFileSync(join(dir, 'empty.jpg'), Buffer.alloc(0));
  writeFileSync(join(dir, 'text.jpg'), 'this is not an image\n');
}

/** FER-2013 CSV text: rows of [emotion, pixels (array or string), usage]. */
export function fer2013Csv(rows) {
  return `emotion,pixels,Usage\n${rows.map(([e, p, u]) => `${e},${Array.isArray(p) ? p.join(' ') : p},${u}`).join('\n')}\n`;
}

export function ferPixels(seed) {
  return Array.from(pattern(48, 48, 1, seed));
}

/**
 * An image-folder dataset under `root`: for each [split, per] of `splits`, `per` 40 x 40 PNGs in each of the 7
 * labels' folders (root/split/label/i.png, image i of label c drawn with seed c x 10 + i); returns `root`.
 */
export async function writeImageFolder(root, splits) {
  for (const [split, per] of splits)
    for (const [c, label] of labelNames(7).entries())
      for (let i = 0; i < per; i++)
        await writeImage(join(root, split, label, `${i}.png`), { w: 40, h: 40, seed: c * 10 + i, format: 'png' });
  return root;
}

/**
 * A side x side RGB PNG of high-frequency noise, in which no face is found: a labelled photo written to a
 * manifest `path,label` with `label`. Returns the manifest's path.
 */
export async function writeFacelessManifest(dir, side, label) {
  const noise = join(dir, 'noise.png');
  await sharp(Buffer.from(Uint8Array.from({ length: side * side * 3 }, (_, i) => (i * 7919) % 256)), {
    raw: { width: side, height: side, channels: 3 },
  })
    .png()
    .toFile(noise);
  const manifest = join(dir, 'photos.csv');
  writeFileSync(manifest, `path,label\n${noise},${label}\n`);
  return { noise, manifest };
}
