// openDataset: one entry point for every supported format, with detection.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Dataset, DatasetFormat } from './dataset.js';
import { DATASET_FORMATS } from './dataset.js';
import type { ClassCount } from './labels.js';
import { findAffectNetManifests, readAffectNet } from './readers/affectnet.js';
import { readCsvManifest, readImageFolder } from './readers/folder.js';
import { readFer2013Csv, readFerPlus } from './readers/fer2013.js';
import {
  type FerPlusLabels,
  type FerPlusProtocol,
  checkLabelMode,
  checkProtocol,
  ferPlusFolders,
  isFerPlusLabelFile,
  readFerPlusFolders,
} from './readers/ferplus.js';
import { checkDatasetSource, readDataHead } from './readers/files.js';
import { RAFDB_LIST, readRafDb } from './readers/rafdb.js';
import { DataError } from './skips.js';
import { printable } from '../terminal.js';

export interface OpenOptions {
  /** default: detected from the path */
  format?: DatasetFormat | 'auto';
  /** 7 (default; 8 for FER+) or 8 with contempt */
  classes?: ClassCount;
  /** stop at the first bad item with its file and line */
  strict?: boolean;
  /** FER+: the FER-2013 CSV that holds the pixels (default: fer2013.csv beside the vote file) */
  fer2013?: string;
  /**
   * FER+ (either layout): 'majority' (default) labels each image with its most
   * voted emotion; 'distribution' keeps the same images and gives each sample
   * also its normalised vote distribution (SampleRef.target, batch.targets)
   * for soft-target training. Other formats have no votes: 'majority' only.
   */
  labels?: FerPlusLabels;
  /**
   * FER+ (either layout): which images are kept: 'plain' (default), the most voted emotion alone; 'reference',
   * FERPlus's code (single votes zeroed, a top above half of the rest), which published FER+ accuracies use
   */
  protocol?: FerPlusProtocol;
}

/** A CSV's header line, from the file's first 4 kB (a FER-2013 CSV's first record is 8 kB of pixels). */
function csvHeader(path: string): string[] {
  return (readDataHead(path).split(/\r?\n/)[0] ?? '')
    .replace(/^\uFEFF/, '')
    .split(',')
    .map((s) => s.trim());
}

/** A header for a message: through printable(), cut at 200 characters (a first line may be megabytes of data). */
function headerText(header: readonly string[]): string {
  const text = printable(header.join(', '));
  return text.length > 200 ? `${text.slice(0, 200)}... (${text.length} characters)` : text;
}

/** Which format a path holds, or a DataError saying what was looked for. */
export function detectFormat(path: string): DatasetFormat {
  const p = resolve(path);
  if (!existsSync(p)) throw new DataError(`Dataset path not found: ${p}`);
  if (checkDatasetSource(p).isDirectory()) {
    if (existsSync(join(p, RAFDB_LIST))) return 'rafdb';
    if (findAffectNetManifests(p).length) return 'affectnet';
    if (existsSync(join(p, 'fer2013new.csv'))) return 'ferplus';
    if (existsSync(join(p, 'fer2013.csv'))) return 'fer2013';
    if (ferPlusFolders(p).length) return 'ferplus'; // FER2013Train/ ... with label.csv, or one of them
    return 'folder';
  }
  if (p.toLowerCase().endsWith('.csv')) {
    if (isFerPlusLabelFile(p)) return 'ferplus';
    const header = csvHeader(p);
    if (header.includes('emotion') && header.includes('pixels')) return 'fer2013';
    if (header.includes('Image name') && header.includes('NF')) return 'ferplus';
    if (header.includes('subDirectory_filePath')) return 'affectnet';
    if (header.includes('path') && header.includes('label')) return 'csv';
    throw new DataError(
      `${printable(p)}: unrecognised CSV header (${headerText(header)}); expected FER-2013 (emotion,pixels,Usage), ` +
        'FER+ (Usage,Image name,...,NF), an AffectNet manifest or a manifest with path,label[,split]',
    );
  }
  throw new DataError(`${p}: expected a dataset folder or a CSV file`);
}

/** Opens a dataset: its splits, labels and what its index pass skipped. */
export async function openDataset(path: string, options: OpenOptions = {}): Promise<Dataset> {
  // a folder or a regular file, whatever the format: a named pipe or a device is refused, never waited on
  if (existsSync(path)) checkDatasetSource(path);
  const format = !options.format || options.format === 'auto' ? detectFormat(path) : options.format;
  if (!DATASET_FORMATS.includes(format)) {
    throw new RangeError(`Expected one of auto, ${DATASET_FORMATS.join(', ')} for format but received '${format}'`);
  }
  if (options.classes !== undefined && options.classes !== 7 && options.classes !== 8) {
    throw new RangeError(`Expected 7 or 8 for classes but received ${String(options.classes)}`);
  }
  const labels = checkLabelMode(options.labels);
  if (labels !== 'majority' && format !== 'ferplus') {
    throw new RangeError(
      `labels '${labels}' needs vote counts, which only FER+ has; ${resolve(path)} is ${format} (use labels: 'majority')`,
    );
  }
  if (checkProtocol(options.protocol) !== 'plain' && format !== 'ferplus') {
    throw new RangeError(
      `protocol '${String(options.protocol)}' chooses among FER+ votes; ${resolve(path)} is ${format} (use protocol: 'plain')`,
    );
  }
  const o = { classes: options.classes, strict: options.strict };
  switch (format) {
    case 'fer2013': {
      // Kaggle's CSV, or a folder holding it, or the image-folder layout (split/class/*.jpg)
      if (!statSync(path).isDirectory()) return readFer2013Csv(path, o);
      return existsSync(join(path, 'fer2013.csv'))
        ? readFer2013Csv(join(path, 'fer2013.csv'), o)
        : readImageFolder(path, o);
    }
    case 'ferplus': {
      // the generate_training_data.py folders (or one label.csv of them), else fer2013new.csv + the FER-2013 CSV
      const folder = isFerPlusLabelFile(resolve(path)) ? dirname(resolve(path)) : path;
      return ferPlusFolders(folder).length
        ? readFerPlusFolders(folder, { ...o, labels, protocol: options.protocol })
        : readFerPlus(path, { ...o, fer2013: options.fer2013, labels, protocol: options.protocol });
    }
    case 'rafdb':
      return readRafDb(path, o);
    case 'affectnet':
      return readAffectNet(path, o);
    case 'folder':
      return readImageFolder(path, o);
    case 'csv':
      return readCsvManifest(path, o);
  }
}
