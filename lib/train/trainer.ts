// The training workflow (the paper's TrainModel(...).train()): data, engine,
// cross-entropy + Ad-Corre with the adaptive attention map, learning-rate
// schedule, evaluation on the validation split every epoch, the best model
// kept (checkpoint + ONNX), atomic checkpoints, exact resume, clean interrupt.
// This file is the loop; its parts live beside it: the run folder's files
// (run-files.ts), the run's state, its start and checkpoints (run-state.ts),
// the schedule (schedule.ts), the step guard (step-guard.ts), validation
// (evaluate.ts) and what a run leaves (run-outputs.ts).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Batch, DataLoader } from '../data/loader.js';
import type { Dataset, Split } from '../data/dataset.js';
import { openDataset } from '../data/open.js';
import { SkipReport } from '../data/skips.js';
import { mixSeed } from '../data/random.js';
import { deviceIndex, enginePrecision, type StepStats, type TrainStepOptions } from '../engine/engine.js';
import { describeMemory, formatBytes, memoryLimit, trainingMemory } from '../memory.js';
import { buildArchitecture, parameterCount } from '../model/architecture.js';
import { validateConfig, type XceptionConfig } from '../model/config.js';
import { appendJsonLine, type ClassificationMetrics } from './metrics.js';
import { mixBatch, type MixSpec } from './mix.js';
import { distilledTargets, Teacher, temperatureScaled } from './distill.js';
import { evaluateWeights } from './evaluate.js';
import { augmentOf } from './augment-options.js';
import { blendedTargets } from './targets.js';
import { acquireRunLock } from './run-lock.js';
import { checkRunInputs } from './run-inputs.js';
import { checkQualifiedOptions } from './option-rules.js';
import { runIdentity } from './run-identity.js';
import { checkWritable, prepareRunFolder, runFolderBytes, type RunPaths, runPaths, writing } from './run-files.js';
import { trainingSummary, writeCharts, writeModel, writeRunConfig, writeSummary } from './run-outputs.js';
import { emptySums, recordStep, RunCheckpoints, type RunState, startRun } from './run-state.js';
import { learningRate, plateauAfter } from './schedule.js';
import { StepGuard } from './step-guard.js';
import { TRAINING_DEFAULTS } from './defaults.js';
import { resolveArch, validateOptions } from './validate-options.js';
import type { EpochRecord, ProgressEvent, ResolvedOptions, TrainerOptions, TrainSummary } from './options.js';
import { OptionError } from '../validate.js';

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

/** One run of train(): what the loop's parts read, and the state (run-state.ts) they advance. */
interface Run {
  paths: RunPaths;
  config: XceptionConfig;
  /** the model's parameter count */
  parameters: number;
  dataset: Dataset;
  labels: string[];
  train: Split;
  val: Split;
  state: RunState;
  checkpoints: RunCheckpoints;
  trainLoader: DataLoader;
  valLoader: DataLoader;
  teacher?: Teacher;
  guard: StepGuard;
  mixSpec: MixSpec;
  onProgress?: (event: ProgressEvent) => void;
}

/** A step's inputs: the images and labels it trains on, and the cross-entropy's soft targets when not one-hot. */
interface StepInputs {
  images: Float32Array;
  labels: Int32Array;
  targets?: Float32Array;
}

export class Trainer {
  readonly options: ResolvedOptions;
  readonly config: XceptionConfig;
  private interrupted = false;

  constructor(options: TrainerOptions) {
    if (!options || typeof options.data !== 'string') throw new TypeError('Expected options.data: the dataset path');
    if (typeof options.out !== 'string' || !options.out) throw new TypeError('Expected options.out: the run folder');
    // undefined means the default (as from a CLI's unset flag)
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...TRAINING_DEFAULTS, ...given } as ResolvedOptions;
    validateOptions(this.options);
    checkQualifiedOptions(this.options);
    checkRunInputs(this.options);
    const device = deviceIndex(this.options.device); // a wrong or unusable device fails now, not after the data is read
    enginePrecision('precision', this.options.precision, device);
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

  /**
   * Trains in the run folder `out`, holding its lock (train.lock) until it returns or throws: a folder that another
   * trainer is using, or that holds a run when neither resume nor force is set, is refused (OptionError for out).
   */
  async train(onProgress?: (event: ProgressEvent) => void): Promise<TrainSummary> {
    const out = resolve(this.options.out);
    const parameters = parameterCount(buildArchitecture(this.config));
    checkWritable(out, runFolderBytes(parameters));
    const lock = acquireRunLock(out, 'out');
    try {
      prepareRunFolder(out, this.options);
      return await this.run(out, parameters, onProgress);
    } finally {
      lock.release();
    }
  }

