// A training run's state: the engine and what the loop advances beside it (step, attention tracker, best epoch,
// history, weight average, the epoch's running sums, the plateau schedule). A run starts it fresh (from --init's
// weights, if given) or from its last checkpoint (--resume), and its checkpoints hold all of it, so that a resumed
// run continues exactly.
import { existsSync } from 'node:fs';
import { ConfusionTracker } from '../confusion.js';
import { MAX_MODEL_FILE_BYTES } from '../infer/model-check.js';
import { readOptionFileSync } from '../input-file.js';
import { Engine, type StepStats } from '../engine/engine.js';
import { describeNonFinite, firstNonFiniteParameter } from '../model/finite.js';
import { type XceptionConfig, validateConfig } from '../model/config.js';
import { readOnnxWeights } from '../model/onnx-weights.js';
import type { Weights } from '../model/weights.js';
import { printable } from '../terminal.js';
import { OptionError } from '../validate.js';
import { type CheckpointMeta, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { WeightEma } from './ema.js';
import { identityChange, type RunIdentity } from './run-identity.js';
import { INIT_FILE } from './run-inputs.js';
import { restoreMetrics, type RunPaths, writing } from './run-files.js';
import { freshPlateau, type PlateauState } from './schedule.js';
import type { EpochRecord, ResolvedOptions } from './options.js';

type Options = ResolvedOptions;

/** The current epoch's running training sums (kept in checkpoints, so that a mid-epoch resume reports the whole epoch). */
export const emptySums = () => ({ loss: 0, ce: 0, fd: 0, md: 0, ed: 0, correct: 0, seen: 0, steps: 0, skipped: 0 });
export type EpochSums = ReturnType<typeof emptySums>;

export interface RunState {
  engine: Engine;
  /** the adaptive attention map's record of recent training predictions */
  tracker: ConfusionTracker;
  /** where the run starts: the epoch, and the batch within it (> 0 when resumed mid-epoch) */
  epoch0: number;
  batch0: number;
  /** training steps taken so far */
  step: number;
  best: CheckpointMeta['best'];
  history: EpochRecord[];
  /** the weights' moving average (--ema): what is evaluated, kept as best and exported */
  ema?: WeightEma;
  sums: EpochSums;
  /** a mid-epoch checkpoint's sums, which the first epoch continues */
  resumedSums?: EpochSums;
  /** the plateau schedule's state */
  plateau: PlateauState;
  /** parameters --init could not supply (a classifier for another class count) */
  initFresh?: string[];
  /** the data and teacher it trains on, recorded in its checkpoints */
  identity: RunIdentity;
}

/**
 * A training step into the state: a finite one into the epoch's sums, the attention tracker (with the labels it
 * trained on) and the weight average; a skipped (non-finite) one only counted as such.
 */
export function recordStep(state: RunState, stats: StepStats, labels: Int32Array, count: number): void {
  const { sums } = state;
  if (!stats.finite) {
    sums.skipped++;
  } else {
    state.ema?.update(state.engine.getWeights());
    state.tracker.update(labels, stats.predictions);
    sums.loss += stats.loss * count;
    sums.ce += stats.ce * count;
    sums.fd += stats.fd * count;
    sums.md += stats.md * count;
    sums.ed += stats.ed * count;
    sums.correct += stats.correct;
    sums.seen += count;
  }
  sums.steps++;
}

/** The run's starting state: its last checkpoint's with resume (which must then exist), else a fresh engine's. */
export function startRun(o: Options, config: XceptionConfig, paths: RunPaths, identity: RunIdentity): RunState {
  if (o.resume && existsSync(paths.last)) return resumedRun(o, config, paths, identity);
  if (o.resume)
    throw new OptionError(
      'out',
      'a run folder with a checkpoint to resume',
      printable(paths.out),
      `Nothing to resume: ${printable(paths.last)} does not exist (start a new run without resume)`,
    );
  const engine = Engine.create(config, { maxBatch: o.batch, seed: o.seed, device: o.device, precision: o.precision });
  let initFresh: string[] | undefined;
  if (o.init) {
    const { weights, fresh } = startingWeights(o.init, engine.getWeights());
    engine.setWeights(weights);
    initFresh = fresh;
  }
  const ema = o.ema > 0 ? new WeightEma(o.ema, o.emaWarmup, engine.getWeights()) : undefined;
  return {
    engine,
    tracker: new ConfusionTracker(config.classes, { history: o.history }),
    epoch0: 0,
    batch0: 0,
    step: 0,
    best: null,
    history: [],
    ema,
    sums: emptySums(),
    plateau: freshPlateau(),
    initFresh,
    identity,
  };
}

/** The state in the run's last checkpoint, after checking that the options continue that run; metrics.jsonl follows it. */
function resumedRun(o: Options, config: XceptionConfig, paths: RunPaths, identity: RunIdentity): RunState {
  const { state, meta, raw } = readCheckpoint(paths.last);
  checkResumable(o, config, paths, meta, raw !== undefined);
  const changed = identityChange(meta.identity as Partial<RunIdentity> | undefined, identity);
  if (changed)
    throw new OptionError(
      changed.option,
      `${changed.expected} to resume ${paths.out} (a resume continues the run as it was started)`,
      `${printable(changed.option === 'data' ? o.data : (o.teacher ?? ''))}: ${changed.received}`,
    );
  // with a weight average, the checkpoint's weights are the average and `raw` the training weights
  // the precision may differ from the checkpoint's (meta.precision): weights and moments are fp32 either way
  const engine = Engine.create(config, {
    maxBatch: o.batch,
    weights: raw ?? state.weights,
    device: o.device,
    precision: o.precision,
  });
  engine.setState({ ...state, weights: raw ?? state.weights });
  const resumed: RunState = {
    engine,
    ema: meta.ema ? new WeightEma(o.ema, o.emaWarmup, state.weights, meta.ema.updates) : undefined,
    tracker: ConfusionTracker.fromJSON(meta.tracker as never),
    epoch0: meta.epoch,
    batch0: meta.batch,
    step: meta.step,
    best: meta.best,
    history: meta.history as EpochRecord[],
    sums: emptySums(),
    resumedSums:
      meta.batch > 0 && meta.epochSums ? { ...emptySums(), ...(meta.epochSums as Partial<EpochSums>) } : undefined,
    plateau: meta.plateau ? { ...freshPlateau(), ...(meta.plateau as Partial<PlateauState>) } : freshPlateau(),
    identity,
  };
  restoreMetrics(paths.metrics, resumed.history, paths.last);
  return resumed;
}

/**
 * The options that shape a run's trajectory besides batch, seed, configuration and weight average: a resume with
 * another value would continue a different run than the checkpoint's. --epochs may change (to extend or shorten a
 * run), as may what only says where the data is or how fast it runs (the data's path and format spelling, device,
 * precision (the master state is fp32 in both: a bf16 run may go on in fp32 and back),
 * workers, checkpointing, --max-steps).
 */
const RECIPE_OPTIONS = [
  'labels',
  'valFraction',
  'lr',
  'decay',
  'schedule',
  'warmup',
  'stepEvery',
  'stepGamma',
  'plateauPatience',
  'plateauFactor',
  'optimizer',
  'momentum',
  'nesterov',
  'weightDecay',
  'bnMomentum',
  'lambdaCE',
  'labelSmoothing',
  'wFD',
  'wMD',
  'wED',
  'adcorre',
  'attention',
  'history',
  'augment',
  'mixup',
  'cutmix',
  'mixProb',
  'rotation',
  'zoom',
  'shift',
  'randomErasing',
  'lowRes',
  'blur',
  'jpeg',
  'balanced',
] as const satisfies readonly (keyof Options)[];

/**
 * An exact resume needs the run's batch size, seed and configuration, its weight average or none, and its recipe
 * (RECIPE_OPTIONS): says which option differs (OptionError) rather than go on silently wrong. An option the
 * checkpoint does not record (written before the option existed) is not compared.
 */
function checkResumable(
  o: Options,
  config: XceptionConfig,
  paths: RunPaths,
  meta: CheckpointMeta,
  hasRawWeights: boolean,
): void {
  const { out, last } = paths;
  const saved = meta.options as { batch?: number; seed?: number; config?: XceptionConfig };
  if (saved.batch !== undefined && saved.batch !== o.batch)
    throw new OptionError('batch', `the run's batch size, ${saved.batch}, to resume ${out}`, String(o.batch));
  if (saved.seed !== undefined && saved.seed !== o.seed)
    throw new OptionError('seed', `the run's seed, ${saved.seed}, to resume ${out}`, String(o.seed));
  if (saved.config && JSON.stringify(validateConfig(saved.config, last)) !== JSON.stringify(config))
    throw new OptionError(
      'arch',
      `the run's configuration, ${JSON.stringify(saved.config)}, to resume ${out}`,
      JSON.stringify(config),
    );
  const recorded = meta.options as Record<string, unknown>;
  const differs = (key: keyof Options) =>
    recorded[key] !== undefined && JSON.stringify(recorded[key]) !== JSON.stringify(o[key]);
  const refuse = (key: keyof Options, was: string, now: string) =>
    new OptionError(key, `${was} to resume ${out} (a resume continues the run as it was started)`, now);
  const checkSame = (key: keyof Options) => {
    if (differs(key)) throw refuse(key, `the run's value, ${JSON.stringify(recorded[key])},`, JSON.stringify(o[key]));
  };
  RECIPE_OPTIONS.forEach(checkSame);
  // a teacher or none (its file may have moved: not compared) and, with one, how it is blended; a checkpoint
  // records no teacher as no key, so only those written since distillation existed (teacherWeight) say so
  if ('teacherWeight' in recorded && (recorded.teacher !== undefined) !== (o.teacher !== undefined))
    throw refuse(
      'teacher',
      recorded.teacher === undefined ? 'no teacher, as the run had none,' : "a teacher, as the run's,",
      o.teacher === undefined ? 'none' : printable(o.teacher),
    );
  if (o.teacher !== undefined) (['teacherTemperature', 'teacherWeight'] as const).forEach(checkSame);
  // the weight average is part of the run's state: a resume continues it (warming up as it did) or runs without one
  if (meta.ema && o.ema > 0 && meta.ema.warmup !== o.emaWarmup)
    throw refuse('emaWarmup', `the run's warm-up (${meta.ema.warmup ? 'on' : 'off'})`, o.emaWarmup ? 'on' : 'off');
  if ((meta.ema?.decay ?? 0) !== o.ema || (o.ema > 0 && !hasRawWeights))
    throw new OptionError(
      'ema',
      `the run's weight average decay, ${meta.ema?.decay ?? 0}, to resume ${out}`,
      String(o.ema),
    );
}

/**
 * Writes the run's checkpoints: everything in its state, at (epoch, batch), the next batch to run. With a weight
 * average the checkpoint's weights are the average (the model), the raw ones a section of their own.
 */
export class RunCheckpoints {
  constructor(
    private readonly o: Options,
    private readonly config: XceptionConfig,
    private readonly paths: RunPaths,
    private readonly state: RunState,
  ) {}

  /** last.ckpt, what --resume continues; `reason`: 'epoch', 'steps', 'interrupt', 'max-steps' */
  saveLast(epoch: number, batch: number, reason: string): void {
    this.save(this.paths.last, epoch, batch, reason);
  }

  /** best.ckpt, after the epoch that reached the best validation accuracy so far */
  saveBest(epochsDone: number): void {
    this.save(this.paths.best, epochsDone, 0, 'best');
  }

  private save(path: string, epoch: number, batch: number, reason: string): void {
    const { state: run, paths } = this;
    writing(path, 'checkpoint', paths.last, () => {
      const state = run.engine.getState();
      if (!run.ema) return writeCheckpoint(path, state, this.meta(epoch, batch, reason));
      writeCheckpoint(
        path,
        { ...state, weights: run.ema.shadow },
        this.meta(epoch, batch, reason),
        undefined,
        state.weights,
      );
    });
  }

  private meta(epoch: number, batch: number, reason: string): CheckpointMeta {
    const { o, state } = this;
    return {
      options: { ...o, config: this.config },
      precision: state.engine.precision,
      epoch,
      batch,
      step: state.step,
      tracker: state.tracker.toJSON(),
      best: state.best,
      history: state.history,
      reason,
      ...(batch > 0 ? { epochSums: { ...state.sums } } : {}),
      ...(state.ema ? { ema: state.ema.state() } : {}),
      ...(o.schedule === 'plateau' ? { plateau: { ...state.plateau } } : {}),
      identity: { ...state.identity },
    };
  }
}

/**
 * The weights of --init's file, read as every user-named file is (a regular file of a size a model can have: a
 * named pipe would hang the trainer, /dev/zero fill its memory); whatever makes it unusable is an OptionError
 * under init (a usage error, exit 2).
 */
function initWeights(path: string): Weights {
  try {
    if (!path.toLowerCase().endsWith('.onnx')) return readCheckpoint(path, 'init').state.weights;
    return readOnnxWeights(readOptionFileSync(path, MAX_MODEL_FILE_BYTES, 'init', INIT_FILE), path).weights;
  } catch (err) {
    if (err instanceof OptionError) throw err;
    throw new OptionError('init', INIT_FILE, printable(path), (err as Error).message);
  }
}

/**
 * The weights to start from: those of a checkpoint or an exported .onnx model,
 * over the fresh ones. Every parameter must match in size, except the
 * classifier's when the class count differs (7 <-> 8): those stay fresh.
 */
export function startingWeights(path: string, fresh: Weights): { weights: Weights; fresh: string[] } {
  const source = initWeights(path);
  const weights: Weights = new Map();
  const kept: string[] = [];
  for (const [name, init] of fresh) {
    const w = source.get(name);
    if (w && w.length === init.length) weights.set(name, w);
    else if (name.startsWith('classifier.') && w) {
      weights.set(name, init);
      kept.push(name);
    } else {
      throw new OptionError(
        'init',
        "a checkpoint or model of the run's architecture",
        printable(path),
        `it does not fit this architecture: parameter ${name} has ${w ? `${w.length} values there and ${init.length} here` : 'no values there'} ` +
          '(pass the --arch it was trained with)',
      );
    }
  }
  // a NaN weight makes every step non-finite: skipping them all would "train" nothing and export a NaN model
  const bad = firstNonFiniteParameter(weights);
  if (bad)
    throw new OptionError(
      'init',
      'a checkpoint or model with finite weights',
      printable(path),
      `${describeNonFinite(bad)} are NaN or infinite; training cannot start from it`,
    );
  return { weights, fresh: kept };
}
