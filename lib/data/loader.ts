// DataLoader: batches of one split, decoded and augmented on worker threads,
// with a bounded queue of batches in flight, delivered in order. Small
// datasets are decoded once into a shared in-memory cache.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { AugmentOptions } from './augment.js';
import { BatchMaker, type BatchResult, type BatchSpec, type DecodedImages } from './batch.js';
import type { PixelStore, Split } from './dataset.js';
import { epochOrder } from './sampler.js';
import { DataError, SkipReport } from './skips.js';
import type { Job, WorkerInit, WorkerJob } from './worker.js';

export interface LoaderOptions {
  batchSize: number;
  /** input height = width in pixels */
  size: number;
  /** 1 (grey) or 3 (RGB) */
  channels: 1 | 3;
  /** training augmentation: true for the defaults, an object to tune, false (default) for none */
  augment?: boolean | AugmentOptions;
  shuffle?: boolean;
  /** class-balanced sampling (each batch draws classes uniformly) */
  balanced?: boolean;
  seed?: number;
  /** worker threads (default: the machine's parallelism; 0 decodes on the calling thread) */
  workers?: number;
  /** batches in flight (default 4) */
  prefetch?: number;
  /** decode the split once into memory: 'auto' (default) does it for splits under 1 GiB decoded */
  cache?: boolean | 'auto';
  /** drop the last incomplete batch (default false) */
  dropLast?: boolean;
  /** stop at the first bad sample with its file (default: skip and count) */
  strict?: boolean;
}

export interface Batch {
  /** count x channels x size x size, float32 in [0, 1] (NCHW) */
  images: Float32Array;
  labels: Int32Array;
  /**
   * Soft targets, count x classes (row-major, each row summing to 1), row k
   * belonging to labels[k] / indices[k]: present when the split's samples
   * carry targets (FER+ opened with labels: 'distribution'), absent
   * otherwise. Soft-target cross-entropy reads exactly this; labels stay the
   * majority classes (accuracy, Ad-Corre's class terms, balanced sampling).
   */
  targets?: Float32Array;
  /** sample indices in the split */
  indices: Int32Array;
  count: number;
  /** batch number within the epoch */
  index: number;
}

const CACHE_LIMIT_BYTES = 1 << 30;

