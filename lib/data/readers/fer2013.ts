// FER-2013 as Kaggle's CSV (emotion, pixels, Usage), and FER+ (Microsoft's
// fer2013new.csv vote file joined with that CSV row by row).
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { csvRows } from '../csv.js';
import type { Dataset, PixelStore, SampleRef, Split } from '../dataset.js';
import { canonicalSplit, TargetArena } from '../dataset.js';
import { type ClassCount, FERPLUS_COLUMNS, fer2013Label, labelNames, type Mapped } from '../labels.js';
import { DataError, SkipReport } from '../skips.js';
import {
  checkLabelMode,
  checkProtocol,
  type FerPlusLabels,
  type FerPlusProtocol,
  ferPlusSample,
  parseVotes,
} from './ferplus.js';
import { checkDataFile, reportLine } from './files.js';
import { printable } from '../../terminal.js';

const SIDE = 48;
const PIXELS = SIDE * SIDE;
const USAGES = ['Training', 'PublicTest', 'PrivateTest'];

/** Parses "p p p ..." into out; false when it is not exactly out.length integers in 0..255. */
function parsePixels(text: string, out: Uint8Array): boolean {
  let n = 0;
  let value = -1;
  for (let i = 0; i <= text.length; i++) {
    const ch = i < text.length ? text.charCodeAt(i) : 32;
    if (ch >= 48 && ch <= 57) {
      value = (value < 0 ? 0 : value * 10) + (ch - 48);
      if (value > 255) return false;
    } else if (ch === 32 || ch === 9) {
      if (value >= 0) {
        if (n >= out.length) return false;
        out[n++] = value;
        value = -1;
      }
    } else {
      return false;
    }
  }
  return n === out.length;
}

interface FerRow {
  /** index into the store, -1 when the row's pixels were bad */
  image: number;
  emotion: string;
  usage: string;
  where: string;
}

/** Every row of a FER-2013 CSV in file order, with its pixels decoded into one store. */
async function readFerRows(path: string, report: SkipReport): Promise<{ rows: FerRow[]; store: PixelStore }> {
  const chunks: Uint8Array[] = [];
  let chunk = new Uint8Array(1024 * PIXELS);
  let inChunk = 0;
  const rows: FerRow[] = [];
  let count = 0;
  for await (const { record, line } of csvRows(path, ['emotion', 'pixels'], report)) {
    const where = `${path}:${line}`;
    const usage = record.Usage ?? record.usage ?? 'Training';
    if (inChunk === 1024) {
      chunks.push(chunk);
      chunk = new Uint8Array(1024 * PIXELS);
      inChunk = 0;
    }
    if (!parsePixels(record.pixels, chunk.subarray(inChunk * PIXELS, (inChunk + 1) * PIXELS))) {
      report.skip('malformed row', where, `pixels must be ${PIXELS} integers in 0..255 (48x48)`);
      rows.push({ image: -1, emotion: record.emotion, usage, where });
      continue;
    }
    rows.push({ image: count++, emotion: record.emotion, usage, where });
    inChunk++;
  }
  chunks.push(chunk.subarray(0, inChunk * PIXELS));
  // One shared buffer, so worker threads read the pixels in place.
  const data = new Uint8Array(new SharedArrayBuffer(count * PIXELS));
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { rows, store: { width: SIDE, height: SIDE, channels: 1, count, data } };
}

function addSample(splits: Map<string, SampleRef[]>, usage: string, sample: SampleRef, report: SkipReport): void {
  if (!USAGES.includes(usage)) {
    report.skip('malformed row', sample.where, `Usage must be one of ${USAGES.join(', ')}, not '${usage}'`);
    return;
  }
  const name = canonicalSplit(usage);
  if (!splits.has(name)) splits.set(name, []);
  splits.get(name)!.push(sample);
}

function buildDataset(
  format: 'fer2013' | 'ferplus',
  path: string,
  classes: ClassCount,
  lists: Map<string, SampleRef[]>,
  store: PixelStore,
  report: SkipReport,
): Dataset {
  const splits = new Map<string, Split>();
  for (const name of ['train', 'val', 'test']) {
    const samples = lists.get(name);
    if (samples?.length) splits.set(name, { name, samples, pixels: store });
  }
  if (splits.size === 0) throw new DataError(`${printable(path)}: no usable rows (${reportLine(report)})`);
  return { format, path, classes, labelNames: labelNames(classes), splits, report };
}

