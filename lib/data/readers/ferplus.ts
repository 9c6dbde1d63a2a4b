// FER+ (Microsoft's relabelling of FER-2013 by 10 crowd workers per image):
// the vote arithmetic shared by both layouts (the majority label and the
// normalised vote distribution), and the reader of the layout FERPlus's own
// generate_training_data.py writes: FER2013Train/, FER2013Valid/, FER2013Test/,
// each holding 48x48 grey PNGs (fer0000000.png ...) and a label.csv without
// header, one row per image:
//   fer0000000.png,"(0, 0, 48, 48)",4,0,0,1,3,2,0,0,0,0
// name, face box "(x, y, w, h)", then the 10 vote counts of FERPLUS_COLUMNS.
// (The other layout, fer2013new.csv joined with the FER-2013 CSV, is read in
// readers/fer2013.ts with the same functions.)
//
// Which images are kept, in both label modes: those whose most-voted column
// is one of the 8 emotions, alone. Left out and counted: a majority of
// unknown or not-a-face (NF), as the FER+ paper (Barsoum et al. 2016) drops
// them from its training and test sets; ties for the most votes; rows without
// votes; contempt majorities in the 7-class label space. The 'distribution'
// mode (the paper's cross-entropy-on-the-label-distribution scheme) keeps the
// same images, not more: every sample still needs its one majority label (for
// accuracy, Ad-Corre's class terms, class-balanced sampling, and evaluation,
// which always uses the majority label), a tie has none, and with the same
// images in both modes a comparison of the two differs only in the training
// target.
//
// Two protocols choose the images. 'plain' (the default) is the paper's text,
// above. 'reference' is what FERPlus's code (ferplus.py, mode 'majority')
// scores and published FER+ accuracies use: single votes are zeroed as
// outliers, and an image is kept only where its top emotion then holds more
// than half of the remaining votes. Every image the reference protocol keeps,
// the plain one keeps with the same label (a top above half is strict and
// alone), so a plain read marks each sample the reference protocol keeps
// (SampleRef.ferPlusReference) and one pass scores both.
import { type Dirent, existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { parseFields } from '../csv.js';
import { type Box, type Dataset, type SampleRef, type Split, TargetArena } from '../dataset.js';
import {
  type ClassCount,
  EXPRESSIONS,
  FERPLUS_COLUMNS,
  FERPLUS_EXPRESSIONS,
  labelNames,
  type Mapped,
} from '../labels.js';
import { DataError, SkipReport } from '../skips.js';
import { IMAGE_EXTENSIONS } from './folder.js';
import { readDataHead, readDataText, reportLine } from './files.js';
import { printable } from '../../terminal.js';
import { parseDigits } from '../../validate.js';

/** How FER+ votes become training labels. */
export type FerPlusLabels = 'majority' | 'distribution';
export const FERPLUS_LABEL_MODES: readonly FerPlusLabels[] = ['majority', 'distribution'];

/** Which images FER+ keeps: the paper's plain majority, or FERPlus's reference code (see above). */
export type FerPlusProtocol = 'plain' | 'reference';
export const FERPLUS_PROTOCOLS: readonly FerPlusProtocol[] = ['plain', 'reference'];

/** The split folders of the generate_training_data.py layout, and the splits they hold. */
export const FERPLUS_FOLDERS: readonly (readonly [string, string])[] = [
  ['FER2013Train', 'train'],
  ['FER2013Valid', 'val'],
  ['FER2013Test', 'test'],
];
export const FERPLUS_LABEL_FILE = 'label.csv';

/** FER+ majority label: the most voted column; unknown, not-a-face and ties are left out. */
export function ferPlusLabel(votes: readonly number[], classes: ClassCount): Mapped {
  let best = -1;
  let tie = false;
  for (let i = 0; i < votes.length; i++) {
    if (best < 0 || votes[i] > votes[best]) {
      best = i;
      tie = false;
    } else if (votes[i] === votes[best]) {
      tie = true;
    }
  }
  if (best < 0 || votes[best] <= 0) return { excluded: 'FER+ no votes' };
  if (tie) return { excluded: 'FER+ tie' };
  const name = FERPLUS_EXPRESSIONS[best];
  if (name === null) return { excluded: `FER+ majority ${FERPLUS_COLUMNS[best]}` };
  return name === 'contempt' && classes === 7
    ? { excluded: 'contempt (not in the 7-class label space)' }
    : { label: EXPRESSIONS.indexOf(name) };
}

/**
 * Whether FERPlus's reference protocol (ferplus.py, 'majority') keeps a row: after zeroing the columns with a
 * single vote, the most voted column has more than half of the remaining votes and is an emotion (not unknown or
 * not-a-face). Its label is then the plain majority's.
 */
export function ferPlusReferenceKeeps(votes: readonly number[]): boolean {
  let total = 0,
    best = 0,
    top = -1;
  for (let i = 0; i < votes.length; i++) {
    const v = votes[i] > 1 ? votes[i] : 0; // ferplus.py: emotion_raw[i] < 1 + eps -> 0
    total += v;
    if (v > best) {
      best = v;
      top = i;
    }
  }
  return top >= 0 && best > 0.5 * total && FERPLUS_EXPRESSIONS[top] !== null;
}

/**
 * The votes over the label space's emotions, in canonical order, normalised
 * to sum to 1, written into out (length classes). Unknown and not-a-face
 * votes are not emotions and are dropped; with 7 classes contempt's votes are
 * dropped too and the rest renormalised. False (out untouched) when no
 * emotion has a vote.
 */
export function ferPlusDistribution(votes: readonly number[], classes: ClassCount, out: Float32Array): boolean {
  let total = 0;
  for (let i = 0; i < FERPLUS_EXPRESSIONS.length; i++) {
    const name = FERPLUS_EXPRESSIONS[i];
    if (name !== null && EXPRESSIONS.indexOf(name) < classes) total += votes[i];
  }
  if (!(total > 0)) return false;
  out.fill(0);
  for (let i = 0; i < FERPLUS_EXPRESSIONS.length; i++) {
    const name = FERPLUS_EXPRESSIONS[i];
    const c = name === null ? -1 : EXPRESSIONS.indexOf(name);
    if (c >= 0 && c < classes) out[c] = votes[i] / total;
  }
  return true;
}

/** What one row's votes give: the sample's label (and target), or null when it is left out (counted). */
export function ferPlusSample(
  votes: readonly number[],
  classes: ClassCount,
  labels: FerPlusLabels,
  arena: TargetArena | null,
  report: SkipReport,
  protocol: FerPlusProtocol = 'plain',
): { label: number; target?: Float32Array; reference: boolean } | null {
  const mapped = ferPlusLabel(votes, classes);
  if ('excluded' in mapped) {
    report.exclude(mapped.excluded);
    return null;
  }
  if (!('label' in mapped)) return null; // ferPlusLabel never says unknown
  const reference = ferPlusReferenceKeeps(votes);
  if (protocol === 'reference' && !reference) {
    report.exclude('FER+ no majority above half (reference protocol)');
    return null;
  }
  if (labels === 'majority' || !arena) return { label: mapped.label, reference };
  const target = arena.row();
  ferPlusDistribution(votes, classes, target); // the majority is an emotion of the space: it has votes
  return { label: mapped.label, target, reference };
}

/** The 10 vote counts of a row (fields in FERPLUS_COLUMNS order), or why they cannot be used. */
export function parseVotes(fields: readonly string[]): number[] | string {
  const votes = fields.map(parseDigits);
  const bad = votes.findIndex((v) => !Number.isInteger(v) || v < 0);
  if (bad >= 0) {
    return `vote counts must be non-negative integers; ${FERPLUS_COLUMNS[bad]} is '${fields[bad]}'`;
  }
  return votes;
}

/** One of `choices` for the option `name` (undefined: the first, the default), or a RangeError naming it. */
function choiceOf<T extends string>(name: string, value: unknown, choices: readonly T[]): T {
  if (value === undefined) return choices[0];
  if (!choices.includes(value as T))
    throw new RangeError(
      `Expected one of ${choices.join(', ')} for ${name} but received '${printable(String(value))}'`,
    );
  return value as T;
}

export const checkProtocol = (protocol: unknown): FerPlusProtocol => choiceOf('protocol', protocol, FERPLUS_PROTOCOLS);

export const checkLabelMode = (labels: unknown): FerPlusLabels => choiceOf('labels', labels, FERPLUS_LABEL_MODES);

const isFile = (p: string): boolean => statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;

/**
 * The split folders of the generate_training_data.py layout under `path`:
 * FER2013Train / FER2013Valid / FER2013Test that hold a label.csv, or `path`
 * itself when it holds one. Empty when `path` is not in this layout.
 */
export function ferPlusFolders(path: string): { dir: string; split: string }[] {
  const root = resolve(path);
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) return [];
  const found = FERPLUS_FOLDERS.filter(([name]) => isFile(join(root, name, FERPLUS_LABEL_FILE))).map(
    ([name, split]) => ({ dir: join(root, name), split }),
  );
  if (found.length) return found;
  if (!isFile(join(root, FERPLUS_LABEL_FILE))) return [];
  const own = FERPLUS_FOLDERS.find(([name]) => name.toLowerCase() === basename(root).toLowerCase());
  return [{ dir: root, split: own ? own[1] : basename(root) }];
}

