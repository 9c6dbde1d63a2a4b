// The Ad-Corre loss (Fard & Mahoor, IEEE Access 2022) for TypeScript: checks
// the arguments, then runs the native CPU or CUDA kernels. The definition and
// its gradient are derived in docs/loss-derivation.md.
import { totalmem } from 'node:os';
import { type Device, parseDevice, resolveComputeDevice } from './device.js';
import { native, type NativeLossRequest } from './native.js';
import {
  boolean,
  boundedArray,
  finiteNumber,
  float32Array,
  invalidRange,
  invalidType,
  isPlainObject,
  knownKeys,
  labelArray,
  positiveInteger,
} from './validate.js';

export interface AdCorreWeights {
  /** Feature Discriminator weight (default 1) */
  fd?: number;
  /** Mean Discriminator weight (default 1) */
  md?: number;
  /** Embedding Discriminator weight (default 1) */
  ed?: number;
}

export interface AdCorreOptions {
  /** embedding heads (7 in the paper) */
  k: number;
  /** samples in the batch (default: labels.length) */
  n?: number;
  /** dimensions of one embedding */
  d: number;
  /**
   * number of classes; labels lie in [0, numClasses), at most 2^31 - 1 (labels are int32). Only the
   * classes present in the batch cost memory or time, so a large numClasses is cheap.
   */
  numClasses: number;
  /**
   * Per-class recall in [0, 1] for the adaptive attention map (see
   * ConfusionTracker). Omitted: uniform attention, as if every recall were 1.
   */
  classAccuracy?: ArrayLike<number>;
  weights?: AdCorreWeights;
  /** also return dLoss/dE (default false) */
  grad?: boolean;
  /**
   * Where to write the gradient (implies grad: true): a Float32Array of
   * k*n*d reused across training steps, which spares an allocation per call.
   * The result's grad is this array.
   */
  gradOut?: Float32Array;
  /** 'auto' (default) runs on the GPU when one is usable; 'cpu' or 'cuda' */
  device?: Extract<Device, 'auto' | 'cpu' | 'cuda'>;
}

export interface AdCorreResult {
  /** wFD*fd + wMD*md + wED*ed */
  loss: number;
  fd: number;
  md: number;
  ed: number;
  /** dLoss/dEmbeddings, same [k][n][d] layout as the embeddings (when grad: true) */
  grad?: Float32Array;
  /** where it ran */
  device: 'cpu' | 'cuda';
}

const OPTION_KEYS = ['k', 'n', 'd', 'numClasses', 'classAccuracy', 'weights', 'grad', 'gradOut', 'device'] as const;
const WEIGHT_KEYS = ['fd', 'md', 'ed'] as const;
const MAX_ELEMENTS = 0x7fffffff;

/**
 * Bytes the CPU loss needs for one call (native/loss/adcorre_cpu.cpp's
 * workspace): the normalised rows (float, k*n*d), five per-class tensors of
 * doubles (k x present classes x d: class sums, raw sums, class means and
 * two for backward), the head sums (double, n*d), the gradient (float), and
 * for the asynchronous call a private copy of the embeddings and of the gradient.
 */
function cpuLossBytes(k: number, n: number, d: number, present: number, grad: boolean, async: boolean): number {
  const knd = k * n * d;
  return (
    4 * knd + 40 * k * present * d + 8 * n * d + (grad ? 4 * knd : 0) + (async ? 4 * knd + (grad ? 4 * knd : 0) : 0)
  );
}