function record(mapped: Mapped, where: string, report: SkipReport): number | null {
  if ('label' in mapped) return mapped.label;
  if ('excluded' in mapped) report.exclude(mapped.excluded);
  else report.skip('unknown label', where, mapped.unknown);
  return null;
}

export async function readFer2013Csv(
  path: string,
  options: { classes?: ClassCount; strict?: boolean } = {},
): Promise<Dataset> {
  const classes = options.classes ?? 7;
  const report = new SkipReport(options.strict);
  checkDataFile(path, 'the FER-2013 CSV');
  const { rows, store } = await readFerRows(path, report);
  const lists = new Map<string, SampleRef[]>();
  for (const row of rows) {
    if (row.image < 0) continue;
    const label = record(fer2013Label(row.emotion, classes), row.where, report);
    if (label !== null) addSample(lists, row.usage, { label, source: row.image, where: row.where }, report);
  }
  return buildDataset('fer2013', path, classes, lists, store, report);
}

// The FER+ vote arithmetic lives in readers/ferplus.ts, shared by both FER+ layouts.
export { ferPlusLabel } from './ferplus.js';

/**
 * FER+: `path` is fer2013new.csv (or a folder holding it); the FER-2013 CSV is
 * options.fer2013 or fer2013.csv beside it. Labels as in readers/ferplus.ts.
 */
export async function readFerPlus(
  path: string,
  options: {
    classes?: ClassCount;
    strict?: boolean;
    fer2013?: string;
    labels?: FerPlusLabels;
    protocol?: FerPlusProtocol;
  } = {},
): Promise<Dataset> {
  const classes = options.classes ?? 8;
  const labels = checkLabelMode(options.labels);
  const protocol = checkProtocol(options.protocol);
  const arena = labels === 'distribution' ? new TargetArena(classes) : null;
  const votesPath = statSync(path).isDirectory() ? join(path, 'fer2013new.csv') : path;
  const ferPath = resolve(options.fer2013 ?? join(dirname(votesPath), 'fer2013.csv'));
  if (!existsSync(votesPath)) throw new DataError(`FER+ vote file not found: ${printable(votesPath)}`);
  if (!existsSync(ferPath)) {
    throw new DataError(
      `FER+ needs the FER-2013 CSV for its pixels: ${printable(ferPath)} not found (pass --fer2013 <fer2013.csv>)`,
    );
  }
  const report = new SkipReport(options.strict);
  checkDataFile(votesPath, 'the FER+ vote file');
  checkDataFile(ferPath, 'the FER-2013 CSV');
  const { rows, store } = await readFerRows(ferPath, new SkipReport(options.strict));
  const lists = new Map<string, SampleRef[]>();
  let i = 0;
  for await (const { record: r, line } of csvRows(votesPath, ['Usage', 'Image name', ...FERPLUS_COLUMNS], report)) {
    const where = `${votesPath}:${line}`;
    const fer = rows[i++];
    if (!fer) {
      report.skip('malformed row', where, `no row ${i} in ${ferPath}`);
      continue;
    }
    if (!r['Image name']) {
      report.exclude('FER+ no image name (excluded by FER+)');
      continue;
    }
    if (fer.image < 0) {
      report.skip('malformed row', fer.where, 'bad pixels in the FER-2013 row this FER+ row refers to');
      continue;
    }
    const votes = parseVotes(FERPLUS_COLUMNS.map((c) => r[c]));
    if (typeof votes === 'string') {
      report.skip('malformed row', where, votes);
      continue;
    }
    const kept = ferPlusSample(votes, classes, labels, arena, report, protocol);
    if (!kept) continue;
    const sample: SampleRef = { label: kept.label, source: fer.image, where, ferPlusReference: kept.reference };
    if (kept.target) sample.target = kept.target;
    addSample(lists, r.Usage, sample, report);
  }
  return buildDataset('ferplus', votesPath, classes, lists, store, report);
}
