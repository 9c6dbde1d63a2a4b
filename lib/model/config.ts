// The Xception-k model definition: one configuration object, read by the
// exporter (ONNX), the inference code and the training engine alike.
import { invalidRange, invalidType, isPlainObject, knownKeys, positiveInteger } from '../validate.js';

export interface XceptionConfig {
  /** input height = width in pixels */
  inputSize: number;
  /** 1 (grey) or 3 (RGB) */
  channels: 1 | 3;
  /** multiplier on every channel count (1 = Keras Xception) */
  width: number;
  /** middle-flow blocks (8 in Xception) */
  middleBlocks: number;
  /** embedding heads */
  k: number;
  /** dimensions of one embedding */
  d: number;
  /** output classes */
  classes: number;
  /**
   * Evaluation averages the class probabilities of the image and of its
   * mirror image (a horizontal flip); the embeddings are the image's own.
   * Training is unchanged (it flips at random already). About +1 point of
   * validation accuracy on FER-2013 for twice the inference work.
   */
  flipAverage?: boolean;
  /**
   * Evaluation also averages over four copies of the image moved by this
   * many pixels left, right, up and down (the edge pixels repeated): 5 views,
   * 10 with flipAverage (evaluationViews). Training's random crops move the
   * face by a few pixels too; on FER2013Valid shifts of 1-3 pixels added
   * 0.3 to 1.2 points (docs/inference.md, evaluation views) for five times the inference work.
   */
  shiftAverage?: number;
  /**
   * Evaluation averages over five crops of side inputSize - cropAverage (the
   * four corners and the centre, at floor(cropAverage / 2) from the top left)
   * resized back to the input size (linear, half-pixel centres: ONNX Resize),
   * ten with flipAverage (evaluationViews); the embeddings are the whole
   * image's, which runs once more for them. Training's random resized crops
   * (lib/data/augment.ts) zoom likewise. One or the other with shiftAverage.
   */
  cropAverage?: number;
  /**
   * A prior correction of the evaluated probabilities: p_c / prior_c^priorPower,
   * renormalised to sum 1, after every average (views, ensemble members).
   * prior: one positive number per class (the training split's label counts,
   * in the label order); its scale does not matter. Dividing by the training
   * frequencies moves decisions toward the rare classes (mean class accuracy).
   */
  prior?: number[];
  /** the prior's exponent t (default 1; only with prior) */
  priorPower?: number;
}

/**
 * One view of an image that evaluation averages over: mirrored or not, then
 * moved by (dx, dy) pixels, or (crop views) the square of side crop.size at
 * (crop.left, crop.top) of the (mirrored) image resized to the input size.
 */
export interface EvaluationView {
  flip: boolean;
  dx: number;
  dy: number;
  crop?: { left: number; top: number; size: number };
}

/**
 * The views whose class probabilities evaluation averages (the engine and
 * the exported graph alike). The first is the image itself, whose embeddings
 * are the output, except with cropAverage: then every view is a crop, and the
 * image itself runs once more for its embeddings (imageInViews says which).
 */
export function evaluationViews(config: XceptionConfig): EvaluationView[] {
  const flips = config.flipAverage ? [false, true] : [false];
  const c = config.cropAverage ?? 0;
  if (c) {
    const size = config.inputSize - c,
      h = Math.floor(c / 2);
    const corners = [
      [h, h],
      [0, 0],
      [c, 0],
      [0, c],
      [c, c],
    ];
    return flips.flatMap((flip) => corners.map(([left, top]) => ({ flip, dx: 0, dy: 0, crop: { left, top, size } })));
  }
  const s = config.shiftAverage ?? 0;
  const shifts = s
    ? [
        [0, 0],
        [s, 0],
        [-s, 0],
        [0, s],
        [0, -s],
      ]
    : [[0, 0]];
  return flips.flatMap((flip) => shifts.map(([dx, dy]) => ({ flip, dx, dy })));
}

/** Whether evaluationViews' first view is the image itself (all but crop views). */
export const imageInViews = (views: readonly EvaluationView[]): boolean =>
  !views[0].flip && !views[0].dx && !views[0].dy && !views[0].crop;