function buildRequest(embeddings: unknown, labels: unknown, options: unknown, async = false): NativeLossRequest {
  if (!isPlainObject(options)) throw invalidType('options', 'object with k, d and numClasses', options);
  knownKeys('options', options, OPTION_KEYS);
  const k = positiveInteger('options.k', options.k);
  const d = positiveInteger('options.d', options.d);
  const numClasses = positiveInteger('options.numClasses', options.numClasses);
  const labelArr = labelArray('labels', labels, numClasses);
  const n = options.n === undefined ? labelArr.length : positiveInteger('options.n', options.n);
  if (labelArr.length !== n) throw invalidRange('labels', `length n = ${n}`, `length ${labelArr.length}`);
  if (n < 1) throw invalidRange('labels', 'at least one label', 'length 0');
  if (k * n * d > MAX_ELEMENTS) {
    throw invalidRange('embeddings', `k*n*d <= ${MAX_ELEMENTS}`, `k*n*d = ${k * n * d}`);
  }
  const device = resolveComputeDevice(parseDevice('options.device', options.device ?? 'auto', 'loss')).kind;
  if (device === 'cpu') {
    // A workspace larger than the machine is refused here: Linux would grant
    // the allocation and kill the process when it is touched, before any
    // out-of-memory error could be thrown.
    const present = new Set(labelArr).size;
    const wantGrad = options.grad === true || (options.gradOut !== undefined && options.grad !== false);
    const bytes = cpuLossBytes(k, n, d, present, wantGrad, async);
    if (bytes > totalmem()) {
      const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
      throw invalidRange(
        'embeddings',
        `a batch whose loss fits in this machine's ${gib(totalmem())} of memory`,
        `k*n*d = ${k}*${n}*${d} with ${present} classes present, needing ${gib(bytes)}`,
      );
    }
  }
  const emb = float32Array('embeddings', embeddings, k * n * d, `k*n*d = ${k}*${n}*${d}`);
  const bad = native().findNonFinite(emb);
  if (bad >= 0) {
    const head = Math.floor(bad / (n * d));
    const sample = Math.floor((bad % (n * d)) / d);
    throw invalidRange(
      'embeddings',
      'finite numbers',
      `${emb[bad]} at index ${bad} (head ${head}, sample ${sample}, dim ${bad % d})`,
    );
  }
  const classAccuracy =
    options.classAccuracy === undefined
      ? null
      : boundedArray('options.classAccuracy', options.classAccuracy, numClasses, 'numClasses', 0, 1);
  const weights = new Float64Array([1, 1, 1]);
  if (options.weights !== undefined) {
    if (!isPlainObject(options.weights))
      throw invalidType('options.weights', 'object { fd?, md?, ed? }', options.weights);
    knownKeys('options.weights', options.weights, WEIGHT_KEYS);
    WEIGHT_KEYS.forEach((key, i) => {
      const w = (options.weights as Record<string, unknown>)[key];
      if (w !== undefined) weights[i] = finiteNumber(`options.weights.${key}`, w);
    });
  }
  let grad = options.grad === undefined ? false : boolean('options.grad', options.grad);
  let gradOut: Float32Array | undefined;
  if (options.gradOut !== undefined) {
    if (!(options.gradOut instanceof Float32Array))
      throw invalidType('options.gradOut', 'Float32Array', options.gradOut);
    if (options.gradOut.length !== k * n * d) {
      throw invalidRange('options.gradOut', `length k*n*d = ${k * n * d}`, `length ${options.gradOut.length}`);
    }
    if (options.gradOut.buffer === emb.buffer) {
      throw invalidRange('options.gradOut', 'an array that does not share memory with embeddings', 'the same buffer');
    }
    if (options.grad === false) throw invalidRange('options.grad', 'true (or omitted) when gradOut is given', 'false');
    gradOut = options.gradOut;
    grad = true;
  }
  return { embeddings: emb, labels: labelArr, classAccuracy, k, n, d, numClasses, weights, grad, device, gradOut };
}

/**
 * The Ad-Corre loss of one batch: FD + MD + ED (weighted), and optionally its
 * gradient with respect to the embeddings. Synchronous; see adCorreLossAsync.
 *
 * @param embeddings float32 [k][n][d] row-major: head, sample, dimension
 * @param labels n integers in [0, numClasses)
 */
export function adCorreLoss(
  embeddings: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: AdCorreOptions,
): AdCorreResult {
  const request = buildRequest(embeddings, labels, options);
  return { ...native().loss(request), device: request.device };
}

/**
 * adCorreLoss off the event loop (on libuv's thread pool). The embeddings and
 * labels are copied when it is called, so they may be changed or transferred
 * at once; options.gradOut is written when the loss is done, and the promise
 * rejects if gradOut was transferred (detached) meanwhile. Argument errors
 * reject the promise.
 */
export async function adCorreLossAsync(
  embeddings: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: AdCorreOptions,
): Promise<AdCorreResult> {
  const request = buildRequest(embeddings, labels, options, true);
  return { ...(await native().lossAsync(request)), device: request.device };
}
