// The training workflow (the paper's TrainModel(...).train()): data, engine,
// cross-entropy + Ad-Corre with the adaptive attention map, learning-rate
// schedule, evaluation on the validation split every epoch, the best model
// kept (checkpoint + ONNX), atomic checkpoints, exact resume, clean interrupt.
import { existsSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ConfusionTracker } from '../confusion.js';
import { DataLoader } from '../data/loader.js';
import type { Dataset, DatasetFormat, Split } from '../data/dataset.js';
import type { FerPlusLabels } from '../data/readers/ferplus.js';
import { openDataset } from '../data/open.js';
import { SkipReport, type SkipSummary } from '../data/skips.js';
import { mixSeed } from '../data/random.js';
import { deviceIndex, Engine, type EngineOptions, type StepStats } from '../engine/engine.js';
import { ensureDir, OutputFolderError, writeFileAtomic } from '../io.js';
import { describeMemory, formatBytes, memoryLimit, trainingMemory } from '../memory.js';
import { buildArchitecture, parameterCount } from '../model/architecture.js';
import { PRESETS, validateConfig, type XceptionConfig } from '../model/config.js';
import { exportOnnx, readOnnxWeights } from '../model/onnx.js';
import type { Weights } from '../model/weights.js';
import { confusionSvg, lineChartSvg, writePng as writeChart } from './charts.js';
import { type CheckpointMeta, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import {
  appendJsonLine,
  type ClassificationMetrics,
  confusionMatrix,
  DivergenceWatch,
  metricsFrom,
} from './metrics.js';
import { WeightEma } from './ema.js';
import { mixBatch, type MixSpec } from './mix.js';
import { distilledTargets, Teacher, temperatureScaled } from './distill.js';
import { blendedTargets } from './targets.js';
import { acquireRunLock } from './run-lock.js';
import { printable } from '../terminal.js';
import { numberIn, OptionError, oneOf } from '../validate.js';
import { VERSION } from '../version.js';

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
  /** random erasing's probability per training image (lib/data/augment.ts; default 0) */
  randomErasing?: number;
  balanced?: boolean;
  seed?: number;
  workers?: number;
  /** fraction of train held out for validation when the dataset has no val split */
  valFraction?: number;
  /** where the engine runs: 'auto' (the GPU when one is usable, default), 'cpu', 'cuda' or 'cuda:N' */
  device?: EngineOptions['device'];
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
    trainSamples: number;
    valSamples: number;
    resumedAt?: number;
    /** what reading the dataset skipped (bad rows, files, links) and excluded */
    skipped: SkipSummary;
  };
}

/**
 * The training defaults, in one place: the Trainer fills options from them and adcorre-train shows and uses them.
 * They are the recipe of the shipped default model (models/README.md): Adam at 2e-3, one warm-up epoch, cosine
 * decay; with CLI_DEFAULTS' preset and epochs and flip averaging in evaluation.
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
  randomErasing: 0,
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
};

/** adcorre-train's defaults for what the Trainer requires: the preset, epochs and batch size. */
export const CLI_DEFAULTS = { arch: 'small', epochs: 40, flipAverage: true } as const;
/** The batch size: 50 for the paper preset, as in the reference code; else 64. */
export const defaultBatch = (arch: string | XceptionConfig): number => (arch === 'paper' ? 50 : 64);

export function resolveArch(arch: string | XceptionConfig): XceptionConfig {
  if (typeof arch !== 'string') return validateConfig(arch, 'arch');
  if (PRESETS[arch]) return PRESETS[arch];
  if (existsSync(arch)) {
    let text: string, json: unknown;
    try {
      text = readFileSync(arch, 'utf8');
    } catch (err) {
      throw new Error(`Cannot read the configuration file ${arch} given as arch: ${(err as Error).message}`);
    }
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new SyntaxError(
        `The configuration file ${arch} given as arch is not valid JSON: ${(err as Error).message}`,
      );
    }
    return validateConfig(json, arch);
  }
  throw new RangeError(
    `Expected a preset (${Object.keys(PRESETS).join(', ')}) or a configuration file for arch but received '${arch}'`,
  );
}