  /** The run: everything before its first step, its epochs (the loaders closed however they end), what it leaves. */
  private async run(
    out: string,
    parameters: number,
    onProgress?: (event: ProgressEvent) => void,
  ): Promise<TrainSummary> {
    const started = Date.now();
    const run = await this.prepare(out, parameters, onProgress);
    this.announce(run);
    let interrupted: boolean;
    try {
      interrupted = await this.trainEpochs(run);
    } finally {
      await closeLoaders(run.trainLoader, run.valLoader);
      await run.teacher?.close();
    }
    return this.finish(run, interrupted, started);
  }

  /**
   * Everything before the first step: the data, the starting state (fresh or resumed), config.json, the teacher, the
   * loaders, the step guard (whose warnings are progress events) and the mixing recipe.
   */
  private async prepare(out: string, parameters: number, onProgress?: (event: ProgressEvent) => void): Promise<Run> {
    const o = this.options;
    const paths = runPaths(out);
    const config = validateConfig(this.config, 'arch');
    const { dataset, train, val } = await this.openData(config);
    const labels = dataset.labelNames;
    const state = startRun(o, config, paths, runIdentity(o.teacher, dataset, train, val));
    writeRunConfig(paths, o, config, labels, state.initFresh);
    // the teacher before the loaders' threads start: a teacher refused leaves nothing to close
    const teacher = o.teacher ? await Teacher.open(o.teacher, config, labels) : undefined;
    const { trainLoader, valLoader } = this.loaders(train, val, config);
    const guard = new StepGuard(o, state.engine, (warning, epoch, batch) =>
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
    const mixSpec: MixSpec = {
      mixup: o.mixup,
      cutmix: o.cutmix,
      prob: o.mixProb,
      size: config.inputSize,
      channels: config.channels,
      classes: config.classes,
    };
    const checkpoints = new RunCheckpoints(o, config, paths, state);
    return {
      paths,
      config,
      parameters,
      dataset,
      labels,
      train,
      val,
      state,
      checkpoints,
      trainLoader,
      valLoader,
      teacher,
      guard,
      mixSpec,
      onProgress,
    };
  }

  /** The dataset, its train and validation splits, checked against the model's classes and the batch size. */
  private async openData(config: XceptionConfig): Promise<{ dataset: Dataset; train: Split; val: Split }> {
    const o = this.options;
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
    // the last partial batch is dropped: a batch larger than the split would train nothing
    if (o.batch > train.samples.length)
      throw new OptionError(
        'batch',
        `at most the number of training images (${train.samples.length} in ${dataset.path}${dataset.report.total ? `, after ${dataset.report.total} bad items skipped` : ''})`,
        String(o.batch),
      );
    return { dataset, train, val };
  }

  /** The dataset's train split (or 'all') and its val split, or a seeded fraction of train held out as val. */
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

  /** The training loader (shuffled, augmented as asked, whole batches only) and the validation loader. */
  private loaders(
    train: Split,
    val: Split,
    config: XceptionConfig,
  ): { trainLoader: DataLoader; valLoader: DataLoader } {
    const o = this.options;
    const trainLoader = new DataLoader(train, {
      batchSize: o.batch,
      size: config.inputSize,
      channels: config.channels,
      augment: o.augment ? augmentOf(o) : false,
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
    return { trainLoader, valLoader };
  }

  /** The 'start' progress event: what the run is about to do. */
  private announce(run: Run): void {
    const { state, config } = run;
    run.onProgress?.({
      epoch: state.epoch0,
      epochs: this.options.epochs,
      batch: state.batch0,
      batches: run.trainLoader.length,
      samplesPerSecond: 0,
      phase: 'start',
      start: {
        config,
        parameters: run.parameters,
        device: state.engine.device,
        precision: state.engine.precision,
        trainSamples: run.train.samples.length,
        valSamples: run.val.samples.length,
        ...(state.step > 0 ? { resumedAt: state.step } : {}),
        skipped: run.dataset.report.summary(),
      },
    });
  }

  /** The epochs from where the run starts; true when it stopped early (interrupted, or maxSteps reached). */
  private async trainEpochs(run: Run): Promise<boolean> {
    for (let epoch = run.state.epoch0; epoch < this.options.epochs; epoch++) {
      const { stopped, samplesPerSecond } = await this.trainEpoch(run, epoch);
      if (stopped) return true;
      await this.endEpoch(run, epoch, samplesPerSecond);
      if (this.interrupted) return true;
    }
    return false;
  }

  /**
   * The epoch's training steps (from the resumed batch in the run's first epoch). stopped: the run checkpointed
   * mid-epoch and stops; samplesPerSecond: the epoch's training rate so far.
   */
  private async trainEpoch(run: Run, epoch: number): Promise<{ stopped: boolean; samplesPerSecond: () => number }> {
    const { state, trainLoader } = run;
    const first = epoch === state.epoch0;
    state.sums = first && state.batch0 > 0 && state.resumedSums ? state.resumedSums : emptySums();
    const seen0 = state.sums.seen;
    await trainLoader.ensureCache(); // the first epoch's images/s leaves the one-off decoding out
    const t0 = Date.now();
    const samplesPerSecond = () => (state.sums.seen - seen0) / Math.max(1e-3, (Date.now() - t0) / 1000);
    for await (const b of trainLoader.epoch(epoch, { startBatch: first ? state.batch0 : 0 })) {
      const stats = await this.trainStep(run, epoch, b);
      run.onProgress?.({
        epoch,
        epochs: this.options.epochs,
        batch: b.index + 1,
        batches: trainLoader.length,
        stats,
        samplesPerSecond: samplesPerSecond(),
        phase: 'train',
      });
      if (await this.stopsAfterStep(run, epoch, b.index + 1)) return { stopped: true, samplesPerSecond };
    }
    return { stopped: false, samplesPerSecond };
  }

  /** One batch: its inputs, the engine's step, the guard's verdict (it throws when the run must stop), the sums. */
  private async trainStep(run: Run, epoch: number, b: Batch): Promise<StepStats> {
    const { state } = run;
    const lr = this.lrAt(state, epoch + b.index / run.trainLoader.length);
    const inputs = await this.stepInputs(run, epoch, b);
    const stats = state.engine.trainStep(inputs.images, inputs.labels, this.stepOptions(state, lr, inputs.targets));
    state.step++;
    run.guard.check(stats, state.step, epoch, b.index + 1); // throws when the run must stop; warns of a diverging loss
    recordStep(state, stats, inputs.labels, b.count);
    return stats;
  }

  /** The step's images, labels and targets: mixup / CutMix, label smoothing and distillation, where asked. */
  private async stepInputs(run: Run, epoch: number, b: Batch): Promise<StepInputs> {
    const o = this.options;
    const { classes } = run.config;
    // mixup / CutMix: the mixed images and targets, the dominant labels for Ad-Corre and accuracy
    const mixed = mixBatch(b.images, b.labels, b.targets, run.mixSpec, mixSeed(o.seed, epoch, run.state.step));
    const images = mixed?.images ?? b.images,
      labels = mixed?.labels ?? b.labels;
    let targets = mixed?.targets ?? b.targets;
    if (o.labelSmoothing > 0) targets = smoothedTargets(labels, targets, classes, o.labelSmoothing);
    // distillation: the teacher on the very images the student trains on
    if (run.teacher) {
      const soft = temperatureScaled(await run.teacher.probs(images, b.count), classes, o.teacherTemperature);
      targets = distilledTargets(labels, targets, soft, classes, o.teacherWeight);
    }
    return { images, labels, targets };
  }

  /** The engine's options for the step at state.step: the optimiser and loss settings, the attention map, targets. */
  private stepOptions(state: RunState, lr: number, targets: Float32Array | undefined): TrainStepOptions {
    const o = this.options;
    return {
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
      seed: mixSeed(o.seed, state.step),
      ...(o.attention ? { classAccuracy: state.tracker.recall() } : {}),
      ...(targets ? { targets } : {}),
    };
  }

  /**
   * After a step: the checkpoint every checkpointEvery steps, and whether the run stops here, checkpointed (an
   * interrupt, or maxSteps reached). `batch`: the batches of the epoch done.
   */
  private async stopsAfterStep(run: Run, epoch: number, batch: number): Promise<boolean> {
    const o = this.options;
    if (o.checkpointEvery > 0 && run.state.step % o.checkpointEvery === 0)
      run.checkpoints.saveLast(epoch, batch, 'steps');
    // Let signal handlers and timers run: batches from the cache arrive without ever leaving the microtask queue.
    await new Promise((r) => setImmediate(r));
    if (!this.interrupted && !(o.maxSteps !== undefined && run.state.step >= o.maxSteps)) return false;
    run.checkpoints.saveLast(epoch, batch, this.interrupted ? 'interrupt' : 'max-steps');
    return true;
  }

  /** The epoch's end: validation, the plateau schedule, the record in metrics.jsonl, the best model, the checkpoint. */
  private async endEpoch(run: Run, epoch: number, samplesPerSecond: () => number): Promise<void> {
    const o = this.options;
    const { state, paths } = run;
    const batches = run.trainLoader.length;
    run.onProgress?.({ epoch, epochs: o.epochs, batch: batches, batches, samplesPerSecond: 0, phase: 'eval' });
    // validation runs on the weight average when there is one
    const val = await evaluateWeights(state.engine, state.ema?.shadow, run.valLoader, run.config.classes, run.labels);
    // the plateau schedule follows validation (an epoch that trained nothing leaves it as it is)
    if (o.schedule === 'plateau' && state.sums.seen > 0)
      state.plateau = plateauAfter(state.plateau, val.accuracy, o.plateauPatience, o.plateauFactor);
    const record = this.epochRecord(state, epoch, val, samplesPerSecond);
    state.history.push(record);
    writing(paths.metrics, 'metrics', paths.last, () => appendJsonLine(paths.metrics, record));
    // an epoch whose every step was skipped trained nothing: its weights are not this run's model
    if (state.sums.seen > 0 && (!state.best || val.accuracy > state.best.accuracy)) this.keepBest(run, record);
    run.checkpoints.saveLast(epoch + 1, 0, 'epoch');
    run.onProgress?.({
      epoch,
      epochs: o.epochs,
      batch: batches,
      batches,
      samplesPerSecond: record.train.samplesPerSecond,
      phase: 'epoch-end',
      record,
    });
  }

  /** The epoch's line in metrics.jsonl: the training means over its finite steps, and the validation metrics. */
  private epochRecord(
    state: RunState,
    epoch: number,
    val: ClassificationMetrics,
    samplesPerSecond: () => number,
  ): EpochRecord {
    const { sums } = state;
    const n = Math.max(1, sums.seen);
    return {
      epoch: epoch + 1,
      step: state.step,
      lr: this.lrAt(state, epoch + 1),
      train: {
        loss: sums.loss / n,
        ce: sums.ce / n,
        fd: sums.fd / n,
        md: sums.md / n,
        ed: sums.ed / n,
        accuracy: sums.correct / n,
        samplesPerSecond: samplesPerSecond(),
        skippedSteps: sums.skipped,
      },
      val,
    };
  }

  /** A new best epoch: best.ckpt, and model.onnx of the weight average where there is one. */
  private keepBest(run: Run, record: EpochRecord): void {
    const { state } = run;
    state.best = { accuracy: record.val.accuracy, epoch: record.epoch };
    run.checkpoints.saveBest(record.epoch);
    const training = trainingSummary(this.options, run.dataset, record, state.step);
    writeModel(run.paths, run.config, state.ema?.shadow ?? state.engine.getWeights(), run.labels, training);
  }

  /** The learning rate at the current step, `epochFloat` epochs into the run. */
  private lrAt(state: RunState, epochFloat: number): number {
    return learningRate(this.options, state.plateau, state.step, epochFloat);
  }

  /** The run's end: its charts and summary.json, and the summary returned. */
  private async finish(run: Run, interrupted: boolean, started: number): Promise<TrainSummary> {
    const { state, paths } = run;
    if (state.history.length) await writeCharts(paths.out, state.history, run.labels);
    const skipped = new SkipReport();
    for (const r of [run.dataset.report, run.trainLoader.report, run.valLoader.report]) skipped.merge(r.summary());
    const best = state.best;
    const bestRecord = best ? state.history.find((h) => h.epoch === best.epoch) : undefined;
    const summary: TrainSummary = {
      out: paths.out,
      config: run.config,
      device: state.engine.device,
      parameters: run.parameters,
      epochs: state.history.length,
      steps: state.step,
      best:
        best && bestRecord
          ? { accuracy: best.accuracy, meanClassAccuracy: bestRecord.val.meanClassAccuracy, epoch: best.epoch }
          : null,
      interrupted,
      seconds: (Date.now() - started) / 1000,
      checkpoint: paths.last,
      model: existsSync(paths.model) ? paths.model : null,
      skipped: skipped.summary(),
      nonFiniteSteps: run.guard.total,
      warnings: run.guard.warnings,
    };
    writeSummary(paths, summary);
    return summary;
  }
}
