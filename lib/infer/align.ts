// Face alignment: the square a detected face is classified from, placed so
// that the face sits in it as FER-2013's training crops hold theirs. The eyes
// fix the rotation (the line through them made level), the centre and the
// scale; the framing they are mapped to was measured on the training data
// itself (scripts/measure-framing.js), not chosen by eye. Prediction, the
// whole-pipeline evaluation and the aligned training crops (adcorre-data align)
// all place faces through faceSquare(), so a model sees real faces framed as
// it was trained.
import { luma, resampleSquare } from '../pixels.js';
import { BOX_MARGIN } from './defaults.js';
import type { FaceBox } from './detect.js';

/**
 * Where BlazeFace's eye and mouth keypoints fall in FER-2013's 48x48 training crops, as fractions of the
 * crop side: medians over 1,127 of 1,151 training crops (every 25th of each class; 24 had no detection),
 * each enlarged 4x with 48 px of repeated edge around it (`node scripts/measure-framing.js`,
 * 2026-12-05). Quartiles: eye midpoint y 17.06-19.81 px, eye distance 15.52-18.77 px, eye-line angle
 * -4.3 to 5.3 degrees.
 */
export const TRAINING_FRAMING = {
  /** the midpoint between the eyes (x, y) */
  eyeCentre: [24.05 / 48, 18.6 / 48] as const,
  /** the distance between the eyes */
  eyeDistance: 17.41 / 48,
  /** the distance from the eye midpoint to the mouth */
  eyeToMouth: 19.02 / 48,
};

/** The item whose box is largest (by area): the face a portrait or a posed photo is about. */
export function largestBy<T>(items: T[], box: (item: T) => { width: number; height: number }): T | undefined {
  let best: T | undefined,
    bestArea = -1;
  for (const item of items) {
    const { width, height } = box(item);
    if (width * height > bestArea) [best, bestArea] = [item, width * height];
  }
  return best;
}

// The box-based framing (align: false): the box's longer side times BOX_MARGIN, moved up by this share of it.
const BOX_SHIFT_UP = 0.1; // BlazeFace boxes sit lower on the face than FER-2013's crops (measured)

/** A square of the image, possibly turned: what one face is classified from. */
export interface FaceSquare {
  /** centre, in image pixels */
  cx: number;
  cy: number;
  /** side, in image pixels */
  side: number;
  /** the square's turn in radians (clockwise in image coordinates, y down): the eye line's angle */
  angle: number;
}

/** The square around a detected box: side = longer side x margin, no turn (the pre-alignment framing). */
export function boxSquare(box: Pick<FaceBox, 'x' | 'y' | 'width' | 'height'>, margin = BOX_MARGIN): FaceSquare {
  const side = Math.max(box.width, box.height) * margin;
  return { cx: box.x + box.width / 2, cy: box.y + box.height / 2 - BOX_SHIFT_UP * side, side, angle: 0 };
}

/**
 * The square that maps a face's eyes and mouth onto TRAINING_FRAMING: level eyes, the eye midpoint where
 * the training crops hold it, and the scale from the geometric mean of the eye distance and the
 * eye-to-mouth distance (either alone shrinks with a turned or tilted head; their mean varies least).
 * Falls back to boxSquare when the keypoints are missing or degenerate.
 */
export function faceSquare(face: FaceBox): FaceSquare {
  const [right, left, , mouth] = face.keypoints ?? [];
  if (!right || !left || !mouth) return boxSquare(face);
  const mx = (right[0] + left[0]) / 2,
    my = (right[1] + left[1]) / 2;
  const eyes = Math.hypot(left[0] - right[0], left[1] - right[1]);
  const toMouth = Math.hypot(mouth[0] - mx, mouth[1] - my);
  const side = Math.sqrt((eyes / TRAINING_FRAMING.eyeDistance) * (toMouth / TRAINING_FRAMING.eyeToMouth));
  // keypoints that collapse onto each other, or a square far from the box, are not a face's: use the box
  const boxSide = Math.max(face.width, face.height);
  if (!Number.isFinite(side) || side < 0.5 * boxSide || side > 3 * boxSide) return boxSquare(face);
  const angle = Math.atan2(left[1] - right[1], left[0] - right[0]);
  // the square's centre is the eye midpoint moved by the framing's offset, turned with the face
  const dx = (0.5 - TRAINING_FRAMING.eyeCentre[0]) * side,
    dy = (0.5 - TRAINING_FRAMING.eyeCentre[1]) * side;
  const cos = Math.cos(angle),
    sin = Math.sin(angle);
  return { cx: mx + cos * dx - sin * dy, cy: my + sin * dx + cos * dy, side, angle };
}

/** Where a point of the image lands in an output of `size` pixels made from the square (pixel centres at +0.5). */
export function toSquare(square: FaceSquare, size: number, x: number, y: number): [number, number] {
  const cos = Math.cos(square.angle),
    sin = Math.sin(square.angle);
  const dx = x - square.cx,
    dy = y - square.cy;
  const k = size / square.side;
  return [(cos * dx + sin * dy) * k + size / 2, (-sin * dx + cos * dy) * k + size / 2];
}

/**
 * The model's input for a square of an RGB image (planar floats in 0-1, channels x size x size at
 * out[offset]): edge pixels repeat where the square leaves the image, area averaging when shrinking,
 * grey as Rec. 601 luma (as the training data reader).
 */
export function faceTensor(
  image: { rgb: Uint8Array; width: number; height: number },
  square: FaceSquare,
  size: number,
  channels: number,
  out: Float32Array,
  offset: number,
): void {
  const rgb = resampleSquare(image.rgb, image.width, image.height, square, size);
  const plane = size * size;
  if (channels === 1) {
    for (let i = 0; i < plane; i++) out[offset + i] = luma(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) / 255;
  } else {
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < plane; i++) out[offset + c * plane + i] = rgb[i * 3 + c] / 255;
  }
}
