// Image folders (class-named subfolders, optionally under split folders, as
// in the common Kaggle layout of FER-2013: train/angry/*.jpg) and CSV
// manifests (path,label[,split]).
import { type Dirent, readdirSync, readlinkSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { csvRows } from '../csv.js';
import type { Dataset, SampleRef, Split } from '../dataset.js';
import { canonicalSplit, TargetArena } from '../dataset.js';
import { type ClassCount, folderLabel, labelNames, nameOrIndexLabel } from '../labels.js';
import { DataError, SkipReport } from '../skips.js';
import { isUtf8Name, printableBytes } from '../../input-file.js';
import { printable } from '../../terminal.js';
import { parseDecimal } from '../../validate.js';
import { checkDataFile, reportLine } from './files.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];

// Entries of a folder that are (or link to) folders, or files: datasets are
// often assembled from symbolic links to a read-only copy. A link that leads
// nowhere (dangling, or a loop) is skipped and counted when a report is given.
function isKind(dir: string, e: Dirent, kind: 'dir' | 'file', report?: SkipReport): boolean {
  if (e.isSymbolicLink()) {
    const path = join(dir, e.name);
    let s;
    try {
      s = statSync(path, { throwIfNoEntry: false });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      report?.skip(
        'broken link',
        path,
        code === 'ELOOP' ? 'a loop of symbolic links (ELOOP)' : `${code ?? ''} ${(err as Error).message}`.trim(),
      );
      return false;
    }
    if (!s) {
      let target = '?';
      try {
        target = readlinkSync(path);
      } catch {
        /* keep '?' */
      }
      report?.skip('broken link', path, `dangling: its target ${target} does not exist`);
      return false;
    }
    return kind === 'dir' ? s.isDirectory() : s.isFile();
  }
  return kind === 'dir' ? e.isDirectory() : e.isFile();
}

/** The entries of a folder, or [] with the folder counted as unreadable when a report is given. */
function entries(path: string, report?: SkipReport): Dirent[] {
  if (!report) return readdirSync(path, { withFileTypes: true });
  try {
    return readdirSync(path, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    report.skip('unreadable folder', path, `${code ?? ''} ${(err as Error).message}`.trim());
    return [];
  }
}

function subdirectories(path: string, report?: SkipReport): string[] {
  return entries(path, report)
    .filter((e) => !e.name.startsWith('.') && isKind(path, e, 'dir', report))
    .map((e) => e.name)
    .sort();
}

function classDirs(dir: string): boolean {
  const subs = subdirectories(dir);
  return subs.length > 0 && subs.every((s) => folderLabel(s) !== undefined);
}

function readClassFolders(dir: string, classes: ClassCount, report: SkipReport): SampleRef[] {
  const samples: SampleRef[] = [];
  const subs = subdirectories(dir, report);
  const unknown = subs.filter((s) => folderLabel(s, classes) === undefined);
  if (unknown.length || subs.length === 0) {
    throw new DataError(
      `${printable(dir)}: folder names must be expressions (${labelNames(8).join(', ')}, or angry, happiness, sadness, ` +
        `fearful, disgusted, surprised); found ${subs.map(printable).join(', ') || 'no subfolders'}` +
        `${unknown.length ? ` (unknown: ${unknown.map(printable).join(', ')})` : ''}`,
    );
  }
  for (const sub of subs) {
    const mapped = folderLabel(sub, classes)!;
    const files = entries(join(dir, sub), report).filter(
      (e) => !e.name.startsWith('.') && isKind(join(dir, sub), e, 'file', report),
    );
    files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    // A name that is not valid UTF-8 is listed with U+FFFD in place of its bad bytes, a name no file
    // has: counted as what it is (its bytes shown as \xNN), not as a missing file.
    const badNames = files.some((f) => f.name.includes('\ufffd')) ? notUtf8Names(join(dir, sub)) : new Map();
    for (const f of files) {
      const raw = badNames.get(f.name)?.shift();
      if (raw) {
        report.skip(
          'unusable file name',
          join(dir, sub, printableBytes(raw)),
          'the name is not valid UTF-8, which Node.js cannot open by name; rename the file',
        );
        continue;
      }
      if (!IMAGE_EXTENSIONS.includes(extname(f.name).toLowerCase())) {
        report.exclude('not an image file (by extension)');
        continue;
      }
      if ('label' in mapped)
        samples.push({ label: mapped.label, source: resolve(dir, sub, f.name), where: join(dir, sub, f.name) });
      else report.exclude('excluded' in mapped ? mapped.excluded : mapped.unknown);
    }
  }
  return samples;
}

/** A folder's names that are not valid UTF-8, by the name Node.js lists them under (U+FFFD for each bad byte run). */
function notUtf8Names(dir: string): Map<string, Buffer[]> {
  const names = new Map<string, Buffer[]>();
  let raw: Buffer[];
  try {
    raw = readdirSync(dir, { encoding: 'buffer' });
  } catch {
    return names;
  }
  raw.sort(Buffer.compare);
  for (const name of raw) {
    if (isUtf8Name(name)) continue;
    const lossy = name.toString('utf8');
    names.set(lossy, [...(names.get(lossy) ?? []), name]);
  }
  return names;
}

/**
 * A folder of class folders (one split, 'all'), or of split folders that each
 * hold class folders (train/val/test, Training/PublicTest/PrivateTest, ...).
 */
export function readImageFolder(path: string, options: { classes?: ClassCount; strict?: boolean } = {}): Dataset {
  const classes = options.classes ?? 7;
  const report = new SkipReport(options.strict);
  const root = resolve(path);
  if (!statSync(root).isDirectory()) throw new DataError(`${printable(root)} is not a folder`);
  const splits = new Map<string, Split>();
  const top = subdirectories(root);
  if (classDirs(root) || top.some((s) => folderLabel(s) !== undefined)) {
    // class folders at the top (an unknown name among them is an error listing them all)
    splits.set('all', { name: 'all', samples: readClassFolders(root, classes, report) });
  } else {
    const subs = subdirectories(root, report);
    if (subs.length === 0)
      throw new DataError(
        `${printable(root)}: no subfolders; expected class folders (e.g. happy/, sad/) or split folders (train/, val/)`,
      );
    for (const sub of subs) {
      const name = canonicalSplit(sub);
      splits.set(name, { name, samples: readClassFolders(join(root, sub), classes, report) });
    }
  }
  const total = [...splits.values()].reduce((s, x) => s + x.samples.length, 0);
  if (total === 0)
    throw new DataError(`${printable(root)}: no images found (extensions: ${IMAGE_EXTENSIONS.join(' ')})`);
  return { format: 'folder', path: root, classes, labelNames: labelNames(classes), splits, report };
}

/**
 * Whether a manifest has soft targets: a p_<class> column for every class of the label space, or no p_ column at
 * all; anything between (a class missing, a column of another label space or spelling) is a DataError.
 */
function manifestColumns(record: Record<string, string>, columns: readonly string[], path: string): boolean {
  const given = Object.keys(record).filter((c) => c.startsWith('p_'));
  if (given.length === 0) return false;
  const missing = columns.filter((c) => !given.includes(c));
  const foreign = given.filter((c) => !columns.includes(c));
  if (missing.length || foreign.length)
    throw new DataError(
      `${printable(path)}: a manifest with soft targets needs a probability column for each class of its label space ` +
        `(${columns.join(', ')})` +
        (missing.length ? `; missing ${missing.join(', ')}` : '') +
        (foreign.length ? `; not classes of it: ${printable(foreign.join(', '))}` : ''),
    );
  return true;
}

/** Soft targets on every sample of each split or on none (the loader needs one or the other): else a DataError. */
function checkTargets(path: string, splits: Map<string, Split>): void {
  for (const { name, samples } of splits.values()) {
    const withTarget = samples.filter((s) => s.target).length;
    if (withTarget > 0 && withTarget < samples.length)
      throw new DataError(
        `${printable(path)}: split '${printable(name)}' has probabilities on ${withTarget} of its ${samples.length} ` +
          `rows; soft targets go on every row of a split or on none: give the other rows probabilities or leave ` +
          `them out (adcorre-eval --pipeline writes a photo without a face with empty probabilities)`,
      );
  }
}

/**
 * The probabilities in a record's `columns`, normalised to sum 1: null when they are all empty (a photo without a
 * face); a string saying why when they are not a distribution (one empty or not a decimal number, one negative,
 * all 0, or a sum too large for a number: 1e308 twice, which would make every share 0).
 */
export function distributionIn(record: Record<string, string>, columns: readonly string[]): number[] | null | string {
  const fields = columns.map((c) => (record[c] ?? '').trim());
  if (fields.every((f) => f === '')) return null;
  const values = fields.map(parseDecimal);
  const bad = values.findIndex((v) => !Number.isFinite(v) || v < 0);
  if (bad >= 0) return `${columns[bad]} must be a probability (a number >= 0), not '${fields[bad]}'`;
  const sum = values.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) return `the probabilities ${columns.join(', ')} are all 0`;
  if (!Number.isFinite(sum))
    return `the probabilities ${columns.join(', ')} add up to more than a number holds; write them as shares of 1`;
  return values.map((v) => v / sum);
}

/**
 * A row's soft target from its p_<class> columns (adcorre-eval --predictions writes them: a model's
 * probabilities), in canonical class order (see distributionIn).
 */
export function manifestTarget(
  record: Record<string, string>,
  columns: readonly string[],
  arena: TargetArena,
): Float32Array | null | string {
  const values = distributionIn(record, columns);
  if (values === null || typeof values === 'string') return values;
  const target = arena.row();
  target.set(values);
  return target;
}

/**
 * A CSV manifest with columns path,label and optionally split; paths relative to the CSV's folder. With a
 * p_<class> column for every class (adcorre-eval --predictions), each row's probabilities are its soft target:
 * the cross-entropy trains on them (a teacher's answers computed once), the label stays the hard one for
 * accuracy, Ad-Corre and sampling.
 */
export async function readCsvManifest(
  path: string,
  options: { classes?: ClassCount; strict?: boolean } = {},
): Promise<Dataset> {
  const classes = options.classes ?? 7;
  const report = new SkipReport(options.strict);
  const base = dirname(resolve(path));
  const lists = new Map<string, SampleRef[]>();
  checkDataFile(path, 'the CSV manifest');
  const probabilityColumns = labelNames(classes).map((name) => `p_${name}`);
  const arena = new TargetArena(classes);
  let soft: boolean | undefined; // whether the manifest has probability columns: decided by its first row
  for await (const { record, line } of csvRows(path, ['path', 'label'], report)) {
    const where = `${path}:${line}`;
    soft ??= manifestColumns(record, probabilityColumns, path);
    if (!record.path) {
      report.skip('malformed row', where, 'empty path');
      continue;
    }
    const mapped = nameOrIndexLabel(record.label ?? '', classes);
    if ('unknown' in mapped) {
      report.skip('unknown label', where, mapped.unknown);
      continue;
    }
    if ('excluded' in mapped) {
      report.exclude(mapped.excluded);
      continue;
    }
    const target = soft ? manifestTarget(record, probabilityColumns, arena) : null;
    if (typeof target === 'string') {
      report.skip('malformed row', where, target);
      continue;
    }
    const split = canonicalSplit(record.split || 'all');
    if (!lists.has(split)) lists.set(split, []);
    lists
      .get(split)!
      .push({ label: mapped.label, source: resolve(base, record.path), where, ...(target ? { target } : {}) });
  }
  const splits = new Map<string, Split>([...lists].map(([name, samples]) => [name, { name, samples }]));
  if (splits.size === 0) throw new DataError(`${printable(path)}: no usable rows (${reportLine(report)})`);
  checkTargets(path, splits);
  return { format: 'csv', path: resolve(path), classes, labelNames: labelNames(classes), splits, report };
}
