// Decoding user inputs for prediction: a path, an encoded image in a Buffer,
// or raw pixels; EXIF orientation honoured; very large images shrunk on load.
import sharp from 'sharp';
import { decoderMessage } from '../validate.js';
import { readHeader } from '../data/decode.js';
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
/**
 * Larger images are shrunk on decoding to at most this longer side: the detector sees the
 * image at 256 px and tiles of about 0.57 of it at 256 px, the classifier faces at its input
 * size (48 px for the default model), so more pixels cost decoding time and add nothing.
 */
export const MAX_WORKING_SIDE = 1600;

/**
 * The longer side a large image is decoded at: its side divided by 2, 4 or 8, the first that
 * fits MAX_WORKING_SIDE, so that a JPEG decodes directly at that scale (libjpeg's DCT scaling,
 * sharp's shrink-on-load) with no resampling after it.
 */
export function workingSide(longer: number): number {
  if (longer <= MAX_WORKING_SIDE) return longer;
  for (const k of [2, 4, 8]) if (Math.ceil(longer / k) <= MAX_WORKING_SIDE) return Math.ceil(longer / k);
  return MAX_WORKING_SIDE;
}

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
    raw = input;
  } else {
    throw new TypeError(
      `Expected a file path, a Buffer or { data, width, height, channels } for input but received ${typeof input}`,
    );
  }
  if (bytes && bytes.length === 0) throw new InputError(source, 'empty file (0 bytes)');
  // Raw pixels that need no shrinking are made RGB here: a call into sharp costs more than the
  // classifier on a face crop (2.5-5 ms against 2.4 ms on the development machine).
  if (raw && Math.max(raw.width, raw.height) <= MAX_WORKING_SIDE) {
    return {
      source,
      rgb: toRgb(raw),
      width: raw.width,
      height: raw.height,
      originalWidth: raw.width,
      originalHeight: raw.height,
    };
  }
  try {
    const pipeline = raw
      ? sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } })
      : sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS });
    // A photo that needs no shrinking takes one call into sharp: its size from the file's header
    // (JPEG, PNG), and the decoded size is then the original (EXIF rotation included). Others ask
    // sharp's metadata() for the size and orientation first.
    // (raw pixels reach here only when they need shrinking)
    const header = bytes ? readHeader(bytes) : undefined;
    const small = header !== undefined && Math.max(header.width, header.height) <= MAX_WORKING_SIDE;
    const meta: { width?: number; height?: number; orientation?: number } = raw
      ? { width: raw.width, height: raw.height }
      : small
        ? {}
        : await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
    const side = small
      ? MAX_WORKING_SIDE
      : workingSide(Math.max(meta.width ?? 0, meta.height ?? 0) || MAX_WORKING_SIDE);
    const { data, info } = await pipeline
      .rotate()
      .resize(side, side, { fit: 'inside', withoutEnlargement: true })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rotated = meta.orientation !== undefined && meta.orientation >= 5;
    return {
      source,
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      originalWidth: small ? info.width : ((rotated ? meta.height : meta.width) ?? info.width),
      originalHeight: small ? info.height : ((rotated ? meta.width : meta.height) ?? info.height),
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