/**
 * The prior correction's factors (config.prior, priorPower), or undefined
 * without a prior: w_c = (min prior / prior_c)^t, in float32, at most 1;
 * the corrected probabilities are p_c w_c / sum_j p_j w_j (the engine and the
 * exported graph alike).
 */
export function priorWeights(config: XceptionConfig): Float32Array | undefined {
  if (!config.prior) return undefined;
  const t = config.priorPower ?? 1;
  const least = Math.min(...config.prior);
  return Float32Array.from(config.prior, (n) => (least / n) ** t);
}

/** The paper's configuration (about 24.5 M parameters with its heads). */
export const PAPER: XceptionConfig = {
  inputSize: 224,
  channels: 3,
  width: 1,
  middleBlocks: 8,
  k: 7,
  d: 256,
  classes: 7,
};

export const PRESETS: Readonly<Record<string, XceptionConfig>> = {
  paper: PAPER,
  /** FER-2013 at its native 48x48 grey, full width */
  'fer-48': { inputSize: 48, channels: 1, width: 1, middleBlocks: 8, k: 7, d: 256, classes: 7 },
  /** FER-2013's 48x48 grey, 3/8 width, 4 middle blocks: the default model's configuration (an epoch of FER-2013 in about 4 minutes on 2 CPU cores) */
  small: { inputSize: 48, channels: 1, width: 0.375, middleBlocks: 4, k: 7, d: 64, classes: 7 },
  /** 48x48 grey, half width, 4 middle blocks: the FER+ model's configuration (an epoch of FER+ in about 3 minutes on 2 CPU cores) */
  medium: { inputSize: 48, channels: 1, width: 0.5, middleBlocks: 4, k: 7, d: 64, classes: 7 },
  /** the smallest: FER-2013's 48x48 grey, quarter width, 4 middle blocks (an epoch of FER-2013 in about 2 minutes on 2 CPU cores) */
  mini: { inputSize: 48, channels: 1, width: 0.25, middleBlocks: 4, k: 7, d: 64, classes: 7 },
  /** a compact model for CPU training: 64x64 grey, half width, 4 middle blocks */
  compact: { inputSize: 64, channels: 1, width: 0.5, middleBlocks: 4, k: 7, d: 128, classes: 7 },
};

/**
 * The configuration keys that make the network; the others (flipAverage,
 * shiftAverage, cropAverage, prior, priorPower) only say how evaluation views
 * the image and reads the probabilities.
 */
const ARCHITECTURE_KEYS = ['inputSize', 'channels', 'width', 'middleBlocks', 'k', 'd', 'classes'] as const;
const KEYS = [...ARCHITECTURE_KEYS, 'flipAverage', 'shiftAverage', 'cropAverage', 'prior', 'priorPower'] as const;

/** The largest prior exponent (t = 1 divides by the prior; beyond 1 over-corrects). */
export const MAX_PRIOR_POWER = 4;

/** The configuration without its evaluation settings: what an ensemble member's network is. */
export const architectureOf = (c: XceptionConfig): XceptionConfig =>
  Object.fromEntries(ARCHITECTURE_KEYS.map((k) => [k, c[k]])) as unknown as XceptionConfig;

/** Whether two configurations build the same network (whatever their evaluation settings). */
export const sameArchitecture = (a: XceptionConfig, b: XceptionConfig): boolean =>
  ARCHITECTURE_KEYS.every((k) => a[k] === b[k]);

/** Smallest input whose feature map survives the network's five halvings and two valid convolutions. */
export const MIN_INPUT_SIZE = 29;