/** Checks that `dir` can take `bytes` more, before an hour of training rather than after. */
export function checkWritable(dir: string, bytes: number, option = 'out'): void {
  ensureDir(dir, option); // fails fast (never hangs) on /proc and the like, or a path under a file
  try {
    const probe = join(dir, `.write-test-${process.pid}`);
    writeFileSync(probe, 'ok');
    rmSync(probe);
  } catch (err) {
    throw new OutputFolderError(
      option,
      dir,
      `not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  try {
    const fs = statfsSync(dir);
    const free = fs.bavail * fs.bsize;
    if (free < bytes)
      throw new OutputFolderError(
        option,
        dir,
        `only ${(free / 2 ** 20).toFixed(0)} MiB free; this run needs about ${(bytes / 2 ** 20).toFixed(0)} MiB for checkpoints and models`,
      );
  } catch (err) {
    if (err instanceof OutputFolderError) throw err;
  }
}

/**
 * Every option's type and range (OptionError naming the option), and the
 * batch's memory on the CPU against what the machine allows.
 */
function validateOptions(o: Trainer['options']): void {
  const positiveInt = (key: keyof TrainerOptions) =>
    numberIn(key, o[key], { min: 1, integer: true, max: 0x7fffffff }, 'positive integer');
  const nonNegativeInt = (key: keyof TrainerOptions) =>
    numberIn(key, o[key], { min: 0, integer: true, max: 0x7fffffff }, 'non-negative integer');
  positiveInt('epochs');
  positiveInt('batch');
  numberIn('lr', o.lr, { min: 0, minExclusive: true, max: 10 }, 'positive number (at most 10)');
  numberIn('decay', o.decay, { min: 0 }, 'non-negative number');
  numberIn('warmup', o.warmup, { min: 0, max: o.epochs }, `number of epochs in [0, ${o.epochs}] (--epochs)`);
  numberIn('stepEvery', o.stepEvery, { min: 0, minExclusive: true }, 'positive number of epochs');
  numberIn('stepGamma', o.stepGamma, { min: 0, minExclusive: true, max: 1 }, 'number in (0, 1]');
  numberIn('plateauPatience', o.plateauPatience, { min: 1, integer: true, max: 0x7fffffff }, 'positive integer');
  numberIn(
    'plateauFactor',
    o.plateauFactor,
    { min: 0, minExclusive: true, max: 1, maxExclusive: true },
    'number in (0, 1)',
  );
  numberIn('momentum', o.momentum, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  numberIn('bnMomentum', o.bnMomentum, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  numberIn('weightDecay', o.weightDecay, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  for (const key of ['lambdaCE', 'wFD', 'wMD', 'wED'] as const)
    numberIn(key, o[key], { min: 0 }, 'non-negative number (a loss weight)');
  if (o.lambdaCE === 0 && (!o.adcorre || o.wFD + o.wMD + o.wED === 0))
    throw new OptionError('lambdaCE', 'a positive loss weight somewhere', '0', 'every term of the loss is off');
  numberIn('labelSmoothing', o.labelSmoothing, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  numberIn('randomErasing', o.randomErasing, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('mixup', o.mixup, { min: 0, max: 100 }, "Beta distribution's alpha in [0, 100] (0: off)");
  numberIn('cutmix', o.cutmix, { min: 0, max: 100 }, "Beta distribution's alpha in [0, 100] (0: off)");
  numberIn('mixProb', o.mixProb, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('teacherTemperature', o.teacherTemperature, { min: 0, minExclusive: true, max: 100 }, 'number in (0, 100]');
  numberIn('teacherWeight', o.teacherWeight, { min: 0, max: 1 }, 'number in [0, 1]');
  if (o.teacher !== undefined && (typeof o.teacher !== 'string' || !o.teacher))
    throw new OptionError('teacher', 'the path of an .onnx model', String(o.teacher));
  positiveInt('history');
  numberIn(
    'valFraction',
    o.valFraction,
    { min: 0, minExclusive: true, max: 1, maxExclusive: true },
    'number in (0, 1)',
  );
  nonNegativeInt('seed');
  numberIn('ema', o.ema, { min: 0, max: 1, maxExclusive: true }, 'decay in [0, 1) (0: off)');
  if (typeof o.emaWarmup !== 'boolean') throw new OptionError('emaWarmup', 'true or false', String(o.emaWarmup));
  nonNegativeInt('checkpointEvery');
  positiveInt('maxNonFiniteSteps');
  if (o.force && o.resume)
    throw new OptionError('force', 'either force (start over) or resume (continue the run), not both', 'both');
  if (o.maxSteps !== undefined) positiveInt('maxSteps');
  if (o.workers !== undefined)
    numberIn('workers', o.workers, { min: 0, max: 256, integer: true }, 'integer in [0, 256]');
  oneOf('labels', o.labels, ['majority', 'distribution']);
  oneOf('schedule', o.schedule, ['decay', 'cosine', 'step', 'plateau']);
  oneOf('optimizer', o.optimizer, ['adam', 'sgd']);
  if (typeof o.nesterov !== 'boolean') throw new OptionError('nesterov', 'true or false', String(o.nesterov));
  if (o.nesterov && o.optimizer !== 'sgd')
    throw new OptionError('nesterov', "optimizer 'sgd' (Nesterov momentum is SGD's)", `optimizer '${o.optimizer}'`);
  oneOf('onNonFinite', o.onNonFinite, ['skip', 'stop']);
}

/**
 * Soft cross-entropy targets [n][classes] with label smoothing: (1 - epsilon) x each row's target (the label's one-hot
 * vector, or its row of `targets`, e.g. FER+ vote distributions) + epsilon / classes.
 */
export function smoothedTargets(
  labels: Int32Array,
  targets: Float32Array | undefined,
  classes: number,
  epsilon: number,
): Float32Array {
  return blendedTargets(labels, targets, classes, epsilon, () => epsilon / classes);
}

/** The reduce-on-plateau schedule's state: the learning rate is lr x scale (kept in checkpoints). */
export interface PlateauState {
  /** the best validation accuracy so far (-1 before the first epoch) */
  best: number;
  /** epochs since it last improved */
  bad: number;
  scale: number;
  reductions: number;
}

export const freshPlateau = (): PlateauState => ({ best: -1, bad: 0, scale: 1, reductions: 0 });

/**
 * One epoch's validation accuracy into the plateau schedule (Keras' ReduceLROnPlateau, mode max, no cooldown): an
 * accuracy above the best resets the count; `patience` epochs in a row without one multiply the scale by `factor`.
 */
export function plateauAfter(state: PlateauState, accuracy: number, patience: number, factor: number): PlateauState {
  if (accuracy > state.best) return { ...state, best: accuracy, bad: 0 };
  const bad = state.bad + 1;
  if (bad < patience) return { ...state, bad };
  return { ...state, bad: 0, scale: state.scale * factor, reductions: state.reductions + 1 };
}

/** Refuses, with the sizes, a batch whose training memory the machine does not have (CPU engine). */
export function checkBatchMemory(config: XceptionConfig, batch: number, limit = memoryLimit()): void {
  const need = trainingMemory(config, batch);
  const usable = limit * 0.8;
  if (need.total <= usable) return;
  const fits = Math.max(0, Math.floor((usable - need.fixed) / need.perImage));
  throw new OptionError(
    'batch',
    `a batch size that fits in memory (at most ${fits} images of ${config.inputSize}x${config.inputSize}x${config.channels} for this model here)`,
    String(batch),
    `batches of ${batch} need about ${formatBytes(need.total)} (${formatBytes(need.perImage)} per image, ` +
      `${formatBytes(need.fixed)} for the weights and the rest); ${describeMemory()}`,
  );
}

// What makes a folder hold a run: a new run there would overwrite its checkpoints and report its model as its own.
const RUN_MARKERS = ['last.ckpt', 'best.ckpt', 'model.onnx', 'metrics.jsonl', 'summary.json'];
// What force deletes, in this order: the checkpoint first, so that a deletion cut short never leaves a folder that a
// resume would continue with part of its metrics gone (what is left still holds a run: a new run is still refused).
const RUN_FILES = [
  'last.ckpt',
  'summary.json',
  'model.onnx',
  'best.ckpt',
  'metrics.jsonl',
  'loss.png',
  'accuracy.png',
  'confusion.png',
  'config.json',
];

/**
 * Refuses a run folder that holds a run, unless the options say what to do with it: resume continues it (its
 * checkpoint is checked where it is read), force deletes its files (only the run's own: nothing else in the folder).
 * The caller holds the folder's lock, so no trainer is writing there meanwhile.
 */
export function prepareRunFolder(out: string, o: { resume?: boolean; force?: boolean }): void {
  if (o.resume) return;
  const found = RUN_MARKERS.filter((f) => existsSync(join(out, f)));
  if (!found.length) return;
  if (!o.force)
    throw new OptionError(
      'out',
      'a run folder that holds no run yet',
      printable(out),
      `it holds a run (${found.join(', ')}); continue it with --resume, or start over with --force, which deletes that run's files`,
    );
  const leftovers = readdirSync(out).filter((f) => RUN_FILES.some((r) => f.startsWith(`.${r}.`) && f.endsWith('.tmp')));
  for (const f of [...RUN_FILES, ...leftovers]) rmSync(join(out, f), { force: true });
}

/**
 * A resumed run's metrics.jsonl is rewritten from its checkpoint's history: a run stopped between an epoch's record
 * and that epoch's checkpoint (a full disk, a crash) would otherwise list the epoch twice once it is run again.
 */
function restoreMetrics(path: string, history: EpochRecord[], lastPath: string): void {
  if (!Array.isArray(history)) return;
  writing(path, 'metrics', lastPath, () =>
    writeFileAtomic(path, history.map((h) => `${JSON.stringify(h)}\n`).join('')),
  );
}

/**
 * Runs one write of the run's files. A failure (a full disk, a folder made read-only) names the file and the cause,
 * and, as every file is written atomically, that the last checkpoint before it is intact and can be resumed.
 */
function writing<T>(path: string, what: string, lastPath: string, write: () => T): T {
  const explain = (err: unknown): Error => {
    const e = err as NodeJS.ErrnoException;
    // writeFileAtomic's errors name the path already: said once
    const message = (e?.message ?? String(err)).replace(`Cannot write ${printable(path)}: `, '');
    // a raw errno error (appendFileSync), or writeFileAtomic's own, which names the path and the errno in brackets
    const full = /^(ENOSPC|EDQUOT)$/.test(e?.code ?? '') || /\((ENOSPC|EDQUOT)\)/.test(message);
    const cause =
      e?.code === 'ENOSPC'
        ? 'no space left on the device (ENOSPC)'
        : e?.code === 'EDQUOT'
          ? 'disk quota exceeded (EDQUOT)'
          : message;
    const next = existsSync(lastPath)
      ? `; the last checkpoint, ${printable(lastPath)}, is intact: ${full ? 'free some space' : 'fix that'}, then continue with --resume`
      : '';
    // a plain Error, also for writeFileAtomic's usage errors: a write failing in the middle of a run is no usage error
    return new Error(`Cannot write the ${what} ${printable(path)}: ${cause}${next}`);
  };
  let result: T;
  try {
    result = write();
  } catch (err) {
    throw explain(err);
  }
  if (result instanceof Promise)
    return result.catch((err) => {
      throw explain(err);
    }) as T;
  return result;
}

/**
 * Stops the loaders' worker threads. A thread's exit can be left holding nothing of the event loop (a batch
 * answered after close() began unreferences the loader's workers, terminate()'s own reference with them), and a
 * process whose loop empties while a promise waits exits with code 13 and prints nothing: train()'s result or error
 * would be lost. A timer keeps the loop alive until the threads are gone, for at most 30 s (they have been told to
 * stop either way); an error closing them must not hide the run's own.
 */
async function closeLoaders(...loaders: DataLoader[]): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((done) => {
    timer = setTimeout(done, 30_000);
  });
  try {
    await Promise.race([Promise.allSettled(loaders.map((l) => l.close())), limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first parameter holding NaN or an infinity, with how many, or null when all are finite. */
function nonFiniteParameter(weights: Weights): string | null {
  for (const [name, w] of weights) {
    let bad = 0;
    for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i])) bad++;
    if (bad) return `parameter ${name}: ${bad} of its ${w.length} values`;
  }
  return null;
}

/**
 * What the trainer does about a step, beside the step loop. A non-finite step stops the run with onNonFinite
 * 'stop'; with 'skip' it stops the run when the weights themselves are not finite (every later step fails too:
 * skipping cannot mend them) or after maxNonFiniteSteps in a row (the run no longer trains). A smoothed loss that
 * grows by an order of magnitude (DivergenceWatch) is reported as a warning, once per order.
 */
class StepGuard {
  /** non-finite steps so far, and in a row */
  total = 0;
  private inARow = 0;
  private firstInARow = 0;
  readonly warnings: string[] = [];
  private readonly watch = new DivergenceWatch();

  constructor(
    private readonly o: Trainer['options'],
    private readonly engine: Engine,
    private readonly warn: (message: string, epoch: number, batch: number) => void,
  ) {}

  check(stats: StepStats, step: number, epoch: number, batch: number): void {
    if (stats.finite) {
      this.inARow = 0;
      const grown = this.watch.observe(stats.loss);
      if (grown) {
        const n = (x: number) => (x >= 1e6 ? x.toExponential(2) : String(Number(x.toPrecision(3))));
        const message =
          `the training loss has grown ${n(Math.floor(grown.ratio))} times, from ${n(grown.from)} to ${n(grown.to)} ` +
          `(averaged over steps), by step ${step}: the run is diverging; ` +
          `a lower learning rate (--lr, now ${this.o.lr}) usually helps`;
        this.warnings.push(message);
        this.warn(message, epoch, batch);
      }
      return;
    }
    this.total++;
    if (this.inARow++ === 0) this.firstInARow = step;
    const layer = `first bad layer: ${stats.badLayer}`;
    if (this.o.onNonFinite === 'stop')
      throw new Error(`Non-finite loss or gradient at step ${step} (${layer}); stopping, as --on-nan stop asks`);
    const bad = nonFiniteParameter(this.engine.getWeights());
    if (bad)
      throw new Error(
        `The weights hold NaN or infinite values (${bad}) at step ${step}: every step fails and skipping cannot ` +
          'mend them; start from finite weights (--init) or an earlier checkpoint',
      );
    if (this.inARow >= this.o.maxNonFiniteSteps)
      throw new Error(
        `${this.inARow} steps in a row (steps ${this.firstInARow} to ${step}) had a non-finite loss or gradient ` +
          `(${layer}): the run no longer trains. Lower the learning rate (--lr, now ${this.o.lr}) or the loss ` +
          'weights, or check the data; --max-nan-steps sets how many in a row are tolerated',
      );
  }
}

export class Trainer {
  readonly options: Required<
    Omit<TrainerOptions, 'classes' | 'fer2013' | 'init' | 'maxSteps' | 'workers' | 'resume' | 'force' | 'teacher'>
  > &
    TrainerOptions;
  readonly config: XceptionConfig;
  private interrupted = false;
  /** the plateau schedule's state in the current run */
  private plateau = freshPlateau();

  constructor(options: TrainerOptions) {
    if (!options || typeof options.data !== 'string') throw new TypeError('Expected options.data: the dataset path');
    if (typeof options.out !== 'string' || !options.out) throw new TypeError('Expected options.out: the run folder');
    // undefined means the default (as from a CLI's unset flag)
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...TRAINING_DEFAULTS, ...given } as Trainer['options'];
    validateOptions(this.options);
    const device = deviceIndex(this.options.device); // a wrong or unusable device fails now, not after the data is read
    this.config = validateConfig(
      {
        ...resolveArch(options.arch),
        ...(options.classes ? { classes: options.classes } : {}),
        ...(options.flipAverage !== undefined ? { flipAverage: options.flipAverage } : {}),
      },
      'arch',
    );
    // the CPU engine's memory grows with the batch: refuse what the machine cannot hold (the GPU engine checks its own)
    if (device < 0) checkBatchMemory(this.config, this.options.batch);
  }

  /** Asks a running train() to checkpoint and return (what SIGINT/SIGTERM do in the CLI). */
  interrupt(): void {
    this.interrupted = true;
  }

  private lrAt(step: number, epochFloat: number): number {
    const o = this.options;
    let lr = o.lr;
    if (o.schedule === 'decay') lr = o.lr / (1 + o.decay * step);
    else if (o.schedule === 'cosine')
      lr = 0.5 * o.lr * (1 + Math.cos((Math.PI * Math.min(epochFloat, o.epochs)) / o.epochs));
    else if (o.schedule === 'step') lr = o.lr * o.stepGamma ** Math.floor(epochFloat / o.stepEvery);
    else if (o.schedule === 'plateau') lr = o.lr * this.plateau.scale;
    if (o.warmup > 0 && epochFloat < o.warmup) lr *= 0.1 + (0.9 * epochFloat) / o.warmup;
    return lr;
  }

  private splits(dataset: Dataset): { train: Split; val: Split } {
    const train = dataset.splits.get('train') ?? dataset.splits.get('all');
    if (!train) throw new Error(`${dataset.path} has no train split (it has ${[...dataset.splits.keys()].join(', ')})`);
    const val = dataset.splits.get('val');
    if (val) return { train, val };
    // No validation split: hold out a seeded, fixed fraction of train (never the test split).
    const order = train.samples
      .map((_, i) => i)
      .sort((a, b) => mixSeed(this.options.seed, a) - mixSeed(this.options.seed, b));
    const cut = Math.max(1, Math.round(order.length * this.options.valFraction));
    const held = new Set(order.slice(0, cut));
    return {
      train: { ...train, name: 'train', samples: train.samples.filter((_, i) => !held.has(i)) },
      val: { ...train, name: 'val', samples: train.samples.filter((_, i) => held.has(i)) },
    };
  }

  private async evaluate(engine: Engine, loader: DataLoader, labels: string[]): Promise<ClassificationMetrics> {
    const confusion = confusionMatrix(this.config.classes);
    for await (const b of loader.epoch(0, { augment: false })) {
      const { probs } = engine.predict(b.images, b.count);
      const C = this.config.classes;
      for (let i = 0; i < b.count; i++) {
        const p = probs.subarray(i * C, (i + 1) * C);
        let best = 0;
        for (let c = 1; c < C; c++) if (p[c] > p[best]) best = c;
        confusion[b.labels[i]][best]++;
      }
    }
    return metricsFrom(confusion, labels);
  }

  /**
   * Trains in the run folder `out`, holding its lock (train.lock) until it returns or throws: a folder that another
   * trainer is using, or that holds a run when neither resume nor force is set, is refused (OptionError for out).
   */
  async train(onProgress?: (event: ProgressEvent) => void): Promise<TrainSummary> {
    const out = resolve(this.options.out);
    const paramFloats = parameterCount(buildArchitecture(this.config));
    // checkpoints (weights + two Adam moments, last and best) and the ONNX model, with room to spare
    checkWritable(out, paramFloats * 4 * 3 * 2 + paramFloats * 4 * 2 + (16 << 20));
    const lock = acquireRunLock(out, 'out');
    try {
      prepareRunFolder(out, this.options);
      return await this.run(out, onProgress);
    } finally {
      lock.release();
    }
  }

  private async run(out: string, onProgress?: (event: ProgressEvent) => void): Promise<TrainSummary> {
    const o = this.options;
    this.plateau = freshPlateau();
    const started = Date.now();
    const lastPath = join(out, 'last.ckpt'),
      bestPath = join(out, 'best.ckpt'),
      modelPath = join(out, 'model.onnx'),
      metricsPath = join(out, 'metrics.jsonl');
    const config = validateConfig(this.config, 'arch');
    const paramFloats = parameterCount(buildArchitecture(config));

    const dataset = await openDataset(o.data, {
      format: o.dataset,
      classes: o.classes ?? (config.classes === 8 ? 8 : 7),
      fer2013: o.fer2013,
      labels: o.labels,
    });
    if (dataset.labelNames.length !== config.classes) {
      throw new RangeError(
        `The model has ${config.classes} classes but the dataset's label space has ${dataset.labelNames.length}; pass --classes ${config.classes}`,
      );
    }
    const { train, val } = this.splits(dataset);
    const labels = dataset.labelNames;
    // the last partial batch is dropped: a batch larger than the split would train nothing
    if (o.batch > train.samples.length)
      throw new OptionError(
        'batch',
        `at most the number of training images (${train.samples.length} in ${dataset.path}${dataset.report.total ? `, after ${dataset.report.total} bad items skipped` : ''})`,
        String(o.batch),
      );

    let engine: Engine;
    let tracker = new ConfusionTracker(config.classes, { history: o.history });
    let epoch0 = 0,
      batch0 = 0,
      step = 0;
    let best: CheckpointMeta['best'] = null;
    let history: EpochRecord[] = [];
    let initFresh: string[] | undefined;
    // the weights' moving average (--ema): what is evaluated, kept as best and exported
    let ema: WeightEma | undefined;
    // the current epoch's running training sums (kept in checkpoints, so that a mid-epoch resume reports the whole epoch)
    const emptySums = () => ({ loss: 0, ce: 0, fd: 0, md: 0, ed: 0, correct: 0, seen: 0, steps: 0, skipped: 0 });
    let sums = emptySums();
    let resumedSums: typeof sums | undefined;
    if (o.resume && existsSync(lastPath)) {
      const { state, meta, raw } = readCheckpoint(lastPath);
      // an exact resume needs the run's batch size, seed and configuration: say which differs rather than go on silently wrong
      const saved = meta.options as { batch?: number; seed?: number; config?: XceptionConfig };
      if (saved.batch !== undefined && saved.batch !== o.batch)
        throw new OptionError('batch', `the run's batch size, ${saved.batch}, to resume ${out}`, String(o.batch));
      if (saved.seed !== undefined && saved.seed !== o.seed)
        throw new OptionError('seed', `the run's seed, ${saved.seed}, to resume ${out}`, String(o.seed));
      if (saved.config && JSON.stringify(validateConfig(saved.config, lastPath)) !== JSON.stringify(config))
        throw new OptionError(
          'arch',
          `the run's configuration, ${JSON.stringify(saved.config)}, to resume ${out}`,
          JSON.stringify(config),
        );
      // the weight average is part of the run's state: a resume continues it or runs without one, as the run did
      if ((meta.ema?.decay ?? 0) !== o.ema || (o.ema > 0 && !raw))
        throw new OptionError(
          'ema',
          `the run's weight average decay, ${meta.ema?.decay ?? 0}, to resume ${out}`,
          String(o.ema),
        );
      if (meta.batch > 0 && meta.epochSums) resumedSums = { ...emptySums(), ...(meta.epochSums as typeof sums) };
      // with a weight average, the checkpoint's weights are the average and `raw` the training weights
      engine = Engine.create(config, { maxBatch: o.batch, weights: raw ?? state.weights, device: o.device });
      engine.setState({ ...state, weights: raw ?? state.weights });
      if (meta.ema) ema = new WeightEma(o.ema, o.emaWarmup, state.weights, meta.ema.updates);
      tracker = ConfusionTracker.fromJSON(meta.tracker as never);
      ({ epoch: epoch0, batch: batch0, step, best } = meta);
      if (meta.plateau) this.plateau = { ...freshPlateau(), ...(meta.plateau as Partial<PlateauState>) };
      history = meta.history as EpochRecord[];
      restoreMetrics(metricsPath, history, lastPath);
    } else {
      if (o.resume)
        throw new OptionError(
          'out',
          'a run folder with a checkpoint to resume',
          printable(out),
          `Nothing to resume: ${printable(lastPath)} does not exist (start a new run without resume)`,
        );
      engine = Engine.create(config, { maxBatch: o.batch, seed: o.seed, device: o.device });
      if (o.init) {
        const { weights, fresh } = startingWeights(o.init, engine.getWeights());
        engine.setWeights(weights);
        initFresh = fresh;
      }
      if (o.ema > 0) ema = new WeightEma(o.ema, o.emaWarmup, engine.getWeights());
    }
    // initFresh: parameters --init could not supply (a classifier for another class count)
    const configPath = join(out, 'config.json');
    writing(configPath, 'run configuration', lastPath, () =>
      writeFileAtomic(
        configPath,
        JSON.stringify({ options: o, config, labels, ...(initFresh ? { initFresh } : {}) }, null, 2),
      ),
    );

    // the teacher before the loaders' threads start: a teacher refused leaves nothing to close
    const teacher = o.teacher ? await Teacher.open(o.teacher, config, labels) : undefined;
    const trainLoader = new DataLoader(train, {
      batchSize: o.batch,
      size: config.inputSize,
      channels: config.channels,
      augment: o.augment ? { erase: o.randomErasing } : false,
      shuffle: true,
      balanced: o.balanced,
      seed: o.seed,
      workers: o.workers,
      dropLast: true,
    });
    const valLoader = new DataLoader(val, {
      batchSize: o.batch,
      size: config.inputSize,
      channels: config.channels,
      seed: o.seed,
      workers: o.workers,
    });
    const meta = (epoch: number, batch: number, reason: string): CheckpointMeta => ({
      options: { ...o, config },
      epoch,
      batch,
      step,
      tracker: tracker.toJSON(),
      best,
      history,
      reason,
      ...(batch > 0 ? { epochSums: { ...sums } } : {}),
      ...(ema ? { ema: ema.state() } : {}),
      ...(o.schedule === 'plateau' ? { plateau: { ...this.plateau } } : {}),
    });
    // with a weight average the checkpoint's weights are the average (the model), the raw ones a section of their own
    const save = (path: string, epoch: number, batch: number, reason: string) =>
      writing(path, 'checkpoint', lastPath, () => {
        const state = engine.getState();
        if (!ema) return writeCheckpoint(path, state, meta(epoch, batch, reason));
        writeCheckpoint(path, { ...state, weights: ema.shadow }, meta(epoch, batch, reason), undefined, state.weights);
      });
    // validation runs on the average when there is one, the training weights put back after
    const evaluateModel = async (): Promise<ClassificationMetrics> => {
      if (!ema) return this.evaluate(engine, valLoader, labels);
      const raw = engine.getWeights();
      engine.setWeights(ema.shadow);
      try {
        return await this.evaluate(engine, valLoader, labels);
      } finally {
        engine.setWeights(raw);
      }
    };
    const guard = new StepGuard(o, engine, (warning, epoch, batch) =>
      onProgress?.({
        epoch,
        epochs: o.epochs,
        batch,
        batches: trainLoader.length,
        samplesPerSecond: 0,
        phase: 'warning',
        warning,
      }),
    );

    onProgress?.({
      epoch: epoch0,
      epochs: o.epochs,
      batch: batch0,
      batches: trainLoader.length,
      samplesPerSecond: 0,
      phase: 'start',
      start: {
        config,
        parameters: paramFloats,
        device: engine.device,
        trainSamples: train.samples.length,
        valSamples: val.samples.length,
        ...(step > 0 ? { resumedAt: step } : {}),
        skipped: dataset.report.summary(),
      },
    });
    const mixSpec: MixSpec = {
      mixup: o.mixup,
      cutmix: o.cutmix,
      prob: o.mixProb,
      size: config.inputSize,
      channels: config.channels,
      classes: config.classes,
    };
    let interrupted = false;
    try {
      for (let epoch = epoch0; epoch < o.epochs && !interrupted; epoch++) {
        const batches = trainLoader.length;
        sums = epoch === epoch0 && batch0 > 0 && resumedSums ? resumedSums : emptySums();
        const seen0 = sums.seen;
        await trainLoader.ensureCache(); // the first epoch's images/s leaves the one-off decoding out
        const t0 = Date.now();
        for await (const b of trainLoader.epoch(epoch, { startBatch: epoch === epoch0 ? batch0 : 0 })) {
          const lr = this.lrAt(step, epoch + b.index / batches);
          // mixup / CutMix: the mixed images and targets, the dominant labels for Ad-Corre and accuracy
          const mixed = mixBatch(b.images, b.labels, b.targets, mixSpec, mixSeed(o.seed, epoch, step));
          const images = mixed?.images ?? b.images,
            stepLabels = mixed?.labels ?? b.labels;
          let targets = mixed?.targets ?? b.targets;
          if (o.labelSmoothing > 0)
            targets = smoothedTargets(stepLabels, targets, this.config.classes, o.labelSmoothing);
          // distillation: the teacher on the very images the student trains on
          if (teacher) {
            const soft = temperatureScaled(await teacher.probs(images, b.count), config.classes, o.teacherTemperature);
            targets = distilledTargets(stepLabels, targets, soft, config.classes, o.teacherWeight);
          }
          const stats = engine.trainStep(images, stepLabels, {
            lr,
            optimizer: o.optimizer,
            momentum: o.momentum,
            nesterov: o.nesterov,
            weightDecay: o.weightDecay,
            bnMomentum: o.bnMomentum,
            lambdaCE: o.lambdaCE,
            wFD: o.wFD,
            wMD: o.wMD,
            wED: o.wED,
            adcorre: o.adcorre,
            seed: mixSeed(o.seed, step),
            ...(o.attention ? { classAccuracy: tracker.recall() } : {}),
            ...(targets ? { targets } : {}),
          });
          step++;
          guard.check(stats, step, epoch, b.index + 1); // throws when the run must stop; warns of a diverging loss
          if (!stats.finite) {
            sums.skipped++;
          } else {
            ema?.update(engine.getWeights());
            tracker.update(stepLabels, stats.predictions);
            sums.loss += stats.loss * b.count;
            sums.ce += stats.ce * b.count;
            sums.fd += stats.fd * b.count;
            sums.md += stats.md * b.count;
            sums.ed += stats.ed * b.count;
            sums.correct += stats.correct;
            sums.seen += b.count;
          }
          sums.steps++;
          const sps = (sums.seen - seen0) / Math.max(1e-3, (Date.now() - t0) / 1000);
          onProgress?.({
            epoch,
            epochs: o.epochs,
            batch: b.index + 1,
            batches,
            stats,
            samplesPerSecond: sps,
            phase: 'train',
          });
          if (o.checkpointEvery > 0 && step % o.checkpointEvery === 0) save(lastPath, epoch, b.index + 1, 'steps');
          // Let signal handlers and timers run: batches from the cache arrive without ever leaving the microtask queue.
          await new Promise((r) => setImmediate(r));
          if (this.interrupted || (o.maxSteps !== undefined && step >= o.maxSteps)) {
            save(lastPath, epoch, b.index + 1, this.interrupted ? 'interrupt' : 'max-steps');
            interrupted = true;
            break;
          }
        }
        if (interrupted) break;
        onProgress?.({ epoch, epochs: o.epochs, batch: batches, batches, samplesPerSecond: 0, phase: 'eval' });
        const valMetrics = await evaluateModel();
        // the plateau schedule follows validation (an epoch that trained nothing leaves it as it is)
        if (o.schedule === 'plateau' && sums.seen > 0)
          this.plateau = plateauAfter(this.plateau, valMetrics.accuracy, o.plateauPatience, o.plateauFactor);
        const n = Math.max(1, sums.seen);
        const record: EpochRecord = {
          epoch: epoch + 1,
          step,
          lr: this.lrAt(step, epoch + 1),
          train: {
            loss: sums.loss / n,
            ce: sums.ce / n,
            fd: sums.fd / n,
            md: sums.md / n,
            ed: sums.ed / n,
            accuracy: sums.correct / n,
            samplesPerSecond: (sums.seen - seen0) / Math.max(1e-3, (Date.now() - t0) / 1000),
            skippedSteps: sums.skipped,
          },
          val: valMetrics,
        };
        history.push(record);
        writing(metricsPath, 'metrics', lastPath, () => appendJsonLine(metricsPath, record));
        // an epoch whose every step was skipped trained nothing: its weights are not this run's model
        if (sums.seen > 0 && (!best || valMetrics.accuracy > best.accuracy)) {
          best = { accuracy: valMetrics.accuracy, epoch: epoch + 1 };
          save(bestPath, epoch + 1, 0, 'best');
          const onnx = exportOnnx(config, ema?.shadow ?? engine.getWeights(), {
            labels,
            training: this.trainingSummary(dataset, record, step),
          });
          writing(modelPath, 'model', lastPath, () => writeFileAtomic(modelPath, onnx));
        }
        save(lastPath, epoch + 1, 0, 'epoch');
        onProgress?.({
          epoch,
          epochs: o.epochs,
          batch: batches,
          batches,
          samplesPerSecond: record.train.samplesPerSecond,
          phase: 'epoch-end',
          record,
        });
        if (this.interrupted) interrupted = true;
      }
    } finally {
      await closeLoaders(trainLoader, valLoader);
      await teacher?.close();
    }
    if (history.length) await this.charts(out, history, labels);
    const skipped = new SkipReport();
    for (const r of [dataset.report, trainLoader.report, valLoader.report]) skipped.merge(r.summary());
    const bestRecord = best ? history.find((h) => h.epoch === best!.epoch) : undefined;
    const summary: TrainSummary = {
      out,
      config,
      device: engine.device,
      parameters: paramFloats,
      epochs: history.length,
      steps: step,
      best:
        best && bestRecord
          ? { accuracy: best.accuracy, meanClassAccuracy: bestRecord.val.meanClassAccuracy, epoch: best.epoch }
          : null,
      interrupted,
      seconds: (Date.now() - started) / 1000,
      checkpoint: lastPath,
      model: existsSync(modelPath) ? modelPath : null,
      skipped: skipped.summary(),
      nonFiniteSteps: guard.total,
      warnings: guard.warnings,
    };
    const summaryPath = join(out, 'summary.json');
    writing(summaryPath, 'summary', lastPath, () => writeFileAtomic(summaryPath, JSON.stringify(summary, null, 2)));
    return summary;
  }

  private trainingSummary(dataset: Dataset, record: EpochRecord, step: number): Record<string, unknown> {
    const o = this.options;
    return {
      dataset: dataset.format,
      data: dataset.path,
      ...(dataset.format === 'ferplus' ? { labels: o.labels } : {}),
      epoch: record.epoch,
      steps: step,
      valAccuracy: record.val.accuracy,
      valMeanClassAccuracy: record.val.meanClassAccuracy,
      valSamples: record.val.samples,
      loss: { lambdaCE: o.lambdaCE, wFD: o.wFD, wMD: o.wMD, wED: o.wED, adcorre: o.adcorre, attention: o.attention },
      optimizer: {
        name: o.optimizer,
        lr: o.lr,
        schedule: o.schedule,
        decay: o.decay,
        batch: o.batch,
        ...(o.optimizer === 'sgd' ? { momentum: o.momentum, nesterov: o.nesterov } : {}),
      },
      // issue #27's recipe tools, where on
      ...(o.mixup > 0 || o.cutmix > 0 ? { mix: { mixup: o.mixup, cutmix: o.cutmix, prob: o.mixProb } } : {}),
      ...(o.ema > 0 ? { ema: { decay: o.ema, warmup: o.emaWarmup } } : {}),
      ...(o.teacher
        ? { teacher: { model: basename(o.teacher), temperature: o.teacherTemperature, weight: o.teacherWeight } }
        : {}),
      seed: o.seed,
      trainedWith: `adcorre-native ${VERSION}`,
    };
  }

  private async charts(out: string, history: EpochRecord[], labels: string[]): Promise<void> {
    const writePng = (path: string, svg: string) =>
      writing(path, 'chart', join(out, 'last.ckpt'), () => writeChart(path, svg));
    await writePng(
      join(out, 'loss.png'),
      lineChartSvg('training loss', 'epoch', [
        { name: 'total', values: history.map((h) => h.train.loss) },
        { name: 'CE', values: history.map((h) => h.train.ce) },
        { name: 'FD', values: history.map((h) => h.train.fd) },
        { name: 'MD', values: history.map((h) => h.train.md) },
        { name: 'ED', values: history.map((h) => h.train.ed) },
      ]),
    );
    await writePng(
      join(out, 'accuracy.png'),
      lineChartSvg('accuracy', 'epoch', [
        { name: 'train', values: history.map((h) => h.train.accuracy) },
        { name: 'val', values: history.map((h) => h.val.accuracy) },
        { name: 'val mean class', values: history.map((h) => h.val.meanClassAccuracy) },
      ]),
    );
    const bestRecord = history.reduce((a, b) => (b.val.accuracy > a.val.accuracy ? b : a));
    await writePng(
      join(out, 'confusion.png'),
      confusionSvg(`validation confusion (epoch ${bestRecord.epoch})`, labels, bestRecord.val.confusion),
    );
  }
}

