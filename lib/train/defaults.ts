// The training defaults, in one place: adcorre-train shows and uses them, the
// Trainer fills its options from them, and Engine.trainStep fills the step
// options a caller leaves out from them, so that the API trains as the CLI does.
import type { XceptionConfig } from '../model/config.js';

/**
 * The training defaults. They are the recipe of the shipped default model (models/README.md): Adam at 2e-3, one
 * warm-up epoch, cosine decay; with the CLI's preset and epochs and flip averaging in evaluation.
 */
export const TRAINING_DEFAULTS = {
  dataset: 'auto' as const,
  labels: 'majority' as const,
  lr: 2e-3,
  decay: 1e-5,
  schedule: 'cosine' as const,
  warmup: 1,
  stepEvery: 10,
  stepGamma: 0.5,
  plateauPatience: 5,
  plateauFactor: 0.75,
  optimizer: 'adam' as const,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 0,
  bnMomentum: 0.9,
  lambdaCE: 50,
  labelSmoothing: 0,
  wFD: 1,
  wMD: 1,
  wED: 1,
  adcorre: true,
  attention: true,
  history: 1000,
  augment: true,
  rotation: 15,
  zoom: 0,
  shift: 0,
  randomErasing: 0,
  lowRes: 0,
  blur: 0,
  jpeg: 0,
  mixup: 0,
  cutmix: 0,
  mixProb: 1,
  teacherTemperature: 4,
  teacherWeight: 0.5,
  balanced: false,
  seed: 1,
  valFraction: 0.1,
  checkpointEvery: 0,
  onNonFinite: 'skip' as const,
  maxNonFiniteSteps: 20,
  ema: 0,
  emaWarmup: true,
  device: 'auto',
  // the GEMMs' compute precision: fp32 until the bf16 parity runs (native/KERNELS.md) decide
  precision: 'fp32' as const,
};

/** adcorre-train's defaults for what the Trainer requires: the preset, epochs and batch size. */
export const CLI_DEFAULTS = { arch: 'small', epochs: 40, flipAverage: true } as const;
/** The batch size: 50 for the paper preset, as in the reference code; else 64. */
export const defaultBatch = (arch: string | XceptionConfig): number => (arch === 'paper' ? 50 : 64);