/** Checks a configuration (with messages naming the field) and returns it typed. */
export function validateConfig(config: unknown, name = 'config'): XceptionConfig {
  if (!isPlainObject(config)) throw invalidType(name, 'object', config);
  if ('inputBlur' in config)
    throw invalidRange(
      `${name}.inputBlur`,
      'no input blur (the option is gone: it made up for blurred FER-2013 training crops, and the crops are sharp now)',
      String(config.inputBlur),
    );
  knownKeys(name, config, KEYS);
  const inputSize = positiveInteger(`${name}.inputSize`, config.inputSize);
  if (inputSize < MIN_INPUT_SIZE)
    throw invalidRange(`${name}.inputSize`, `integer >= ${MIN_INPUT_SIZE}`, String(inputSize));
  if (config.channels !== 1 && config.channels !== 3)
    throw invalidRange(`${name}.channels`, '1 or 3', String(config.channels));
  if (typeof config.width !== 'number' || !(config.width > 0 && config.width <= 4)) {
    throw invalidRange(`${name}.width`, 'number in (0, 4]', String(config.width));
  }
  const middleBlocks = config.middleBlocks === 0 ? 0 : positiveInteger(`${name}.middleBlocks`, config.middleBlocks);
  if (config.flipAverage !== undefined && typeof config.flipAverage !== 'boolean')
    throw invalidType(`${name}.flipAverage`, 'boolean', config.flipAverage);
  const flipAverage = config.flipAverage ? { flipAverage: true } : {};
  // a quarter of the side at most: the face stays in the picture
  const maxShift = Math.floor(inputSize / 4);
  if (config.shiftAverage !== undefined) {
    if (typeof config.shiftAverage !== 'number')
      throw invalidType(`${name}.shiftAverage`, 'number', config.shiftAverage);
    if (!Number.isInteger(config.shiftAverage) || config.shiftAverage < 0 || config.shiftAverage > maxShift)
      throw invalidRange(`${name}.shiftAverage`, `integer in [0, ${maxShift}] (pixels)`, String(config.shiftAverage));
  }
  const shiftAverage = config.shiftAverage ? { shiftAverage: config.shiftAverage as number } : {};
  // as much as shifts: the crop keeps at least three quarters of the side
  if (config.cropAverage !== undefined) {
    if (typeof config.cropAverage !== 'number') throw invalidType(`${name}.cropAverage`, 'number', config.cropAverage);
    if (!Number.isInteger(config.cropAverage) || config.cropAverage < 0 || config.cropAverage > maxShift)
      throw invalidRange(
        `${name}.cropAverage`,
        `integer in [0, ${maxShift}] (pixels cut from the side)`,
        String(config.cropAverage),
      );
    if (config.cropAverage && config.shiftAverage)
      throw invalidRange(
        `${name}.cropAverage`,
        `0 with ${name}.shiftAverage ${String(config.shiftAverage)} (crop views or shift views, one at a time)`,
        String(config.cropAverage),
      );
  }
  const cropAverage = config.cropAverage ? { cropAverage: config.cropAverage as number } : {};
  const k = positiveInteger(`${name}.k`, config.k);
  const d = positiveInteger(`${name}.d`, config.d);
  const classes = positiveInteger(`${name}.classes`, config.classes);
  let prior = {};
  if (config.prior !== undefined) {
    if (!Array.isArray(config.prior)) throw invalidType(`${name}.prior`, `array of ${classes} numbers`, config.prior);
    if (config.prior.length !== classes)
      throw invalidRange(
        `${name}.prior`,
        `${classes} numbers (one per class)`,
        `${config.prior.length} (${config.prior.join(', ')})`,
      );
    config.prior.forEach((v: unknown, i) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
        throw invalidRange(`${name}.prior[${i}]`, 'finite number > 0', String(v));
    });
    prior = { prior: [...(config.prior as number[])] };
  }
  let priorPower = {};
  if (config.priorPower !== undefined) {
    const t = config.priorPower;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > MAX_PRIOR_POWER)
      throw invalidRange(`${name}.priorPower`, `number in (0, ${MAX_PRIOR_POWER}]`, String(t));
    if (config.prior === undefined)
      throw invalidRange(`${name}.priorPower`, `${name}.prior beside it (the power of a prior)`, String(t));
    if (t !== 1) priorPower = { priorPower: t };
  }
  return {
    inputSize,
    channels: config.channels,
    width: config.width,
    middleBlocks,
    k,
    d,
    classes,
    ...flipAverage,
    ...shiftAverage,
    ...cropAverage,
    ...prior,
    ...priorPower,
  };
}

/** A channel count scaled by the width multiplier: a multiple of 8, at least 8. */
export function scaled(channels: number, width: number): number {
  return Math.max(8, Math.round((channels * width) / 8) * 8);
}
