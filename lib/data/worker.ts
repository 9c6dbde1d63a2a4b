// A data-loading worker thread: receives the split once (sample references,
// shared pixel store), then batch and decode jobs; posts results back with
// their buffers transferred.
import { parentPort, workerData } from 'node:worker_threads';
import { BatchMaker, type BatchSpec } from './batch.js';
import type { PixelStore, SampleRef } from './dataset.js';

export interface WorkerInit {
  samples: SampleRef[];
  store?: PixelStore;
  spec: BatchSpec;
}

/** Work that returns a result. */
export type Job =
  { type: 'batch'; indices: Int32Array; epoch: number; augment: boolean } | { type: 'decode'; indices: number[] };

export type WorkerJob = (Job & { id: number }) | { type: 'cache'; cache: PixelStore };

const init = workerData as WorkerInit;
const maker = new BatchMaker(init.samples, init.store, init.spec);

parentPort!.on('message', (job: WorkerJob) => {
  if (job.type === 'cache') {
    maker.setCache(job.cache);
    return;
  }
  const work = job.type === 'batch' ? maker.make(job.indices, job.epoch, job.augment) : maker.decodeMany(job.indices);
  work.then(
    (result) => {
      const transfer: ArrayBuffer[] = [];
      if ('images' in result && result.images instanceof Float32Array) {
        transfer.push(result.images.buffer as ArrayBuffer);
        if ('targets' in result && result.targets) transfer.push(result.targets.buffer as ArrayBuffer);
      } else
        for (const img of (result as { images: ({ data: Uint8Array } | null)[] }).images) {
          if (img && !(img.data.buffer instanceof SharedArrayBuffer)) transfer.push(img.data.buffer as ArrayBuffer);
        }
      parentPort!.postMessage({ id: job.id, result }, [...new Set(transfer)]);
    },
    (err: Error) => parentPort!.postMessage({ id: job.id, error: `${err.message}\n${err.stack ?? ''}` }),
  );
});