/**
 * The weights to start from: those of a checkpoint or an exported .onnx model,
 * over the fresh ones. Every parameter must match in size, except the
 * classifier's when the class count differs (7 <-> 8): those stay fresh.
 */
export function startingWeights(path: string, fresh: Weights): { weights: Weights; fresh: string[] } {
  const bytes = readFileSync(path);
  const source = path.toLowerCase().endsWith('.onnx')
    ? readOnnxWeights(bytes, path).weights
    : readCheckpoint(path).state.weights;
  const weights: Weights = new Map();
  const kept: string[] = [];
  for (const [name, init] of fresh) {
    const w = source.get(name);
    if (w && w.length === init.length) weights.set(name, w);
    else if (name.startsWith('classifier.') && w) {
      weights.set(name, init);
      kept.push(name);
    } else {
      throw new Error(
        `--init ${path} does not fit this architecture: parameter ${name} has ` +
          `${w ? `${w.length} values there and ${init.length} here` : 'no values there'} (pass the --arch it was trained with)`,
      );
    }
  }
  // a NaN weight makes every step non-finite: skipping them all would "train" nothing and export a NaN model
  const bad = nonFiniteParameter(weights);
  if (bad)
    throw new OptionError(
      'init',
      'a checkpoint or model with finite weights',
      printable(path),
      `${bad} are NaN or infinite; training cannot start from it`,
    );
  return { weights, fresh: kept };
}
