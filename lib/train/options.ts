// The Trainer's option and record types, in a leaf module: the trainer's parts (run files, run state, the
// schedule, the step guard, the outputs) type themselves by them without importing the trainer.
import type { DatasetFormat } from '../data/dataset.js';
import type { FerPlusLabels } from '../data/readers/ferplus.js';
import type { SkipSummary } from '../data/skips.js';
import type { EngineOptions, StepStats } from '../engine/engine.js';
import type { XceptionConfig } from '../model/config.js';
import type { ClassificationMetrics } from './metrics.js';

export interface TrainerOptions {
  dataset?: DatasetFormat | 'auto';
  data: string;
  classes?: 7 | 8;
  fer2013?: string;
  /**
   * FER+: 'majority' (default) trains on each image's most voted emotion; 'distribution' trains the cross-entropy on
   * the normalised crowd votes (the FER+ paper's PLD scheme). Ad-Corre's class terms, the attention map and every
   * accuracy use the majority label in both.
   */
  labels?: FerPlusLabels;
  /** a preset name (paper, fer-48, compact), a JSON file with a configuration, or the configuration */
  arch: string | XceptionConfig;
  /** override the configuration's flipAverage (evaluation averages the image's and its mirror image's probabilities) */
  flipAverage?: boolean;
  epochs: number;
  batch: number;
  out: string;
  lr?: number;
  /** Keras-style inverse-time decay per step: lr / (1 + decay * step) (the reference code's Adam) */
  decay?: number;
  /** 'plateau': lr x plateauFactor after plateauPatience epochs without a better validation accuracy */
  schedule?: 'decay' | 'cosine' | 'step' | 'plateau';
  /** warm-up epochs (linear from lr / 10) */
  warmup?: number;
  stepEvery?: number;
  stepGamma?: number;
  /** with schedule 'plateau': epochs without a better validation accuracy before the learning rate drops (default 5) */
  plateauPatience?: number;
  /** with schedule 'plateau': the factor it drops by (default 0.75, as Khaireddin and Chen 2021) */
  plateauFactor?: number;
  optimizer?: 'adam' | 'sgd';
  momentum?: number;
  /** SGD: Nesterov momentum (default false) */
  nesterov?: boolean;
  weightDecay?: number;
  /** batch-norm running-statistics momentum (0.9: they settle within an epoch of a small dataset) */
  bnMomentum?: number;
  lambdaCE?: number;
  /**
   * Label smoothing (Szegedy et al. 2016): the cross-entropy's target is (1 - e) x the label (or, for FER+ vote
   * distributions, the distribution) + e / classes. Ad-Corre, the attention map and accuracy keep the hard label.
   */
  labelSmoothing?: number;
  wFD?: number;
  wMD?: number;
  wED?: number;
  /** false: cross-entropy only (the ablation) */
  adcorre?: boolean;
  /** the adaptive attention map from the last `history` training predictions (false: uniform) */
  attention?: boolean;
  history?: number;
  augment?: boolean;
  /**
   * mixup's Beta(alpha, alpha) parameter (lib/train/mix.ts; 0: off, the default): batches blend each image with a
   * shuffled partner, the cross-entropy's target likewise; Ad-Corre, the attention map and accuracy use the dominant label
   */
  mixup?: number;
  /** CutMix's Beta(alpha, alpha) parameter (0: off); with mixup on too, each mixed batch picks one, 50/50 */
  cutmix?: number;
  /** with mixup or cutmix: the probability that a batch is mixed (default 1) */
  mixProb?: number;
  /**
   * knowledge distillation: a teacher model (.onnx, the student's input and labels) run on each training batch as
   * the student sees it; the cross-entropy's target becomes (1 - teacherWeight) x the target + teacherWeight x
   * softmax(log(p_teacher) / teacherTemperature) (lib/train/distill.ts)
   */
  teacher?: string;
  /** the teacher's temperature (default 4; the student's cross-entropy stays at 1) */
  teacherTemperature?: number;
  /** the teacher's share of the target (default 0.5) */
  teacherWeight?: number;
  /** the warp's rotation range, +-degrees (lib/data/augment.ts; default 15) */
  rotation?: number;
  /** Keras-style zoom: the crop's side in [1 - zoom, 1 + zoom] of the image, in place of the resized crop (default 0: off) */
  zoom?: number;
  /** Keras-style shift: the crop's centre moved by up to +-shift x its side (default 0) */
  shift?: number;
  /** random erasing's probability per training image (lib/data/augment.ts; default 0) */
  randomErasing?: number;
  /** low-resolution augmentation's probability per training image (lib/data/degrade.ts; default 0) */
  lowRes?: number;
  /** blur augmentation's probability per training image (lib/data/degrade.ts; default 0) */
  blur?: number;
  /** JPEG augmentation's probability per training image (lib/data/degrade.ts; default 0) */
  jpeg?: number;
  balanced?: boolean;
  seed?: number;
  workers?: number;
  /** fraction of train held out for validation when the dataset has no val split */
  valFraction?: number;
  /** where the engine runs: 'auto' (the GPU when one is usable, default), 'cpu', 'cuda' or 'cuda:N' */
  device?: EngineOptions['device'];
  /**
   * what the GEMM-based ops compute in: 'fp32' (default), 'bf16' (bf16 operands, fp32 accumulation and master state;
   * the CPU only) or 'auto' (bf16 where the CPU runs the AVX512-BF16 kernel). A resume may change it (the state is fp32).
   */
  precision?: EngineOptions['precision'];
  /** start from the weights of a checkpoint (.ckpt) or an exported model (.onnx): fine-tuning */
  init?: string;
  /** continue the run in `out` from its last checkpoint */
  resume?: boolean;
  /** start over in an `out` that holds a run, deleting that run's checkpoints, model, metrics and charts first */
  force?: boolean;
  /** also checkpoint every this many steps (0: at the end of each epoch only) */
  checkpointEvery?: number;
  /** stop after this many steps in total (tests and quick trials) */
  maxSteps?: number;
  /**
   * Exponential moving average of the weights (and batch-norm statistics) with this decay, e.g. 0.999 (0: off, the
   * default); validation, best.ckpt and model.onnx use the average, checkpoints also hold the raw weights
   */
  ema?: number;
  /** with ema: the decay at update t is min(ema, (1 + t) / (10 + t)) (default true) */
  emaWarmup?: boolean;
  /** NaN or Infinity in a step: 'skip' it (default) or 'stop' training */
  onNonFinite?: 'skip' | 'stop';
  /** with onNonFinite 'skip': stop after this many non-finite steps in a row (default 20), as the weights no longer train */
  maxNonFiniteSteps?: number;
}

