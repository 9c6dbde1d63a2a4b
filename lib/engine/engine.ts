// The training engine from TypeScript: builds the native program from the one
// model definition (lib/model/architecture.ts), then trains and predicts with
// parameters and optimizer state held natively between steps.
import { type Device, parseDevice, resolveComputeDevice } from '../device.js';
import { native, type NativeEngine, type NativeStepResult } from '../native.js';
import { type Architecture, buildArchitecture } from '../model/architecture.js';
import { evaluationViews, imageInViews, priorWeights, validateConfig, type XceptionConfig } from '../model/config.js';
import { buildProgram } from '../model/program.js';
import { viewPixels } from '../model/views.js';
import { checkWeights, initWeights, type Weights } from '../model/weights.js';
import { TRAINING_DEFAULTS } from '../train/defaults.js';
import type { NativeStepOptions, TrainStepOptions } from './step-options.js';
import {
  boolean,
  finiteNumber,
  invalidRange,
  invalidType,
  isPlainObject,
  knownKeys,
  oneOf,
  positiveInteger,
} from '../validate.js';

// the engine's program, built beside the architecture (lib/model/program.ts); exported from here as before
export { buildProgram };
export type { NativeStepOptions, TrainStepOptions };

/** trainStep's defaults: adcorre-train's step options, and dropout seed 0 (the trainer seeds every step itself). */
const STEP_DEFAULTS: Omit<NativeStepOptions, 'classAccuracy' | 'targets'> = {
  lambdaCE: TRAINING_DEFAULTS.lambdaCE,
  wFD: TRAINING_DEFAULTS.wFD,
  wMD: TRAINING_DEFAULTS.wMD,
  wED: TRAINING_DEFAULTS.wED,
  adcorre: TRAINING_DEFAULTS.adcorre,
  optimizer: TRAINING_DEFAULTS.optimizer,
  lr: TRAINING_DEFAULTS.lr,
  momentum: TRAINING_DEFAULTS.momentum,
  nesterov: TRAINING_DEFAULTS.nesterov,
  weightDecay: TRAINING_DEFAULTS.weightDecay,
  bnMomentum: TRAINING_DEFAULTS.bnMomentum,
  seed: 0,
};

/** One training step's outcome (the native engine's result, native/napi/engine_binding.cpp). */
export type StepStats = NativeStepResult;

export interface EngineState {
  weights: Weights;
  moments: Map<string, { m: Float32Array; v: Float32Array }>;
  steps: number;
}

const STEP_KEYS = [
  'lambdaCE',
  'wFD',
  'wMD',
  'wED',
  'adcorre',
  'classAccuracy',
  'targets',
  'optimizer',
  'lr',
  'momentum',
  'nesterov',
  'weightDecay',
  'bnMomentum',
  'seed',
] as const;

/** What the GEMM-based ops compute in (EngineOptions.precision). */
export type Precision = 'fp32' | 'bf16' | 'auto';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16', 'auto'];

export interface EngineOptions {
  /** largest batch of trainStep and predict calls (buffers are sized for it once) */
  maxBatch: number;
  /** seed of the fresh weights (ignored with `weights`) */
  seed?: number;
  weights?: Weights;
  /** 'auto' (default: the GPU when one is usable, as adcorre-train), 'cpu', 'cuda' (GPU 0) or 'cuda:N' */
  device?: Exclude<Device, 'webgpu'>;
  /**
   * What the GEMM-based ops (convolutions other than depthwise, dense layers; forward and backward) compute in:
   * 'fp32' (default), 'bf16' (operands rounded to bf16, fp32 accumulation; weights, moments, batch-norm statistics,
   * the loss and the update stay fp32; the CPU only, emulated on the fp32 kernels where the CPU lacks AVX512-BF16)
   * or 'auto' (bf16 where the CPU runs the AVX512-BF16 kernel, else fp32). Engine.precision says what ran.
   */
  precision?: Precision;
}

/**
 * 'auto' (default) | 'cpu' | 'cuda' | 'cuda:N' -> -1 (the CPU) or a CUDA device index; a clear error for anything
 * else or a GPU that is not usable. The one place the engine's device string is parsed (the Trainer calls it too).
 */
export function deviceIndex(device: unknown): number {
  const where = resolveComputeDevice(parseDevice('options.device', device ?? TRAINING_DEFAULTS.device, 'engine'));
  return where.kind === 'cpu' ? -1 : where.index;
}

/**
 * A precision option (undefined: the training default, fp32) checked for `device` (deviceIndex's): a clear error
 * naming `name` for anything but 'fp32', 'bf16' or 'auto', and for 'bf16' on a GPU (the CPU only for now).
 */
