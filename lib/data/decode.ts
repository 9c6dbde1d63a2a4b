// From a sample reference to decoded 8-bit pixels of the model's channels.
// Files are decoded by the one image decoder (lib/image.ts), large ones shrunk
// and grey taken as lib/pixels.ts does it: the same pixels prediction gets
// from the same file (test/eval-predict.test.js holds the two together).
import type { Box, PixelStore, SampleRef } from './dataset.js';
import { storeImage } from './dataset.js';
import type { SkipReason } from './skips.js';
import { decodeImage, ImageDecodeError, type RgbImage } from '../image.js';
import { greyBytes, resampleWindow } from '../pixels.js';
import { InputFileProblem, MAX_IMAGE_FILE_BYTES, notUtf8Hint, readInputFile } from '../input-file.js';

export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** A sample that cannot be used, and why. */
export class SampleError extends Error {
  constructor(
    readonly reason: SkipReason,
    detail: string,
  ) {
    super(detail);
  }
}

/** Interleaved RGB of 1-, 3- or 4-channel pixels (grey repeated, alpha dropped). */
function rgbOf(image: RawImage): Uint8Array {
  if (image.channels === 3) return image.data;
  const n = image.width * image.height,
    k = image.channels;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const p = i * k;
    rgb[3 * i] = image.data[p];
    rgb[3 * i + 1] = image.data[k === 1 ? p : p + 1];
    rgb[3 * i + 2] = image.data[k === 1 ? p : p + 2];
  }
  return rgb;
}

/** RGB (bytes, or resampled floats in 0-255) as 1 or 3 channels of bytes. */
function bytesOf(rgb: Uint8Array | Float32Array, width: number, height: number, channels: 1 | 3): RawImage {
  if (channels === 1) return { data: greyBytes(rgb, width * height), width, height, channels };
  const data = rgb instanceof Uint8Array ? rgb : Uint8Array.from(rgb, (v) => Math.round(v));
  return { data, width, height, channels };
}

/** The whole image at size x size by the one resampler (area average when shrinking), its channels kept. */
export function toInputSize(image: RawImage, size: number): RawImage {
  const { width, height } = image;
  if (width === size && height === size) return image;
  const resized = resampleWindow(rgbOf(image), width, height, { x: 0, y: 0, width, height }, size, size);
  return bytesOf(resized, size, size, image.channels === 1 ? 1 : 3);
}

/**
 * Decoded RGB as the loader keeps it: an image over twice the input size on its longer side
 * area-averaged to size x size (the training warp, bilinear, would alias past 2x; the whole
 * image fills the square, as sharp's resize did before), then the model's channels as bytes.
 */
export function toInputPixels(image: RgbImage, size: number, channels: 1 | 3): RawImage {
  const { rgb, width, height } = image;
  if (Math.max(width, height) <= 2 * size) return bytesOf(rgb, width, height, channels);
  const resized = resampleWindow(rgb, width, height, { x: 0, y: 0, width, height }, size, size);
  return bytesOf(resized, size, size, channels);
}

async function decodeFile(path: string, box: Box | undefined, size: number, channels: 1 | 3): Promise<RawImage> {
  let bytes: Buffer;
  try {
    // a regular file only: a manifest row naming /dev/zero would be read forever, a named pipe waited on
    bytes = await readInputFile(path, MAX_IMAGE_FILE_BYTES, 'an image file');
  } catch (err) {
    if (!(err instanceof InputFileProblem)) throw err;
    const reason: SkipReason =
      err.kind === 'missing'
        ? notUtf8Hint(path)
          ? 'unusable file name'
          : 'missing file'
        : err.kind === 'folder' || err.kind === 'not regular'
          ? 'not a regular file'
          : /ELOOP/.test(err.reason)
            ? 'broken link'
            : 'corrupt image';
    throw new SampleError(reason, err.reason);
  }
  if (bytes.length === 0) throw new SampleError('empty file', 'zero bytes');
  try {
    return toInputPixels(await decodeImage(bytes, box ? { box } : {}), size, channels);
  } catch (err) {
    if (!(err instanceof ImageDecodeError)) throw err;
    throw new SampleError(err.kind === 'box outside image' ? 'box outside image' : 'corrupt image', err.message);
  }
}

/** Decoded pixels of a sample: from the split's store, or from its file. */
export async function decodeSample(
  ref: SampleRef,
  store: PixelStore | undefined,
  size: number,
  channels: 1 | 3,
): Promise<RawImage> {
  if (typeof ref.source === 'number') {
    const image = store ? storeImage(store, ref.source) : null;
    if (!image) throw new SampleError('corrupt image', 'not in the decoded store');
    return image;
  }
  return decodeFile(ref.source, ref.box, size, channels);
}