// name, "(x, y, w, h)", 10 votes
const FIELDS = 2 + FERPLUS_COLUMNS.length;
const BOX = /^\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$/;
// generate_training_data.py's box for a whole 48x48 crop: no crop needed
const WHOLE = '0,0,48,48';

// The row shape generate_training_data.py writes: only the box quoted, no quote inside it.
const PLAIN_ROW = /^([^",]*),"([^"]*)",([^"]*)$/;

/**
 * A label.csv line's fields. Lines of the usual shape are split here, as
 * the CSV reader would split them (about 30 times faster: csv-parse takes 6 s for
 * FER2013Train's 28,558 lines one by one); any other quoting goes to the CSV reader's parseFields.
 */
function rowFields(text: string): string[] {
  if (!text.includes('"')) return text.split(',').map((f) => f.trim());
  const plain = PLAIN_ROW.exec(text);
  if (plain) return [plain[1].trim(), plain[2], ...plain[3].split(',').map((f) => f.trim())];
  const fields = parseFields(text);
  if (typeof fields === 'string') throw new Error(fields);
  return fields;
}

function readFolder(
  dir: string,
  split: string,
  classes: ClassCount,
  labels: FerPlusLabels,
  arena: TargetArena | null,
  report: SkipReport,
  protocol: FerPlusProtocol,
): SampleRef[] {
  const labelFile = join(dir, FERPLUS_LABEL_FILE);
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new DataError(
      `${printable(dir)}: cannot list the FER+ ${split} folder (${printable((err as Error).message)})`,
    );
  }
  // the images there are (files or links to them), to check rows against without a stat each
  const images = new Set(
    entries
      .filter((e) => !e.name.startsWith('.') && IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase()))
      .filter((e) => e.isFile() || (e.isSymbolicLink() && isFile(join(dir, e.name))))
      .map((e) => e.name),
  );
  const named = new Set<string>();
  const samples: SampleRef[] = [];
  const lines = readDataText(labelFile, 'the FER+ label file').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const text = i === 0 ? lines[i].replace(/^\uFEFF/, '') : lines[i];
    if (!text.trim()) continue;
    const where = `${labelFile}:${i + 1}`;
    let fields: string[];
    try {
      fields = rowFields(text);
    } catch (err) {
      report.skip('malformed row', where, String((err as Error).message).replace(/\s*at line \d+/g, ''));
      continue;
    }
    // An image whose row is bad is counted once, for its row, not again as unlabelled.
    const name = fields[0] ?? '';
    const nameOk = name !== '' && !name.includes('/') && !name.includes('\\');
    if (nameOk && named.has(name)) {
      report.skip('malformed row', where, `${name} is named by an earlier row too`);
      continue;
    }
    if (nameOk) named.add(name);
    if (fields.length !== FIELDS) {
      report.skip(
        'malformed row',
        where,
        `expected ${FIELDS} fields (image name, "(x, y, w, h)", ${FERPLUS_COLUMNS.join(', ')}), found ${fields.length}`,
      );
      continue;
    }
    if (!nameOk) {
      report.skip('malformed row', where, `expected an image file name in the first field, found '${name}'`);
      continue;
    }
    const boxText = fields[1];
    const m = BOX.exec(boxText);
    if (!m || Number(m[3]) === 0 || Number(m[4]) === 0) {
      report.skip('malformed row', where, `expected a face box "(x, y, w, h)" in the second field, found '${boxText}'`);
      continue;
    }
    const votes = parseVotes(fields.slice(2));
    if (typeof votes === 'string') {
      report.skip('malformed row', where, votes);
      continue;
    }
    if (!images.has(name)) {
      report.skip('missing file', where, `${name} is not in ${dir}`);
      continue;
    }
    const kept = ferPlusSample(votes, classes, labels, arena, report, protocol);
    if (!kept) continue;
    const sample: SampleRef = {
      label: kept.label,
      source: join(dir, name),
      where: `${where} (${name})`,
      ferPlusReference: kept.reference,
    };
    const box = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] as const;
    if (box.join(',') !== WHOLE) sample.box = box as Box;
    if (kept.target) sample.target = kept.target;
    samples.push(sample);
  }
  for (const name of [...images].sort()) {
    if (!named.has(name)) report.skip('unlabelled image', join(dir, name), `named in no row of ${labelFile}`);
  }
  return samples;
}

/**
 * FER+ in the generate_training_data.py layout: `path` holds FER2013Train /
 * FER2013Valid / FER2013Test (train / val / test; any of them), or is one of
 * them. 8 classes unless told 7; labels 'majority' (default) or
 * 'distribution' (each sample also carries its vote distribution as target);
 * protocol 'plain' (default) or 'reference' (FERPlus's code: see above).
 */
export function readFerPlusFolders(
  path: string,
  options: { classes?: ClassCount; strict?: boolean; labels?: FerPlusLabels; protocol?: FerPlusProtocol } = {},
): Dataset {
  const classes = options.classes ?? 8;
  const labels = checkLabelMode(options.labels);
  const protocol = checkProtocol(options.protocol);
  const root = resolve(path);
  const folders = ferPlusFolders(root);
  if (!folders.length) {
    throw new DataError(
      `${printable(root)}: not the FER+ folder layout; expected ${FERPLUS_FOLDERS.map(([n]) => n).join(' / ')} ` +
        `holding ${FERPLUS_LABEL_FILE}, or a folder with a ${FERPLUS_LABEL_FILE} of its own`,
    );
  }
  const report = new SkipReport(options.strict);
  const arena = labels === 'distribution' ? new TargetArena(classes) : null;
  const splits = new Map<string, Split>();
  for (const { dir, split } of folders) {
    const samples = readFolder(dir, split, classes, labels, arena, report, protocol);
    if (samples.length) splits.set(split, { name: split, samples });
  }
  if (splits.size === 0) throw new DataError(`${printable(root)}: no usable rows (${reportLine(report)})`);
  return { format: 'ferplus', path: root, classes, labelNames: labelNames(classes), splits, report };
}

/** True when `path` is a FER+ label.csv (no header; name, box, 10 votes) rather than a CSV with a header. */
export function isFerPlusLabelFile(path: string): boolean {
  if (basename(path).toLowerCase() !== FERPLUS_LABEL_FILE || !existsSync(path)) return false;
  const first = readDataHead(path).split(/\r?\n/)[0] ?? '';
  try {
    const fields = rowFields(first.replace(/^\uFEFF/, ''));
    return fields.length === FIELDS && BOX.test(fields[1]);
  } catch {
    return false;
  }
}
