// Training augmentation as one affine warp per sample (native/data/augment.cpp):
// random resized crop, horizontal flip, rotation and brightness/contrast
// jitter; evaluation maps the whole image onto the input unchanged. Random
// erasing and the photo degradations (lib/data/degrade.ts) follow the warp.
import type { PixelWindow } from '../pixels.js';
import type { Degradation } from './degrade.js';

export interface AugmentOptions {
  /** crop area as a fraction of the image (default [0.8, 1]) */
  scale?: [number, number];
  /** crop aspect ratio, width / height (default [0.9, 1.1]: faces stay faces) */
  ratio?: [number, number];
  /** mirror left-right with probability 0.5 (default true) */
  flip?: boolean;
  /** rotation within +-degrees (default 15) */
  rotation?: number;
  /**
   * zoom (Keras' zoom_range): the crop's side as a fraction of the image, uniform in [1 - zoom, 1 + zoom], beyond
   * the image where above 1 (edges clamped); replaces `scale` where above 0 (default 0: off)
   */
  zoom?: number;
  /** shift (Keras' width/height_shift_range): the crop's centre moved by up to +-shift x the side (default 0) */
  shift?: number;
  /** brightness shift within +-value, in [0, 1] units (default 0.1) */
  brightness?: number;
  /** contrast factor within 1 +- value (default 0.2) */
  contrast?: number;
  /**
   * random erasing (Zhong et al. 2020): the probability (default 0) of replacing one rectangle of 2-40 % of the
   * input, aspect ratio 0.3-3.3, with uniform noise in [0, 1]
   */
  erase?: number;
  /**
   * low resolution: the probability (default 0) of shrinking the input to a side of 25-67 % of it (area average)
   * and enlarging it back (linear), as the pipeline enlarges a small face in a group photo
   */
  lowRes?: number;
  /** blur: the probability (default 0) of a Gaussian blur with sigma 0.5-1.5 pixels of a 48-pixel input (scaled with the size) */
  blur?: number;
  /** JPEG: the probability (default 0) of JPEG's 8x8 block quantisation at quality 30-90 (lib/data/degrade.ts) */
  jpeg?: number;
}

/** The ranges the degradations are drawn from: fractions of the input side, and sigma per 48 pixels. */
export const LOW_RES_SIDE: [number, number] = [0.25, 0.67];
export const BLUR_SIGMA: [number, number] = [0.5, 1.5];
export const JPEG_QUALITY: [number, number] = [30, 90];

export const DEFAULT_AUGMENT: Required<AugmentOptions> = {
  scale: [0.8, 1],
  ratio: [0.9, 1.1],
  flip: true,
  rotation: 15,
  zoom: 0,
  shift: 0,
  brightness: 0.1,
  contrast: 0.2,
  erase: 0,
  lowRes: 0,
  blur: 0,
  jpeg: 0,
};

/** A rectangle of the S x S input, in whole pixels. */
export type EraseRect = PixelWindow;

export interface WarpSetting {
  matrix: Float64Array;
  contrast: number;
  brightness: number;
  /** random erasing's rectangle, filled with noise after the warp and the degradations (eraseRect) */
  erase?: EraseRect;
  /** the photo degradations, applied after the warp (lib/data/degrade.ts) */
  degrade?: Degradation;
}

/**
 * Source pixel coordinates for output pixel (u, v) of an S x S output: the
 * crop of size cw x ch centred at (cx, cy), rotated by theta, mirrored when
 * flip = -1 (see native/data/augment.h for the matrix layout).
 */
export function cropMatrix(
  S: number,
  cx: number,
  cy: number,
  cw: number,
  ch: number,
  theta: number,
  flip: 1 | -1,
): Float64Array {
  const cos = Math.cos(theta),
    sin = Math.sin(theta);
  const k = 0.5 / S - 0.5;
  const fx = flip * cw;
  return Float64Array.of(
    (cos * fx) / S,
    (-sin * ch) / S,
    cx - 0.5 + cos * fx * k - sin * ch * k,
    (sin * fx) / S,
    (cos * ch) / S,
    cy - 0.5 + sin * fx * k + cos * ch * k,
  );
}

/** The whole image onto the input: the evaluation mapping. */
export function identityWarp(width: number, height: number, size: number): WarpSetting {
  return { matrix: cropMatrix(size, width / 2, height / 2, width, height, 0, 1), contrast: 1, brightness: 0 };
}

interface Crop {
  cx: number;
  cy: number;
  cw: number;
  ch: number;
}

