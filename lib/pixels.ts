// Resampling and grey conversion of 8-bit interleaved pixels in JavaScript,
// shared by the data readers and inference. Small images are resized here and
// not in sharp: a call into sharp costs 2.5-5 ms of CPU on the development
// machine however small the work (measured 2026-12-01: a 200x200 window to
// 48x48 grey took 4.6-5.2 ms there, 0.9 ms here), which was a fifth of
// one photo's prediction.

/** Rec. 601 luma weights, as OpenCV's and most FER tools' grey conversion. */
export const LUMA = [0.299, 0.587, 0.114] as const;

/** Per output index along one axis: the input indices it covers and their weights. */
export function resizeAxis(src: number, dst: number): { start: Int32Array; index: Int32Array; weight: Float32Array } {
  const f = src / dst;
  const index: number[] = [],
    weight: number[] = [];
  const start = new Int32Array(dst + 1);
  for (let i = 0; i < dst; i++) {
    start[i] = index.length;
    if (f <= 1) {
      // enlarging: linear between the two nearest input pixels
      const c = (i + 0.5) * f - 0.5;
      const j = Math.min(src - 1, Math.max(0, Math.floor(c)));
      const t = Math.min(1, Math.max(0, c - j));
      index.push(j, Math.min(src - 1, j + 1));
      weight.push(1 - t, t);
    } else {
      // shrinking: the mean of the input pixels it covers (area average)
      const a = i * f,
        b = Math.min(src, (i + 1) * f);
      for (let j = Math.floor(a); j < Math.ceil(b); j++) {
        const w = Math.min(b, j + 1) - Math.max(a, j);
        if (w > 1e-6) {
          index.push(j);
          weight.push(w / (b - a));
        }
      }
    }
  }
  start[dst] = index.length;
  return { start, index: Int32Array.from(index), weight: Float32Array.from(weight) };
}

/** A window of an image in pixels; it may reach outside the image. */
export interface PixelWindow {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The window of an interleaved RGB image resized to dw x dh, as interleaved floats in 0-255
 * (area average when shrinking, linear when enlarging). Outside the image the edge pixels
 * repeat (sharp's extend 'copy'). RGB only: the three channels summed in one loop over the
 * taps ran twice as fast as a loop per channel.
 */
export function resampleWindow(
  src: Uint8Array,
  sw: number,
  sh: number,
  window: PixelWindow,
  dw: number,
  dh: number,
): Float32Array {
  const X = resizeAxis(window.width, dw),
    Y = resizeAxis(window.height, dh);
  const xStart = X.start,
    xWeight = X.weight;
  const columns = Int32Array.from(X.index, (i) => Math.min(sw - 1, Math.max(0, window.x + i)) * 3);
  const clampY = (i: number) => Math.min(sh - 1, Math.max(0, window.y + i));
  // the horizontal pass once per image row the window reaches (rows outside repeat the edge rows)
  const r0 = clampY(0),
    r1 = clampY(window.height - 1);
  const rowFloats = dw * 3;
  const rows = new Float32Array((r1 - r0 + 1) * rowFloats);
  for (let y = r0; y <= r1; y++) {
    const row = y * sw * 3;
    let out = (y - r0) * rowFloats;
    for (let x = 0; x < dw; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let k = xStart[x], end = xStart[x + 1]; k < end; k++) {
        const p = row + columns[k],
          w = xWeight[k];
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      rows[out++] = r;
      rows[out++] = g;
      rows[out++] = b;
    }
  }
  const dst = new Float32Array(dh * rowFloats);
  for (let y = 0; y < dh; y++) {
    const out = y * rowFloats;
    for (let k = Y.start[y]; k < Y.start[y + 1]; k++) {
      const row = (clampY(Y.index[k]) - r0) * rowFloats,
        w = Y.weight[k];
      for (let i = 0; i < rowFloats; i++) dst[out + i] += rows[row + i] * w;
    }
  }
  return dst;
}

/** Resizes interleaved RGB bytes (area average when shrinking, linear when enlarging). */
export function resizeArea(src: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const floats = resampleWindow(src, sw, sh, { x: 0, y: 0, width: sw, height: sh }, dw, dh);
  const dst = new Uint8Array(floats.length);
  for (let i = 0; i < floats.length; i++) dst[i] = Math.min(255, Math.max(0, Math.round(floats[i])));
  return dst;
}
