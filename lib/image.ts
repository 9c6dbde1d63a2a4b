// The one image decoder: encoded bytes (a file's, or a Buffer given to the
// API) to 8-bit interleaved RGB. The training loader (lib/data/decode.ts),
// adcorre-eval through it, and prediction (lib/infer/image.ts) all decode
// here, so that a face crop reaches the model with the same pixels whichever
// command reads it; grey conversion and resampling come after, in
// lib/pixels.ts. Small JPEGs go through jpeg-js, because sharp's per-image
// pipeline set-up (about 1.2 ms) dominates a 48x48 face crop, which jpeg-js
// decodes in 0.14 ms, within one grey level of libjpeg-turbo (measured on
// FER-2013); everything else (every format, EXIF orientation, face boxes,
// shrink-on-load of large photos) goes through sharp.
import jpeg from 'jpeg-js';
import sharp from 'sharp';
import { decoderMessage } from './validate.js';

sharp.cache(false); // every file is read once (per epoch): caching only costs memory

/** Larger inputs are refused: a decompression bomb would take gigabytes. */
export const MAX_INPUT_PIXELS = 120_000_000;
/**
 * Larger images are shrunk on decoding to at most this longer side: the detector sees the image at
 * 256 px and tiles of about 0.57 of it at 256 px, the classifier faces at its input size (48 px for
 * the default model), so more pixels cost decoding time and add nothing.
 */
export const MAX_WORKING_SIDE = 1600;
// jpeg-js for JPEGs up to this many pixels (FER-2013's are 48x48); sharp above.
const SMALL_JPEG_PIXELS = 128 * 128;
// A face box must keep at least this fraction of its area inside the image.
const MIN_BOX_INSIDE = 0.5;

/** A face box in an image's stored pixels: x, y, width, height. */
export type PixelBox = readonly [number, number, number, number];

export interface ImageHeader {
  width: number;
  height: number;
  /** JPEG: colour components (1 grey, 3 YCbCr, 4 CMYK); PNG: undefined */
  components?: number;
  /** JPEG with an Exif segment (which may rotate it) */
  exif?: boolean;
}

/**
 * Size (and for JPEG, components and Exif presence) from a JPEG's segments or
 * a PNG's IHDR, without decoding; undefined for other formats or damaged headers.
 */
export function readHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (bytes.length > 24 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let exif = false;
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    if (marker === 0xe1 && bytes[i + 4] === 0x45 && bytes[i + 5] === 0x78) exif = true; // APP1 "Ex"if
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return {
        height: (bytes[i + 5] << 8) | bytes[i + 6],
        width: (bytes[i + 7] << 8) | bytes[i + 8],
        components: bytes[i + 9],
        exif,
      };
    }
    i += 2 + length;
  }
  return undefined;
}

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

/** Why bytes could not be decoded: `kind` for the caller's own wording (a skip reason, an InputError). */
export class ImageDecodeError extends Error {
  constructor(
    readonly kind: 'unsupported format' | 'too many pixels' | 'box outside image' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'ImageDecodeError';
  }
}

/** Decoded pixels: interleaved RGB, 8 bits. */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
  /** the image's size before any shrinking (after EXIF rotation) */
  originalWidth: number;
  originalHeight: number;
}

export interface DecodeOptions {
  /**
   * cut out this box of the stored pixels (no EXIF rotation: boxes are drawn on the stored pixels),
   * clipped to the image; at least half of it must be inside. The box is decoded at full resolution.
   */
  box?: PixelBox;
}

/** The box clipped to the image, or an ImageDecodeError when too little of it is inside. */
export function clipBox(box: PixelBox, width: number, height: number): PixelBox {
  const [x, y, w, h] = box;
  const x0 = Math.max(0, x),
    y0 = Math.max(0, y);
  const x1 = Math.min(width, x + w),
    y1 = Math.min(height, y + h);
  if (x1 <= x0 || y1 <= y0 || (x1 - x0) * (y1 - y0) < MIN_BOX_INSIDE * w * h) {
    throw new ImageDecodeError('box outside image', `box [${box.join(', ')}] vs image ${width}x${height}`);
  }
  return [x0, y0, x1 - x0, y1 - y0];
}

/** A small baseline JPEG by jpeg-js, or undefined for sharp to decide (odd files, CMYK, Exif). */
function decodeSmallJpeg(bytes: Uint8Array, header: ImageHeader | undefined): RgbImage | undefined {
  if (!header || bytes[0] !== 0xff || header.exif || header.width * header.height > SMALL_JPEG_PIXELS) return;
  if (header.components !== 1 && header.components !== 3) return;
  try {
    const img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: 4,
      maxMemoryUsageInMB: 64,
    });
    return {
      rgb: img.data,
      width: img.width,
      height: img.height,
      originalWidth: img.width,
      originalHeight: img.height,
    };
  } catch {
    return undefined; // sharp gives the authoritative answer (and error) for odd files
  }
}

/**
 * Encoded image bytes as 8-bit interleaved RGB: EXIF orientation applied (except under a box),
 * alpha dropped, grey repeated, images larger than MAX_WORKING_SIDE shrunk on load (workingSide).
 * Throws ImageDecodeError.
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RgbImage> {
  const header = readHeader(bytes);
  if (!options.box) {
    const small = decodeSmallJpeg(bytes, header);
    if (small) return small;
  }
  try {
    let pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: MAX_INPUT_PIXELS });
    // A photo that needs no shrinking takes one call into sharp: its size from the file's header (JPEG,
    // PNG), and the decoded size is then the original (EXIF rotation included). Others ask sharp's
    // metadata() for the size and orientation first.
    const fits = header !== undefined && Math.max(header.width, header.height) <= MAX_WORKING_SIDE;
    let meta: { width?: number; height?: number; orientation?: number } = {};
    if (options.box) {
      meta = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
      const [left, top, width, height] = clipBox(options.box, meta.width ?? 0, meta.height ?? 0);
      pipeline = pipeline.extract({ left, top, width, height });
    } else if (!fits) {
      meta = await sharp(bytes, { limitInputPixels: MAX_INPUT_PIXELS }).metadata();
      const side = workingSide(Math.max(meta.width ?? 0, meta.height ?? 0) || MAX_WORKING_SIDE);
      pipeline = pipeline.rotate().resize(side, side, { fit: 'inside', withoutEnlargement: true });
    } else if (header.exif !== false) {
      pipeline = pipeline.rotate(); // EXIF orientation (a pipeline stage: only when there may be one)
    }
    const { data, info } = await pipeline
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const shrunk = !options.box && !fits;
    const turned = meta.orientation !== undefined && meta.orientation >= 5;
    return {
      rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      originalWidth: shrunk ? ((turned ? meta.height : meta.width) ?? info.width) : info.width,
      originalHeight: shrunk ? ((turned ? meta.width : meta.height) ?? info.height) : info.height,
    };
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    const message = decoderMessage(err); // every line of it: the cause may be on a later one
    if (/unsupported image format/i.test(message)) throw new ImageDecodeError('unsupported format', message);
    if (/pixel limit/i.test(message)) throw new ImageDecodeError('too many pixels', message);
    throw new ImageDecodeError('corrupt', message);
  }
}