/** The random resized crop (Szegedy et al.): an area fraction and an aspect ratio, inside the image. */
function resizedCrop(width: number, height: number, o: Required<AugmentOptions>, uniform: Uniform): Crop {
  const area = uniform(o.scale[0], o.scale[1]);
  const ratio = Math.exp(uniform(Math.log(o.ratio[0]), Math.log(o.ratio[1])));
  const cw = Math.min(width, width * Math.sqrt(area * ratio));
  const ch = Math.min(height, height * Math.sqrt(area / ratio));
  return { cw, ch, cx: uniform(cw / 2, width - cw / 2), cy: uniform(ch / 2, height - ch / 2) };
}

/**
 * Keras' zoom and shift (the published FER-2013 recipes' augmentation): the crop may reach past the image, whose
 * edge pixels the warp repeats, so a face moves and shrinks as well as grows.
 */
function zoomedCrop(width: number, height: number, o: Required<AugmentOptions>, uniform: Uniform): Crop {
  const side = o.zoom > 0 ? uniform(1 - o.zoom, 1 + o.zoom) : 1;
  const ratio = Math.exp(uniform(Math.log(o.ratio[0]), Math.log(o.ratio[1])));
  const cw = width * side * Math.sqrt(ratio);
  const ch = (height * side) / Math.sqrt(ratio);
  return { cw, ch, cx: width / 2 + uniform(-o.shift, o.shift) * cw, cy: height / 2 + uniform(-o.shift, o.shift) * ch };
}

type Uniform = (lo: number, hi: number) => number;

/** A random augmentation for one sample. */
export function randomWarp(
  width: number,
  height: number,
  size: number,
  options: AugmentOptions,
  random: () => number,
): WarpSetting {
  const o = { ...DEFAULT_AUGMENT, ...options };
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * random();
  const { cx, cy, cw, ch } =
    o.zoom > 0 || o.shift > 0 ? zoomedCrop(width, height, o, uniform) : resizedCrop(width, height, o, uniform);
  const theta = (uniform(-o.rotation, o.rotation) * Math.PI) / 180;
  const flip = o.flip && random() < 0.5 ? -1 : 1;
  const setting: WarpSetting = {
    matrix: cropMatrix(size, cx, cy, cw, ch, theta, flip),
    contrast: uniform(1 - o.contrast, 1 + o.contrast),
    brightness: uniform(-o.brightness, o.brightness),
  };
  // drawn after the warp's numbers, and only when enabled: without it the stream is unchanged
  if (o.erase > 0 && random() < o.erase) {
    // Zhong et al.'s sampling: area and log-uniform aspect, retried until the rectangle fits
    for (let attempt = 0; attempt < 10; attempt++) {
      const area = uniform(0.02, 0.4) * size * size;
      const aspect = Math.exp(uniform(Math.log(0.3), Math.log(1 / 0.3)));
      const w = Math.round(Math.sqrt(area * aspect)),
        h = Math.round(Math.sqrt(area / aspect));
      if (w < 1 || h < 1 || w > size || h > size) continue;
      setting.erase = {
        x: Math.floor(random() * (size - w + 1)),
        y: Math.floor(random() * (size - h + 1)),
        width: w,
        height: h,
      };
      break;
    }
  }
  // likewise each drawn only when enabled, after erasing's numbers
  const degradation: Degradation = {};
  if (o.lowRes > 0 && random() < o.lowRes)
    degradation.lowRes = Math.max(1, Math.round(size * uniform(LOW_RES_SIDE[0], LOW_RES_SIDE[1])));
  if (o.blur > 0 && random() < o.blur) degradation.blur = (uniform(BLUR_SIGMA[0], BLUR_SIGMA[1]) * size) / 48;
  // every whole quality in the range equally likely (rounding a uniform draw halves the end points' share)
  if (o.jpeg > 0 && random() < o.jpeg)
    degradation.jpeg = JPEG_QUALITY[0] + Math.floor(random() * (JPEG_QUALITY[1] - JPEG_QUALITY[0] + 1));
  if (Object.keys(degradation).length > 0) setting.degrade = degradation;
  return setting;
}

/** Fills rect of every channel of one S x S image at images[offset] with uniform noise in [0, 1]. */
export function eraseRect(
  images: Float32Array,
  offset: number,
  size: number,
  channels: number,
  rect: EraseRect,
  random: () => number,
): void {
  for (let c = 0; c < channels; c++)
    for (let y = rect.y; y < rect.y + rect.height; y++)
      for (let x = rect.x; x < rect.x + rect.width; x++) images[offset + (c * size + y) * size + x] = random();
}