export interface EpochRecord {
  epoch: number;
  step: number;
  lr: number;
  train: {
    loss: number;
    ce: number;
    fd: number;
    md: number;
    ed: number;
    accuracy: number;
    samplesPerSecond: number;
    skippedSteps: number;
  };
  val: ClassificationMetrics;
}

export interface TrainSummary {
  out: string;
  config: XceptionConfig;
  /** where the engine ran: 'cpu' or 'cuda:N' */
  device: string;
  parameters: number;
  epochs: number;
  steps: number;
  best: { accuracy: number; meanClassAccuracy: number; epoch: number } | null;
  interrupted: boolean;
  seconds: number;
  checkpoint: string;
  model: string | null;
  /** what was skipped: reading the dataset, then decoding its images during the run */
  skipped: SkipSummary;
  /** steps skipped for a non-finite loss or gradient (this session's, with onNonFinite 'skip') */
  nonFiniteSteps: number;
  /** what went wrong without stopping the run (a diverging loss), as reported by 'warning' progress events */
  warnings: string[];
}

export interface ProgressEvent {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  stats?: StepStats;
  samplesPerSecond: number;
  phase: 'start' | 'train' | 'eval' | 'epoch-end' | 'warning';
  record?: EpochRecord;
  /** with phase 'warning': what went wrong without stopping the run (a loss that grew by orders of magnitude) */
  warning?: string;
  /** with phase 'start': what the run is about to do */
  start?: {
    config: XceptionConfig;
    parameters: number;
    device: string;
    /** what the GEMM-based ops compute in, 'auto' resolved */
    precision: 'fp32' | 'bf16';
    trainSamples: number;
    valSamples: number;
    resumedAt?: number;
    /** what reading the dataset skipped (bad rows, files, links) and excluded */
    skipped: SkipSummary;
  };
}

/** The options as the Trainer holds them: every default filled in (lib/train/defaults.ts). */
export type ResolvedOptions = Required<
  Omit<TrainerOptions, 'classes' | 'fer2013' | 'init' | 'maxSteps' | 'workers' | 'resume' | 'force' | 'teacher'>
> &
  TrainerOptions;
