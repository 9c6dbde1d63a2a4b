// Resampling and grey conversion of 8-bit interleaved pixels, shared by the
// detector, the face crops and the data reader (the one resampler and the one
// grey conversion after the one decoder, lib/image.ts). Windows are resampled by the
// addon (native/data/resample.cpp) where it loads, else by the JavaScript
// below, which is the readable reference the tests hold the addon to. Not in
// sharp: one call into sharp costs 2.5-5 ms of CPU on the 2 vCPU development
// machine however small the work (2026-12-01: a 200x200 window to 48x48 grey
// took 4.6-5.2 ms), and one photo's prediction resamples three to eight windows.
import { optionalNative } from './native.js';

/** Rec. 601 luma weights, as OpenCV's and most FER tools' grey conversion. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** The grey value (0-255 in, 0-255 out, unrounded) of one RGB pixel. */
export function luma(r: number, g: number, b: number): number {
  return LUMA[0] * r + LUMA[1] * g + LUMA[2] * b;
}

/**
 * The one grey conversion, for every path into a model (the training loader, adcorre-eval,
 * prediction): luma of interleaved RGB (bytes, or resampled floats in 0-255), n pixels, rounded to
 * bytes. (lib/infer/align.ts keeps the unrounded luma() of its floats; native/data/augment.cpp
 * applies the same weights when a store holds RGB for a grey model.)
 */
export function greyBytes(rgb: ArrayLike<number>, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 3) out[i] = Math.round(luma(rgb[j], rgb[j + 1], rgb[j + 2]));
  return out;
}

/** What a window sees outside the image. */
export type Border = 'edge' | 'reflect' | 'constant';
const BORDER_CODE = { edge: 0, reflect: 1, constant: 2 } as const;

/** A window of an image in pixels: it may be fractional and reach outside the image. */
export interface PixelWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ResampleOptions {
  /** outside the image: the nearest edge pixel ('edge', default), the image mirrored, or `constant` */
  border?: Border;
  /** the value outside the image for border 'constant', in 0-255 (default 0, black) */
  constant?: number;
  /** the output is value * scale + bias (defaults 1 and 0) */
  scale?: number;
  bias?: number;
}