export function enginePrecision(name: string, precision: unknown, device: number): Precision {
  const p = oneOf(name, precision ?? TRAINING_DEFAULTS.precision, PRECISIONS);
  if (p === 'bf16' && device >= 0)
    throw invalidRange(name, `'fp32' or 'auto' on cuda:${device} (bf16 runs on the CPU only for now)`, "'bf16'");
  return p;
}

export class Engine {
  readonly config: XceptionConfig;
  readonly architecture: Architecture;
  readonly maxBatch: number;
  /** where the engine's tensors live: 'cpu' or 'cuda:N' */
  readonly device: string;
  /** what the GEMM-based ops compute in, 'auto' resolved */
  readonly precision: 'fp32' | 'bf16';
  private readonly native: NativeEngine;

  private constructor(
    config: XceptionConfig,
    maxBatch: number,
    weights: Weights,
    device: number,
    precision: Precision,
  ) {
    this.config = config;
    this.architecture = buildArchitecture(config);
    this.maxBatch = maxBatch;
    this.device = device < 0 ? 'cpu' : `cuda:${device}`;
    this.native = new (native().Engine)(buildProgram(this.architecture), maxBatch, device, precision);
    this.precision = this.native.precision;
    this.setWeights(weights);
  }

  /** An engine for `config` holding batches of up to maxBatch; fresh seeded weights unless given. */
  static create(config: XceptionConfig, options: EngineOptions): Engine {
    const cfg = validateConfig(config);
    if (!isPlainObject(options)) throw invalidType('options', 'object', options);
    knownKeys('options', options as unknown as Record<string, unknown>, [
      'maxBatch',
      'seed',
      'weights',
      'device',
      'precision',
    ]);
    const maxBatch = positiveInteger('options.maxBatch', options.maxBatch);
    const device = deviceIndex(options.device);
    const precision = enginePrecision('options.precision', options.precision, device);
    const weights = options.weights ?? initWeights(buildArchitecture(cfg), options.seed ?? 0);
    return new Engine(cfg, maxBatch, weights, device, precision);
  }

  private get inputSize(): number {
    return this.config.channels * this.config.inputSize * this.config.inputSize;
  }

  private checkImages(images: unknown, n: number): Float32Array {
    if (!(images instanceof Float32Array))
      throw invalidType('images', 'Float32Array (N x channels x size x size)', images);
    if (images.length !== n * this.inputSize) {
      throw invalidRange(
        'images',
        `length ${n} x ${this.config.channels} x ${this.config.inputSize} x ${this.config.inputSize} = ${n * this.inputSize}`,
        `length ${images.length}`,
      );
    }
    return images;
  }

  private checkTargets(targets: unknown, n: number): void {
    const classes = this.config.classes;
    if (!(targets instanceof Float32Array)) throw invalidType('options.targets', 'Float32Array', targets);
    if (targets.length !== n * classes)
      throw invalidRange(
        'options.targets',
        `${n * classes} values (batch ${n} x ${classes} classes)`,
        `${targets.length}`,
      );
    for (let i = 0; i < n; i++) {
      let mass = 0;
      for (let c = 0; c < classes; c++) {
        const t = targets[i * classes + c];
        if (!Number.isFinite(t) || t < 0)
          throw invalidRange(
            `options.targets[${i * classes + c}]`,
            `finite number >= 0 (sample ${i}, class ${c})`,
            String(t),
          );
        mass += t;
      }
      if (Math.abs(mass - 1) > 1e-3)
        throw invalidRange(`options.targets (sample ${i})`, 'a row summing to 1', `a sum of ${mass}`);
    }
  }

  /** The native step's options from a checked call (throws naming the first bad argument). */
  private stepOptions(images: Float32Array, labels: Int32Array, options: TrainStepOptions): NativeStepOptions {
    if (!(labels instanceof Int32Array)) throw invalidType('labels', 'Int32Array', labels);
    const n = labels.length;
    if (n < 1 || n > this.maxBatch)
      throw invalidRange('labels', `batch of 1..${this.maxBatch} (maxBatch)`, `${n} labels`);
    this.checkImages(images, n);
    if (!isPlainObject(options)) throw invalidType('options', 'object', options);
    knownKeys('options', options as Record<string, unknown>, STEP_KEYS);
    for (const key of ['lambdaCE', 'wFD', 'wMD', 'wED', 'lr', 'momentum', 'weightDecay', 'bnMomentum'] as const) {
      if (options[key] !== undefined) finiteNumber(`options.${key}`, options[key]);
    }
    if (options.adcorre !== undefined) boolean('options.adcorre', options.adcorre);
    if (options.nesterov !== undefined) boolean('options.nesterov', options.nesterov);
    const seed: unknown = options.seed;
    if (seed !== undefined && !(typeof seed === 'number' && Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32))
      throw invalidRange('options.seed', 'integer in [0, 2^32)', String(seed));
    if (
      options.classAccuracy !== undefined &&
      (!(options.classAccuracy instanceof Float32Array) || options.classAccuracy.length !== this.config.classes)
    ) {
      throw invalidRange(
        'options.classAccuracy',
        `Float32Array of ${this.config.classes} values`,
        String((options.classAccuracy as { length?: number } | undefined)?.length),
      );
    }
    if (options.optimizer !== undefined && options.optimizer !== 'adam' && options.optimizer !== 'sgd') {
      throw invalidRange('options.optimizer', "'adam' or 'sgd'", String(options.optimizer));
    }
    if (options.targets !== undefined) this.checkTargets(options.targets, n);
    for (let i = 0; i < n; i++) {
      if (labels[i] < 0 || labels[i] >= this.config.classes)
        throw invalidRange(`labels[${i}]`, `integer in [0, ${this.config.classes})`, String(labels[i]));
    }
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    return { ...STEP_DEFAULTS, ...given };
  }

