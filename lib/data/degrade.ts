// Photo degradations for training augmentation (issue #28): what real photographs do to a face and
// FER-2013's registered crops rarely show. A small face in a group photo reaches the model enlarged
// by the pipeline's resampler, so `lowRes` shrinks the warped input to a smaller side by area
// averaging and enlarges it back by linear interpolation: the two halves of the one resampler's axis
// rule (lib/pixels.ts resizeAxis). An out-of-focus or moving face is soft, so `blur` applies a
// Gaussian. Both run on the warped float input, before random erasing (an occluder is sharp).
// Written here rather than with sharp: a few separable passes over a 48x48 plane cost microseconds,
// where one sharp pipeline costs about a millisecond of set-up (native/data/augment.cpp).
import { resizeAxis } from '../pixels.js';

/** Per output index along one axis: the source indices it reads and their weights (resizeAxis's form). */
export type AxisWeights = ReturnType<typeof resizeAxis>;

/** The degradations drawn for one sample; absent fields are off. */
export interface Degradation {
  /** the side the S x S input is shrunk to and enlarged back from, in pixels (< S) */
  lowRes?: number;
  /** the Gaussian's standard deviation, in input pixels */
  blur?: number;
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

/** Applies `d` in place to each channel plane of one S x S image at images[offset]: low resolution first, then blur. */
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
    images.set(plane, at);
  }
}