function mapIndex(j: number, n: number, border: Border): number {
  if (j >= 0 && j < n) return j;
  if (border === 'edge') return j < 0 ? 0 : n - 1;
  if (border === 'constant') return -1;
  const period = 2 * n;
  const m = ((j % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

/**
 * Per output index along one axis of a window (origin, length) over n source pixels: the source
 * indices it reads (after the border rule; -1 for the constant) and their weights. Area average
 * when shrinking, linear between the two nearest pixels (clamped to the window) when enlarging.
 */
export function resizeAxis(
  origin: number,
  length: number,
  dst: number,
  n: number,
  border: Border = 'edge',
): { start: Int32Array; index: Int32Array; weight: Float32Array } {
  const f = length / dst;
  const index: number[] = [],
    weight: number[] = [];
  const start = new Int32Array(dst + 1);
  for (let i = 0; i < dst; i++) {
    start[i] = index.length;
    if (f <= 1) {
      const c = origin + (i + 0.5) * f - 0.5;
      const lo = Math.floor(origin),
        hi = Math.ceil(origin + length) - 1;
      const j = Math.min(hi, Math.max(lo, Math.floor(c)));
      const t = Math.min(1, Math.max(0, c - j));
      index.push(mapIndex(j, n, border), mapIndex(Math.min(hi, j + 1), n, border));
      weight.push(1 - t, t);
    } else {
      const a = origin + i * f,
        b = Math.min(origin + length, origin + (i + 1) * f);
      for (let j = Math.floor(a); j < Math.ceil(b); j++) {
        const w = Math.min(b, j + 1) - Math.max(a, j);
        if (w > 1e-6) {
          index.push(mapIndex(j, n, border));
          weight.push(w / (b - a));
        }
      }
    }
  }
  start[dst] = index.length;
  return { start, index: Int32Array.from(index), weight: Float32Array.from(weight) };
}

/**
 * A window of an interleaved RGB image (sw x sh) resized to dw x dh: interleaved floats,
 * value * scale + bias (value in 0-255).
 */
export type Resampler = (
  src: Uint8Array,
  sw: number,
  sh: number,
  window: PixelWindow,
  dw: number,
  dh: number,
  options?: ResampleOptions,
) => Float32Array;

/** The JavaScript reference: resampleWindow runs the addon's copy where it loads. */
export const resampleWindowJs: Resampler = (src, sw, sh, window, dw, dh, options = {}) => {
  const border = options.border ?? 'edge';
  const constant = options.constant ?? 0,
    scale = options.scale ?? 1,
    bias = options.bias ?? 0;
  const X = resizeAxis(window.x, window.width, dw, sw, border),
    Y = resizeAxis(window.y, window.height, dh, sh, border);
  const xStart = X.start,
    xIndex = X.index,
    xWeight = X.weight;
  const rowFloats = dw * 3;
  // the horizontal pass once per source row that the vertical taps name
  const slot = new Int32Array(sh).fill(-1);
  let needed = 0;
  for (const r of Y.index) if (r >= 0 && slot[r] < 0) slot[r] = needed++;
  const rows = new Float32Array(needed * rowFloats);
  for (let y = 0; y < sh; y++) {
    if (slot[y] < 0) continue;
    const row = y * sw * 3;
    let o = slot[y] * rowFloats;
    for (let x = 0; x < dw; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let k = xStart[x], end = xStart[x + 1]; k < end; k++) {
        const w = xWeight[k],
          j = xIndex[k];
        if (j < 0) {
          r += constant * w;
          g += constant * w;
          b += constant * w;
        } else {
          const p = row + 3 * j;
          r += src[p] * w;
          g += src[p + 1] * w;
          b += src[p + 2] * w;
        }
      }
      rows[o++] = r;
      rows[o++] = g;
      rows[o++] = b;
    }
  }
  const dst = new Float32Array(dh * rowFloats);
  const acc = new Float32Array(rowFloats);
  for (let y = 0; y < dh; y++) {
    acc.fill(0);
    for (let k = Y.start[y]; k < Y.start[y + 1]; k++) {
      const w = Y.weight[k];
      if (Y.index[k] < 0) {
        for (let i = 0; i < rowFloats; i++) acc[i] += constant * w;
        continue;
      }
      const row = slot[Y.index[k]] * rowFloats;
      for (let i = 0; i < rowFloats; i++) acc[i] += rows[row + i] * w;
    }
    const o = y * rowFloats;
    for (let i = 0; i < rowFloats; i++) dst[o + i] = acc[i] * scale + bias;
  }
  return dst;
};

/** As resampleWindowJs, by the addon where it loads. */
export const resampleWindow: Resampler = (src, sw, sh, window, dw, dh, options = {}) => {
  const addon = optionalNative();
  // (an addon built from an older version has no resampler: the JavaScript one serves)
  if (typeof addon?.resampleRgb !== 'function') return resampleWindowJs(src, sw, sh, window, dw, dh, options);
  const dst = new Float32Array(dw * dh * 3);
  addon.resampleRgb(
    src,
    sw,
    sh,
    window.x,
    window.y,
    window.width,
    window.height,
    dst,
    dw,
    dh,
    BORDER_CODE[options.border ?? 'edge'],
    options.constant ?? 0,
    options.scale ?? 1,
    options.bias ?? 0,
  );
  return dst;
};

/** A square of an image, possibly turned: centre and side in pixels, angle in radians (lib/infer/align.ts). */
export interface TurnedSquare {
  cx: number;
  cy: number;
  side: number;
  angle: number;
}

/**
 * A square of an interleaved RGB image resampled to size x size (interleaved floats, 0-255 scaled as
 * resampleWindow's). Unturned, it is resampleWindow on the square with whole-pixel corners (the
 * classifier's crops before alignment). Turned, the upright square around it is first area-averaged to
 * twice the output's resolution and then sampled bilinearly along the turned axes: the shrink stays
 * anti-aliased, which one bilinear warp from a large photo would not be.
 */
export function resampleSquare(
  src: Uint8Array,
  sw: number,
  sh: number,
  square: TurnedSquare,
  size: number,
  options: ResampleOptions = {},
): Float32Array {
  const { cx, cy, side, angle } = square;
  if (Math.abs(angle) < 1e-6) {
    const whole = Math.max(1, Math.round(side));
    const window = { x: Math.round(cx - side / 2), y: Math.round(cy - side / 2), width: whole, height: whole };
    return resampleWindow(src, sw, sh, window, size, size, options);
  }
  const cos = Math.cos(angle),
    sin = Math.sin(angle);
  const extent = side * (Math.abs(cos) + Math.abs(sin));
  const m = Math.ceil(2 * size * (Math.abs(cos) + Math.abs(sin)));
  const upright = resampleWindow(
    src,
    sw,
    sh,
    { x: cx - extent / 2, y: cy - extent / 2, width: extent, height: extent },
    m,
    m,
    options,
  );
  const k = m / extent; // upright pixels per image pixel
  const out = new Float32Array(size * size * 3);
  for (let v = 0; v < size; v++) {
    const b = ((v + 0.5) / size - 0.5) * side;
    for (let u = 0; u < size; u++) {
      const a = ((u + 0.5) / size - 0.5) * side;
      const x = (cos * a - sin * b) * k + m / 2 - 0.5,
        y = (sin * a + cos * b) * k + m / 2 - 0.5;
      const x0 = Math.min(m - 2, Math.max(0, Math.floor(x))),
        y0 = Math.min(m - 2, Math.max(0, Math.floor(y)));
      const fx = Math.min(1, Math.max(0, x - x0)),
        fy = Math.min(1, Math.max(0, y - y0));
      const p = (y0 * m + x0) * 3,
        q = p + m * 3;
      const o = (v * size + u) * 3;
      for (let c = 0; c < 3; c++) {
        const top = upright[p + c] + fx * (upright[p + 3 + c] - upright[p + c]);
        const bottom = upright[q + c] + fx * (upright[q + 3 + c] - upright[q + c]);
        out[o + c] = top + fy * (bottom - top);
      }
    }
  }
  return out;
}
