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
   * 0.3 to 1.2 points (README, Shift averaging) for five times the inference work.
   */
  shiftAverage?: number;
}

/** One view of an image that evaluation averages over: mirrored or not, then moved by (dx, dy) pixels. */
export interface EvaluationView {
  flip: boolean;
  dx: number;
  dy: number;
}

/**
 * The views whose class probabilities evaluation averages (the engine and
 * the exported graph alike); the first is the image itself, whose embeddings
 * are the output.
 */
export function evaluationViews(config: XceptionConfig): EvaluationView[] {
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
  const flips = config.flipAverage ? [false, true] : [false];
  return flips.flatMap((flip) => shifts.map(([dx, dy]) => ({ flip, dx, dy })));
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

/** The configuration keys that make the network; the others (flipAverage, shiftAverage) only say how evaluation views the image. */
const ARCHITECTURE_KEYS = ['inputSize', 'channels', 'width', 'middleBlocks', 'k', 'd', 'classes'] as const;
const KEYS = [...ARCHITECTURE_KEYS, 'flipAverage', 'shiftAverage'] as const;

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
  return {
    inputSize,
    channels: config.channels,
    width: config.width,
    middleBlocks,
    k: positiveInteger(`${name}.k`, config.k),
    d: positiveInteger(`${name}.d`, config.d),
    classes: positiveInteger(`${name}.classes`, config.classes),
    ...flipAverage,
    ...shiftAverage,
  };
}

/** A channel count scaled by the width multiplier: a multiple of 8, at least 8. */
export function scaled(channels: number, width: number): number {
  return Math.max(8, Math.round((channels * width) / 8) * 8);
}
