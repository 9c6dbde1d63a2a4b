// Decoding user inputs for prediction: a path, an encoded image in a Buffer,
// or raw pixels; EXIF orientation honoured; very large images shrunk on load.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { decoderMessage } from '../validate.js';

export interface RawPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export type ImageInput = string | Uint8Array | RawPixels;

/** An input that cannot be used, with the reason a user can act on. */
export class InputError extends Error {
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super(`${source}: ${reason}`);
    this.name = 'InputError';
  }
}

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

export const MAX_INPUT_PIXELS = 120_000_000;
/** Larger images are shrunk to this longest side (detection runs at 256 px at most). */
export const MAX_WORKING_SIDE = 2048;

export function describeInput(input: ImageInput, index = 0): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return `buffer #${index}`;
  return `pixels #${index}`;
}

export async function decodeInput(input: ImageInput, source = describeInput(input)): Promise<DecodedImage> {
  let bytes: Uint8Array | undefined;
  let raw: RawPixels | undefined;
  if (typeof input === 'string') {
    try {
      bytes = await readFile(input);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputError(
        source,
        code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a folder' : (err as Error).message,
      );
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
    raw = input;
  } else {
    throw new TypeError(
      `Expected a file path, a Buffer or { data, width, height, channels } for input but received ${typeof input}`,
    );
  }
  if (bytes && bytes.length === 0) throw new InputError(source, 'empty file (0 bytes)');
  try {
    const pipeline = raw
      ? sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } })
      : sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS });
    const meta = raw
      ? { width: raw.width, height: raw.height }
      : await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    const { data, info } = await pipeline
      .rotate()
      .resize(MAX_WORKING_SIDE, MAX_WORKING_SIDE, { fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rotated =
      (meta as { orientation?: number }).orientation !== undefined &&
      (meta as { orientation?: number }).orientation! >= 5;
    return {
      source,
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      originalWidth: (rotated ? meta.height : meta.width) ?? info.width,
      originalHeight: (rotated ? meta.width : meta.height) ?? info.height,
    };
  } catch (err) {
    const message = decoderMessage(err); // every line of it: the cause may be on a later one
    if (/unsupported image format/i.test(message))
      throw new InputError(
        source,
        'not an image, or an unsupported format (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIF, SVG are read)',
      );
    if (/pixel limit/i.test(message))
      throw new InputError(source, `image larger than ${MAX_INPUT_PIXELS / 1e6} megapixels`);
    throw new InputError(source, `cannot decode image (${message})`);
  }
}
