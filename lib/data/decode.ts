// From a sample reference to decoded 8-bit pixels. Files go through sharp
// (every format, EXIF orientation, face-box crop, downscaling of large images
// before the warp); small JPEGs go through jpeg-js instead, because sharp's
// per-image pipeline set-up (about 1.2 ms) dominates a 48x48 face crop, which
// jpeg-js decodes in 0.14 ms, within one grey level of libjpeg-turbo
// (measured on FER-2013).
import jpeg from 'jpeg-js';
import sharp from 'sharp';
import type { Box, PixelStore, SampleRef } from './dataset.js';
import { storeImage } from './dataset.js';
import type { SkipReason } from './skips.js';
import { decoderMessage } from '../validate.js';
import { luma } from '../pixels.js';
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

// jpeg-js for JPEGs up to this many pixels (FER-2013's are 48x48); sharp above.
const SMALL_JPEG_PIXELS = 128 * 128;
// A face box must keep at least this fraction of its area inside the image.
const MIN_BOX_INSIDE = 0.5;

sharp.cache(false);

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
} // every file is read once per epoch: caching only costs memory

function toChannels(image: RawImage, channels: 1 | 3): RawImage {
  if (channels === 3 || image.channels === 1) return image;
  const { width, height, data } = image;
  const out = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < out.length; i++, j += image.channels) {
    out[i] = Math.round(luma(data[j], data[j + 1], data[j + 2]));
  }
  return { data: out, width, height, channels: 1 };
}

/** The box clipped to the image, or a SampleError when too little of it is inside. */
export function clipBox(box: Box, width: number, height: number): Box {
  const [x, y, w, h] = box;
  const x0 = Math.max(0, x),
    y0 = Math.max(0, y);
  const x1 = Math.min(width, x + w),
    y1 = Math.min(height, y + h);
  if (x1 <= x0 || y1 <= y0 || (x1 - x0) * (y1 - y0) < MIN_BOX_INSIDE * w * h) {
    throw new SampleError('box outside image', `box [${box.join(', ')}] vs image ${width}x${height}`);
  }
  return [x0, y0, x1 - x0, y1 - y0];
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
  const dims = readHeader(bytes);
  if (!box && dims && bytes[0] === 0xff && dims.width * dims.height <= SMALL_JPEG_PIXELS) {
    try {
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        maxResolutionInMP: 4,
        maxMemoryUsageInMB: 64,
      });
      return toChannels({ data: img.data, width: img.width, height: img.height, channels: 3 }, channels);
    } catch {
      // fall through: sharp gives the authoritative answer (and error) for odd files
    }
  }
  try {
    let pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: 100_000_000 });
    if (box) {
      const meta = await sharp(bytes).metadata();
      const [x, y, w, h] = clipBox(box, meta.width ?? 0, meta.height ?? 0);
      pipeline = pipeline.extract({ left: x, top: y, width: w, height: h });
    } else if (!dims || dims.exif) {
      pipeline = pipeline.rotate(); // EXIF orientation (a pipeline stage: only when there may be one)
    }
    // Large images shrink to the input size here (the warp would alias past 2x);
    // near-size ones skip the resize pass, which costs as much as the decode.
    const big = box ? Math.max(box[2], box[3]) : dims ? Math.max(dims.width, dims.height) : Infinity;
    if (big > 2 * size) pipeline = pipeline.resize(size, size, { fit: 'fill' });
    // Colour conversion only where the source is not already what is wanted.
    if (channels === 1 && dims?.components !== 1) pipeline = pipeline.greyscale();
    else if (channels === 3 && dims?.components !== 3) pipeline = pipeline.removeAlpha().toColourspace('srgb');
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      channels: info.channels,
    };
  } catch (err) {
    if (err instanceof SampleError) throw err;
    throw new SampleError('corrupt image', decoderMessage(err));
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