  /** One training step: forward, cross-entropy + Ad-Corre, backward, optimizer update (blocks until done). */
  trainStep(images: Float32Array, labels: Int32Array, options: TrainStepOptions = {}): StepStats {
    return this.native.trainStep(images, labels, this.stepOptions(images, labels, options));
  }

  /**
   * trainStep on a worker thread: the event loop keeps turning (a progress
   * bar, a server, Ctrl-C) while the step runs; a bad argument rejects. The images, labels, targets
   * and class accuracy are copied at the call, so the arrays may be reused
   * or transferred at once. One step at a time per engine: until the promise
   * settles, any other call on this engine (a second step, predict, weights,
   * state) throws. Same results as trainStep for the same state and options.
   */
  async trainStepAsync(images: Float32Array, labels: Int32Array, options: TrainStepOptions = {}): Promise<StepStats> {
    return this.native.trainStepAsync(images, labels, this.stepOptions(images, labels, options));
  }

  /**
   * Evaluation-mode outputs: probs [n][classes] and embeddings [n][k][d]; with
   * config.flipAverage, shiftAverage and cropAverage the probabilities are
   * averaged over the image's evaluation views (evaluationViews), and with
   * config.prior corrected by it (priorWeights), as in the exported ONNX
   * graph; the embeddings are the image's own.
   */
  predict(images: Float32Array, n = images.length / this.inputSize): { probs: Float32Array; embeddings: Float32Array } {
    positiveInteger('n', n);
    this.checkImages(images, n);
    const { classes, k, d } = this.config;
    const out = this.native.predict(images, n, classes, k * d);
    const views = evaluationViews(this.config);
    if (views.length > 1) {
      // the first view is the image itself, already run; crop views leave it out: it gave the embeddings only
      const withImage = imageInViews(views);
      if (!withImage) out.probs.fill(0);
      for (const view of withImage ? views.slice(1) : views) {
        const probs = this.native.predict(viewPixels(images, this.config.inputSize, view), n, classes, k * d).probs;
        for (let i = 0; i < out.probs.length; i++) out.probs[i] += probs[i];
      }
      for (let i = 0; i < out.probs.length; i++) out.probs[i] /= views.length;
    }
    const prior = priorWeights(this.config);
    if (prior) {
      for (let row = 0; row < out.probs.length; row += classes) {
        let sum = 0;
        for (let c = 0; c < classes; c++) sum += out.probs[row + c] *= prior[c];
        for (let c = 0; c < classes; c++) out.probs[row + c] /= sum;
      }
    }
    return out;
  }

  /** Gradient of the last step, by parameter name (for tests and diagnostics). */
  gradient(name: string): Float32Array {
    const i = this.architecture.params.findIndex((p) => p.name === name);
    if (i < 0) throw new RangeError(`No parameter named ${name}`);
    return this.native.getGrad(i);
  }

  getWeights(): Weights {
    return new Map(this.architecture.params.map((p, i) => [p.name, this.native.getParam(i)]));
  }

  setWeights(weights: Weights): void {
    checkWeights(this.architecture, weights);
    this.architecture.params.forEach((p, i) => this.native.setParam(i, weights.get(p.name)!));
  }

  /** Everything a checkpoint needs to resume exactly: weights (with batch-norm statistics), Adam moments, step count. */
  getState(): EngineState {
    return {
      weights: this.getWeights(),
      moments: new Map(this.architecture.params.map((p, i) => [p.name, this.native.getMoments(i)])),
      steps: this.native.steps,
    };
  }

  setState(state: EngineState): void {
    this.setWeights(state.weights);
    this.architecture.params.forEach((p, i) => {
      const m = state.moments.get(p.name);
      if (!m) throw new Error(`Missing optimizer state for ${p.name}`);
      this.native.setMoments(i, m.m, m.v);
    });
    this.native.steps = state.steps;
  }
}
