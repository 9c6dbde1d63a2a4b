// User inputs for prediction: a path, an encoded image in a Buffer, or raw
// pixels, as RGB. Files and Buffers go through the one image decoder
// (lib/image.ts, which the training loader uses too: EXIF orientation
// honoured, very large images shrunk on load); raw pixels are only made RGB,
// and shrunk by the one resampler (lib/pixels.ts) when very large (by sharp
// beyond the resampler's 65536 px on a side). decodedInOrder decodes a batch
// of inputs a few at a time.
import { decodeImage, ImageDecodeError, MAX_INPUT_PIXELS, MAX_WORKING_SIDE, workingSide } from '../image.js';
import sharp from 'sharp';
import { resampleWindow } from '../pixels.js';
import { InputFileProblem, MAX_IMAGE_FILE_BYTES, readInputFile } from '../input-file.js';
import { printable } from '../terminal.js';

export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export type ImageInput = string | Uint8Array | RawPixels;

/**
 * An input that cannot be used, with the reason a user can act on. `source`
 * is the name exactly as given; the message shows it through printable(), as
 * a file name may hold escape sequences or newlines that a terminal would obey.
 */
export class InputError extends Error {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${printable(source)}: ${reason}`);
    this.name = 'InputError';
  }
}

export { MAX_INPUT_PIXELS, MAX_WORKING_SIDE, workingSide };

export interface DecodedImage {
  source: string;
  /** RGB, interleaved */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** size before any shrinking */
  originalWidth: number;
  originalHeight: number;
}

export function describeInput(input: ImageInput, index = 0): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return `buffer #${index}`;
  return `pixels #${index}`;
}

export async function decodeInput(input: ImageInput, source = describeInput(input)): Promise<DecodedImage> {
  let bytes: Uint8Array;
  if (typeof input === 'string') {
    try {
      // a regular file only, of a size an image can have: /dev/zero would be read forever, a named pipe waited on
      bytes = await readInputFile(input, MAX_IMAGE_FILE_BYTES, 'an image file');
    } catch (err) {
      if (err instanceof InputFileProblem) throw new InputError(source, err.reason);
      throw err;
    }
  } else if (input instanceof Uint8Array) {
    bytes = input;
  } else if (input && typeof input === 'object' && input.data instanceof Uint8Array) {
    const { width, height, channels } = input;
    if (
      !Number.isInteger(width) ||
      !Number.isInteger(height) ||
      width < 1 ||
      height < 1 ||
      ![1, 3, 4].includes(channels)
    ) {
      throw new InputError(
        source,
        `raw pixels need positive integer width and height and channels 1, 3 or 4; received ${width}x${height}x${channels}`,
      );
    }
    if (input.data.length !== width * height * channels) {
      throw new InputError(
        source,
        `raw pixels: expected ${width * height * channels} bytes (width*height*channels), received ${input.data.length}`,
      );
    }
    return { source, ...(await rgbOfRaw(input)) };
  } else {
    throw new TypeError(
      `Expected a file path, a Buffer or { data, width, height, channels } for input but received ${typeof input}`,
    );
  }
  return decodeBytes(bytes, source);
}

/** Encoded bytes through the one decoder, its failures as InputErrors a user can act on. */
async function decodeBytes(bytes: Uint8Array, source: string): Promise<DecodedImage> {
  if (bytes.length === 0) throw new InputError(source, 'empty file (0 bytes)');
  try {
    return { source, ...(await decodeImage(bytes)) };
  } catch (err) {
    if (!(err instanceof ImageDecodeError)) throw err;
    if (err.kind === 'unsupported format')
      throw new InputError(
        source,
        'not an image, or an unsupported format (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIF, SVG are read)',
      );
    if (err.kind === 'too many pixels')
      throw new InputError(source, `image larger than ${MAX_INPUT_PIXELS / 1e6} megapixels`);
    throw new InputError(source, `cannot decode image (${err.message})`);
  }
}

/**
 * Raw pixels as RGB; over MAX_WORKING_SIDE on the longer side, area-averaged to workingSide() as
 * a file would be shrunk on load. (No call into sharp: one costs more than the classifier on a
 * face crop, 2.5-5 ms against 2.4 ms on the development machine; only beyond the resampler's side.)
 */
async function rgbOfRaw(raw: RawPixels): Promise<Omit<DecodedImage, 'source'>> {
  const { width, height } = raw;
  const rgb = toRgb(raw);
  const longer = Math.max(width, height);
  if (longer <= MAX_WORKING_SIDE) return { rgb, width, height, originalWidth: width, originalHeight: height };
  const scale = workingSide(longer) / longer;
  const w = Math.max(1, Math.round(width * scale)),
    h = Math.max(1, Math.round(height * scale));
  return {
    rgb:
      longer <= MAX_RESAMPLER_SIDE
        ? resampled(rgb, width, height, w, h)
        : await shrunkBySharp(rgb, width, height, w, h),
    width: w,
    height: h,
    originalWidth: width,
    originalHeight: height,
  };
}

/** The resampler's longest side (native/napi: sw, sh <= 65536). */
const MAX_RESAMPLER_SIDE = 2 ** 16;

function resampled(rgb: Uint8Array, width: number, height: number, w: number, h: number): Uint8Array {
  const shrunk = resampleWindow(rgb, width, height, { x: 0, y: 0, width, height }, w, h);
  return Uint8Array.from(shrunk, (v) => Math.round(v));
}

/** A raw image with a side beyond the resampler's (a 100000x16 strip) shrunk by sharp, as a file of its size is. */
async function shrunkBySharp(
  rgb: Uint8Array,
  width: number,
  height: number,
  w: number,
  h: number,
): Promise<Uint8Array> {
  const data = await sharp(rgb, { raw: { width, height, channels: 3 }, limitInputPixels: false })
    .resize(w, h, { fit: 'fill' })
    .raw()
    .toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** Interleaved RGB from raw pixels: grey repeated, alpha dropped (as sharp's removeAlpha). */
function toRgb({ data, width, height, channels }: RawPixels): Uint8Array {
  if (channels === 3) return data;
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const grey = channels === 1;
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    rgb[3 * i] = data[p];
    rgb[3 * i + 1] = grey ? data[p] : data[p + 1];
    rgb[3 * i + 2] = grey ? data[p] : data[p + 2];
  }
  return rgb;
}

/**
 * The inputs decoded in order, at most `concurrency` at a time (so memory holds a few decoded images, not all),
 * each with its decoding time. An input that cannot be decoded comes back as its InputError, whatever failed
 * (a raw image the resampler refuses included): one bad input never costs the others their results.
 */
export async function* decodedInOrder(
  inputs: readonly ImageInput[],
  concurrency: number,
): AsyncGenerator<{ image: DecodedImage | InputError; ms: number }> {
  const start = (i: number) => {
    const t0 = performance.now();
    const source = describeInput(inputs[i], i);
    return decodeInput(inputs[i], source).then(
      (image) => ({ image, ms: performance.now() - t0 }),
      (err: unknown) => ({
        image:
          err instanceof InputError ? err : new InputError(source, `cannot use it: ${(err as Error)?.message ?? err}`),
        ms: performance.now() - t0,
      }),
    );
  };
  const window: ReturnType<typeof start>[] = [];
  let next = 0;
  while (next < inputs.length && window.length < concurrency) window.push(start(next++));
  while (window.length) {
    const done = await window.shift()!;
    if (next < inputs.length) window.push(start(next++));
    yield done;
  }
}
