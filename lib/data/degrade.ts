// Photo degradations for training augmentation (issue #28): what real photographs do to a face and
// FER-2013's registered crops rarely show. A small face in a group photo reaches the model enlarged
// by the pipeline's resampler, so `lowRes` shrinks the warped input to a smaller side by area
// averaging and enlarges it back by linear interpolation: the two halves of the one resampler's axis
// rule (lib/pixels.ts resizeAxis). An out-of-focus or moving face is soft, so `blur` applies a
// Gaussian. A face of 48 pixels in a compressed photo carries JPEG's 8x8 block quantisation at the
// model's own scale, so `jpeg` applies it: JPEG's lossy step for a grey image (8x8 DCT, the standard
// luminance table scaled by quality as libjpeg does, rounding to bytes); the entropy coding JPEG adds
// is lossless and left out. All run on the warped float input, before random erasing (an occluder is
// sharp), in the order a photo meets them: resolution, focus, compression.
// Written here rather than with sharp: these passes over a 48x48 plane cost microseconds, where one
// sharp pipeline costs about a millisecond of set-up (native/data/augment.cpp); the tests hold the
// JPEG step to sharp's (libjpeg-turbo's) encode and decode.
import { resizeAxis } from '../pixels.js';

/** Per output index along one axis: the source indices it reads and their weights (resizeAxis's form). */
export type AxisWeights = ReturnType<typeof resizeAxis>;

/** The degradations drawn for one sample; absent fields are off. */
export interface Degradation {
  /** the side the S x S input is shrunk to and enlarged back from, in pixels (< S) */
  lowRes?: number;
  /** the Gaussian's standard deviation, in input pixels */
  blur?: number;
  /** JPEG quality, 1-100 */
  jpeg?: number;
}

// The JPEG standard's luminance quantisation table (ITU T.81 Annex K, table K.1), row by row.
const LUMINANCE_TABLE = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
  87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
];

/** The luminance table at `quality` (1-100), scaled as libjpeg's jpeg_set_quality does. */
export function quantisationTable(quality: number): Float64Array {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  const scale = q < 50 ? Math.floor(5000 / q) : 200 - 2 * q; // libjpeg divides in integers
  return Float64Array.from(LUMINANCE_TABLE, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

// cos((2x + 1) u pi / 16) * c(u) / 2: the orthonormal 8-point DCT-II basis, [u * 8 + x].
const DCT = Float64Array.from({ length: 64 }, (_, i) => {
  const u = Math.floor(i / 8),
    x = i % 8;
  return (u === 0 ? Math.SQRT1_2 : 1) * 0.5 * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
});

/**
 * JPEG's lossy step on one plane (size x size floats in [0, 1] at plane[0]), in place: 8x8 blocks (the last
 * ones padded by repeating the edge pixel, as encoders do) level-shifted, transformed, quantised with
 * `table`, transformed back and rounded to bytes.
 */
export function jpegPlane(plane: Float32Array, size: number, table: Float64Array): void {
  const block = new Float64Array(64),
    tmp = new Float64Array(64);
  for (let by = 0; by < size; by += 8)
    for (let bx = 0; bx < size; bx += 8) {
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++)
          block[y * 8 + x] = plane[Math.min(size - 1, by + y) * size + Math.min(size - 1, bx + x)] * 255 - 128;
      transform(block, tmp, false);
      for (let i = 0; i < 64; i++) block[i] = Math.round(block[i] / table[i]) * table[i];
      transform(block, tmp, true);
      for (let y = 0; y < 8 && by + y < size; y++)
        for (let x = 0; x < 8 && bx + x < size; x++)
          plane[(by + y) * size + bx + x] = Math.min(255, Math.max(0, Math.round(block[y * 8 + x] + 128))) / 255;
    }
}

/** The separable 2-D DCT of an 8x8 block in place (inverse: its transpose), tmp as scratch. */
function transform(block: Float64Array, tmp: Float64Array, inverse: boolean): void {
  const basis = (k: number, n: number) => (inverse ? DCT[n * 8 + k] : DCT[k * 8 + n]);
  for (let y = 0; y < 8; y++)
    for (let k = 0; k < 8; k++) {
      let acc = 0;
      for (let n = 0; n < 8; n++) acc += basis(k, n) * block[y * 8 + n];
      tmp[y * 8 + k] = acc;
    }
  for (let x = 0; x < 8; x++)
    for (let k = 0; k < 8; k++) {
      let acc = 0;
      for (let n = 0; n < 8; n++) acc += basis(k, n) * tmp[n * 8 + x];
      block[k * 8 + x] = acc;
    }
}

/** A normalised Gaussian along an axis of n pixels, 3 sigma each side, the edge pixel repeated outside. */
export function gaussianAxis(n: number, sigma: number): AxisWeights {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const taps: number[] = [];
  for (let d = -radius; d <= radius; d++) taps.push(Math.exp(-(d * d) / (2 * sigma * sigma)));
  const total = taps.reduce((a, b) => a + b, 0);
  const start = new Int32Array(n + 1),
    index = new Int32Array(n * taps.length),
    weight = new Float32Array(n * taps.length);
  for (let i = 0, k = 0; i < n; i++) {
    start[i] = k;
    for (let d = -radius; d <= radius; d++, k++) {
      index[k] = Math.min(n - 1, Math.max(0, i + d));
      weight[k] = taps[d + radius] / total;
    }
  }
  start[n] = n * taps.length;
  return { start, index, weight };
}

/** One plane (sw x sh floats at src[offset]) through separable axis weights: rows by `x`, then columns by `y`. */
export function separable(
  src: Float32Array,
  offset: number,
  sw: number,
  sh: number,
  x: AxisWeights,
  y: AxisWeights,
): Float32Array {
  const dw = x.start.length - 1,
    dh = y.start.length - 1;
  const rows = new Float32Array(sh * dw);
  for (let r = 0; r < sh; r++)
    for (let i = 0; i < dw; i++) {
      let acc = 0;
      for (let k = x.start[i]; k < x.start[i + 1]; k++) acc += x.weight[k] * src[offset + r * sw + x.index[k]];
      rows[r * dw + i] = acc;
    }
  const out = new Float32Array(dh * dw);
  for (let j = 0; j < dh; j++)
    for (let k = y.start[j]; k < y.start[j + 1]; k++) {
      const w = y.weight[k],
        from = y.index[k] * dw;
      for (let i = 0; i < dw; i++) out[j * dw + i] += w * rows[from + i];
    }
  return out;
}

/** Applies `d` in place to each channel plane of one S x S image at images[offset]: low resolution, blur, JPEG. */
export function degrade(images: Float32Array, offset: number, size: number, channels: number, d: Degradation): void {
  const per = size * size;
  for (let c = 0; c < channels; c++) {
    const at = offset + c * per;
    let plane = images.subarray(at, at + per);
    if (d.lowRes !== undefined && d.lowRes < size) {
      const down = resizeAxis(0, size, d.lowRes, size),
        up = resizeAxis(0, d.lowRes, size, d.lowRes);
      plane = separable(separable(plane, 0, size, size, down, down), 0, d.lowRes, d.lowRes, up, up);
    }
    if (d.blur !== undefined && d.blur > 0) {
      const g = gaussianAxis(size, d.blur);
      plane = separable(plane, 0, size, size, g, g);
    }
    if (d.jpeg !== undefined) jpegPlane(plane, size, quantisationTable(d.jpeg));
    images.set(plane, at);
  }
}