/** Soft targets: on every sample of the split or on none, all of one length. */
function checkTargets(split: Split): void {
  const samples = split?.samples;
  if (!Array.isArray(samples) || samples.length === 0) return;
  const width = samples[0].target?.length ?? 0;
  for (const s of samples) {
    const w = s.target?.length ?? 0;
    if (w !== width) {
      throw new DataError(
        `Split '${split.name}': soft targets must be on every sample or on none, all of one length; ` +
          `${samples[0].where} has ${width ? `${width} classes` : 'none'}, ${s.where} has ${w ? `${w} classes` : 'none'}`,
        s.where,
      );
    }
  }
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class DataLoader {
  readonly options: Required<Omit<LoaderOptions, 'augment'>> & { augment: AugmentOptions | null };
  /** skipped samples so far (each bad sample once: it is left out of later epochs) */
  readonly report: SkipReport;
  private readonly workers: Worker[] = [];
  private readonly inline: BatchMaker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextJob = 0;
  private nextWorker = 0;
  private cacheReady: Promise<void> | null = null;
  private bad = new Set<number>();
  private closed = false;

  constructor(
    readonly split: Split,
    options: LoaderOptions,
  ) {
    const positive = (name: string, v: unknown, min = 1) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
        throw new RangeError(`Expected integer >= ${min} for ${name} but received ${String(v)}`);
      }
      return v;
    };
    if (!split || !Array.isArray(split.samples) || split.samples.length === 0) {
      throw new DataError(`Split '${split?.name}' has no samples`);
    }
    checkTargets(split);
    if (options.channels !== 1 && options.channels !== 3) {
      throw new RangeError(`Expected 1 or 3 for channels but received ${String(options.channels)}`);
    }
    const augment = options.augment === true ? {} : options.augment ? options.augment : null;
    this.options = {
      batchSize: positive('batchSize', options.batchSize),
      size: positive('size', options.size),
      channels: options.channels,
      augment,
      shuffle: options.shuffle ?? false,
      balanced: options.balanced ?? false,
      seed: options.seed ?? 0,
      workers: positive('workers', options.workers ?? availableParallelism(), 0),
      prefetch: positive('prefetch', options.prefetch ?? 4),
      cache: options.cache ?? 'auto',
      dropLast: options.dropLast ?? false,
      strict: options.strict ?? false,
    };
    this.report = new SkipReport(this.options.strict);
    const spec: BatchSpec = {
      size: this.options.size,
      channels: this.options.channels,
      augment,
      seed: this.options.seed,
    };
    if (this.options.workers === 0) {
      this.inline = new BatchMaker(split.samples, split.pixels, spec);
    } else {
      const init: WorkerInit = { samples: split.samples, store: split.pixels, spec };
      for (let i = 0; i < this.options.workers; i++) {
        const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
        worker.on('message', (msg: { id: number; result?: unknown; error?: string }) => {
          const p = this.pending.get(msg.id);
          if (!p) return;
          this.pending.delete(msg.id);
          // idle workers never keep the process alive; but once close() began, terminate() holds the
          // reference that waits for the threads to end, and unref here dropped it (the process then
          // exited with close() and whatever awaited it unsettled: Node's silent exit 13)
          if (this.pending.size === 0 && !this.closed) for (const w of this.workers) w.unref();
          if (msg.error) p.reject(new Error(`data worker failed: ${msg.error}`));
          else p.resolve(msg.result);
        });
        worker.on('error', (err) => {
          for (const p of this.pending.values()) p.reject(err);
          this.pending.clear();
        });
        worker.unref();
        this.workers.push(worker);
      }
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.split.samples.length;
    return this.options.dropLast ? Math.floor(n / this.options.batchSize) : Math.ceil(n / this.options.batchSize);
  }

  private run<T>(job: Job): Promise<T> {
    if (this.closed) return Promise.reject(new Error('DataLoader is closed'));
    if (this.inline) {
      return (
        job.type === 'batch'
          ? this.inline.make(job.indices, job.epoch, job.augment)
          : this.inline.decodeMany(job.indices)
      ) as Promise<T>;
    }
    const id = this.nextJob++;
    const worker = this.workers[this.nextWorker++ % this.workers.length];
    return new Promise<T>((resolve, reject) => {
      for (const w of this.workers) w.ref(); // keep the process alive while work is out
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ ...job, id } satisfies WorkerJob);
    });
  }

  private broadcast(job: WorkerJob): void {
    if (this.inline) {
      if (job.type === 'cache') this.inline.setCache(job.cache);
      return;
    }
    for (const w of this.workers) w.postMessage(job);
  }

  /** Decodes the split into memory once (when cache is on), so epochs skip decoding; epoch() awaits it too. */
  ensureCache(): Promise<void> {
    if (this.cacheReady) return this.cacheReady;
    const { cache } = this.options;
    const fromFiles = this.split.samples.some((s) => typeof s.source === 'string');
    if (cache === false || !fromFiles) return (this.cacheReady = Promise.resolve());
    this.cacheReady = this.fillCache(cache === 'auto');
    return this.cacheReady;
  }

  private async fillCache(auto: boolean): Promise<void> {
    const n = this.split.samples.length;
    const chunk = 256;
    const jobs: number[][] = [];
    for (let s = 0; s < n; s += chunk) jobs.push(Array.from({ length: Math.min(chunk, n - s) }, (_, i) => s + i));
    const wave = Math.max(2, this.workers.length * 2);
    const parts: DecodedImages[] = [];
    for (let start = 0; start < jobs.length; start += wave) {
      parts.push(
        ...(await Promise.all(
          jobs.slice(start, start + wave).map((indices) => this.run<DecodedImages>({ type: 'decode', indices })),
        )),
      );
      if (auto && start === 0) {
        // Estimate the whole from the first wave; stay on the files when it is too large.
        let bytes = 0,
          seen = 0;
        for (const p of parts)
          for (const img of p.images) {
            bytes += img?.data.length ?? 0;
            seen++;
          }
        if ((bytes / seen) * n > CACHE_LIMIT_BYTES) return;
      }
    }
    const offsets = new Float64Array(n + 1);
    const shapes = new Uint16Array(3 * n);
    const byIndex = new Array<{ data: Uint8Array } | null>(n).fill(null);
    for (const part of parts) {
      this.report.merge(part.skips);
      part.indices.forEach((index, i) => {
        const img = part.images[i];
        if (!img) {
          this.bad.add(index);
          return;
        }
        byIndex[index] = img;
        shapes.set([img.width, img.height, img.channels], 3 * index);
      });
    }
    let total = 0;
    for (let i = 0; i < n; i++) {
      offsets[i] = total;
      total += byIndex[i]?.data.length ?? 0;
    }
    offsets[n] = total;
    const data = new Uint8Array(new SharedArrayBuffer(total));
    for (let i = 0; i < n; i++) if (byIndex[i]) data.set(byIndex[i]!.data, offsets[i]);
    const store: PixelStore = { count: n, data, shapes, offsets };
    this.broadcast({ type: 'cache', cache: store });
  }

  /**
   * The batches of one epoch, in order. Augmentation (when configured) and
   * shuffling depend only on (seed, epoch), never on thread timing.
   */
  async *epoch(epoch = 0, options: { augment?: boolean; startBatch?: number } = {}): AsyncGenerator<Batch> {
    await this.ensureCache();
    const augment = options.augment ?? this.options.augment !== null;
    const labels = this.split.samples.map((s) => s.label);
    let order = epochOrder(labels, {
      shuffle: this.options.shuffle,
      balanced: this.options.balanced,
      seed: this.options.seed,
      epoch,
    });
    if (this.bad.size) order = order.filter((i) => !this.bad.has(i));
    const { batchSize, prefetch } = this.options;
    const count = this.options.dropLast ? Math.floor(order.length / batchSize) : Math.ceil(order.length / batchSize);
    const queue: Promise<BatchResult>[] = [];
    const first = Math.max(0, Math.min(count, options.startBatch ?? 0)); // resuming mid-epoch: same order, later batches
    let next = first;
    const submit = () => {
      const indices = order.slice(next * batchSize, Math.min(order.length, (next + 1) * batchSize));
      queue.push(this.run<BatchResult>({ type: 'batch', indices, epoch, augment }));
      next++;
    };
    for (let b = first; b < count; b++) {
      while (next < count && queue.length < prefetch) submit();
      const result = await queue.shift()!;
      // A sample that failed is left out of later epochs, so each bad file is counted once.
      const keptSet = new Set(result.kept);
      const requested = order.subarray(b * batchSize, Math.min(order.length, (b + 1) * batchSize));
      for (const i of requested) if (!keptSet.has(i)) this.bad.add(i);
      this.report.merge(result.skips);
      if (this.options.strict && this.report.total > 0) throw new DataError(`Bad data: ${this.report.format().trim()}`);
      const batch: Batch = {
        images: result.images,
        labels: result.labels,
        indices: result.kept,
        count: result.labels.length,
        index: b,
      };
      if (result.targets) batch.targets = result.targets;
      yield batch;
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
