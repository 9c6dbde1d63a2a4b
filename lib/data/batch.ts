// Turns sample indices into a batch tensor: decode (or read from the cache),
// warp with augmentation (evaluation: resample to the input size, as
// prediction does), NCHW float32 in [0, 1]. Used inside the worker
// threads, and on the calling thread when the loader runs with workers: 0.
import { native } from '../native.js';
import { type AugmentOptions, eraseRect, identityWarp, randomWarp } from './augment.js';
import { degrade } from './degrade.js';
import type { PixelStore, SampleRef } from './dataset.js';
import { storeImage } from './dataset.js';
import { decodeSample, type RawImage, SampleError, toInputSize } from './decode.js';
import { mixSeed, mulberry32 } from './random.js';
import { SkipReport, type SkipSummary } from './skips.js';

export interface BatchSpec {
  size: number;
  channels: 1 | 3;
  /** null: evaluation (no augmentation) */
  augment: AugmentOptions | null;
  seed: number;
}

export interface BatchResult {
  /** kept x channels x size x size */
  images: Float32Array;
  labels: Int32Array;
  /** kept x classes soft targets, row k for kept[k]; present when the samples carry targets */
  targets?: Float32Array;
  /** the sample indices that made it into the batch, in order */
  kept: Int32Array;
  skips: SkipSummary;
}

export interface DecodedImages {
  indices: number[];
  images: (RawImage | null)[];
  skips: SkipSummary;
}

export class BatchMaker {
  private cache: PixelStore | undefined;
  /** floats per soft target (SampleRef.target), 0 when the samples carry none */
  private readonly targetWidth: number;

  constructor(
    private readonly samples: SampleRef[],
    private readonly store: PixelStore | undefined,
    private readonly spec: BatchSpec,
  ) {
    this.targetWidth = samples[0]?.target?.length ?? 0;
  }

  /** Reads images from this decoded cache (indexed by sample) from now on. */
  setCache(cache: PixelStore): void {
    this.cache = cache;
  }

  private async image(index: number): Promise<RawImage> {
    if (this.cache) {
      const img = storeImage(this.cache, index);
      if (!img) throw new SampleError('corrupt image', 'could not be decoded when the cache was filled');
      return img;
    }
    return decodeSample(this.samples[index], this.store, this.spec.size, this.spec.channels);
  }

  /** Decodes samples for the cache; failures come back as null with their reasons. */
  async decodeMany(indices: number[]): Promise<DecodedImages> {
    const report = new SkipReport(false);
    const images = await Promise.all(
      indices.map(async (i) => {
        try {
          const img = await decodeSample(this.samples[i], this.store, this.spec.size, this.spec.channels);
          return { ...img, data: new Uint8Array(img.data) }; // own buffer, safe to transfer
        } catch (err) {
          if (!(err instanceof SampleError)) throw err;
          report.skip(err.reason, this.samples[i].where, err.message);
          return null;
        }
      }),
    );
    return { indices, images, skips: report.summary() };
  }

  async make(indices: ArrayLike<number>, epoch: number, augment: boolean): Promise<BatchResult> {
    const { size, channels } = this.spec;
    const per = channels * size * size;
    const report = new SkipReport(false);
    // Decode concurrently (sharp works on libuv's pool); warp in order.
    const decoded = await Promise.all(
      Array.from(indices, async (index) => {
        try {
          return await this.image(index);
        } catch (err) {
          if (!(err instanceof SampleError)) throw err;
          report.skip(err.reason, this.samples[index].where, err.message);
          return null;
        }
      }),
    );
    const kept = decoded.filter((d) => d !== null).length;
    const images = new Float32Array(kept * per);
    const labels = new Int32Array(kept);
    const targets = this.targetWidth ? new Float32Array(kept * this.targetWidth) : undefined;
    const keptIndices = new Int32Array(kept);
    const warp = native().warpAffine;
    let k = 0;
    for (let i = 0; i < decoded.length; i++) {
      const source = decoded[i];
      if (!source) continue;
      const index = indices[i];
      const random = mulberry32(mixSeed(this.spec.seed, epoch, index));
      const options = augment ? this.spec.augment : null;
      // evaluation brings the whole image to the input size by the one resampler, as prediction does
      // (lib/pixels.ts): the identity warp of a size x size image is then a copy
      const img = options ? source : toInputSize(source, size);
      const setting = options
        ? randomWarp(img.width, img.height, size, options, random)
        : identityWarp(img.width, img.height, size);
      warp(
        img.data,
        img.width,
        img.height,
        img.channels,
        images,
        k * per,
        size,
        size,
        channels,
        setting.matrix,
        setting.contrast,
        setting.brightness,
      );
      if (setting.degrade) degrade(images, k * per, size, channels, setting.degrade);
      if (setting.erase) eraseRect(images, k * per, size, channels, setting.erase, random);
      labels[k] = this.samples[index].label;
      if (targets) targets.set(this.samples[index].target!, k * this.targetWidth);
      keptIndices[k] = index;
      k++;
    }
    const result: BatchResult = { images, labels, kept: keptIndices, skips: report.summary() };
    if (targets) result.targets = targets;
    return result;
  }
}
