// What every reader produces: splits of sample references (where the image is
// and its label), never the images themselves, so a 400k-image dataset costs
// only its index in memory. Small datasets whose pixels come inside a CSV
// (FER-2013, FER+) carry them decoded in a PixelStore.
import type { ClassCount } from './labels.js';
import type { SkipReport } from './skips.js';

/** A face box in pixels of the original image: x, y, width, height. */
export type Box = readonly [number, number, number, number];

export interface SampleRef {
  /** class index in the canonical label space */
  label: number;
  /** image file (absolute path), or index into the split's PixelStore */
  source: string | number;
  /** face box to crop before resizing (AffectNet, RAF-DB originals) */
  box?: Box;
  /** file and line (or file) for error messages */
  where: string;
  /**
   * Soft target (FER+ with labels: 'distribution'): the sample's normalised
   * vote distribution over the dataset's classes, in canonical order, summing
   * to 1; `label` stays its majority class. A view of a row of a shared
   * buffer (TargetArena, below), so worker threads read it in place.
   */
  target?: Float32Array;
  /**
   * FER+ only: whether FERPlus's reference protocol keeps this image too (readers/ferplus.ts), so that one plain
   * read scores both protocols
   */
  ferPlusReference?: boolean;
}

/**
 * Soft targets of many samples (FER+ vote distributions, a manifest's probabilities), `classes` floats each, in chunks of
 * SharedArrayBuffer: each sample holds a view of its own row, so the whole
 * set costs 4 x classes bytes per sample (0.9 MB for FER+'s training set)
 * and worker threads read the rows in place instead of copying them.
 */
export class TargetArena {
  private chunk: Float32Array = new Float32Array(0);
  private used = 0;

  constructor(
    readonly classes: number,
    private readonly rowsPerChunk = 4096,
  ) {}

  /** A fresh row of `classes` zeros. */
  row(): Float32Array {
    if (this.used + this.classes > this.chunk.length) {
      this.chunk = new Float32Array(new SharedArrayBuffer(4 * this.classes * this.rowsPerChunk));
      this.used = 0;
    }
    const view = this.chunk.subarray(this.used, this.used + this.classes);
    this.used += this.classes;
    return view;
  }
}

/**
 * Decoded 8-bit images kept in memory, in a SharedArrayBuffer so worker
 * threads read it in place: all of one shape (width, height, channels), or
 * of per-image shapes (shapes: [w, h, c] per image, offsets: count + 1 byte
 * offsets; an image of zero bytes is one that could not be decoded).
 */
export interface PixelStore {
  count: number;
  data: Uint8Array;
  width?: number;
  height?: number;
  channels?: number;
  shapes?: Uint16Array;
  offsets?: Float64Array;
}

/** Image i of a store as interleaved bytes, or null when it is missing. */
export function storeImage(
  store: PixelStore,
  i: number,
): { data: Uint8Array; width: number; height: number; channels: number } | null {
  if (store.offsets && store.shapes) {
    const start = store.offsets[i],
      end = store.offsets[i + 1];
    if (end <= start) return null;
    return {
      data: store.data.subarray(start, end),
      width: store.shapes[3 * i],
      height: store.shapes[3 * i + 1],
      channels: store.shapes[3 * i + 2],
    };
  }
  const { width = 0, height = 0, channels = 1 } = store;
  const bytes = width * height * channels;
  return { data: store.data.subarray(i * bytes, (i + 1) * bytes), width, height, channels };
}

export interface Split {
  name: string;
  samples: SampleRef[];
  pixels?: PixelStore;
}

export type DatasetFormat = 'fer2013' | 'ferplus' | 'rafdb' | 'affectnet' | 'folder' | 'csv';
export const DATASET_FORMATS: readonly DatasetFormat[] = ['fer2013', 'ferplus', 'rafdb', 'affectnet', 'folder', 'csv'];

export interface Dataset {
  format: DatasetFormat;
  path: string;
  classes: ClassCount;
  labelNames: string[];
  splits: Map<string, Split>;
  /** what the index pass skipped or excluded */
  report: SkipReport;
}

/** Canonical split names: train, val, test (other names are kept as they are). */
export function canonicalSplit(name: string): string {
  const lower = name.toLowerCase();
  if (['train', 'training'].includes(lower)) return 'train';
  if (['val', 'valid', 'validation', 'publictest', 'public_test', 'dev'].includes(lower)) return 'val';
  if (['test', 'testing', 'privatetest', 'private_test'].includes(lower)) return 'test';
  return name;
}

/** The named split, or a DataError that lists the splits there are. */
export function getSplit(dataset: Dataset, name: string): Split {
  const split = dataset.splits.get(canonicalSplit(name));
  if (!split) {
    throw new Error(
      `No split '${name}' in ${dataset.path}; it has: ${[...dataset.splits.keys()].join(', ') || 'none'}`,
    );
  }
  if (split.samples.length === 0) throw new Error(`Split '${name}' of ${dataset.path} has no samples`);
  return split;
}
