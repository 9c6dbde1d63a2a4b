// RAF-DB basic: EmoLabel/list_patition_label.txt ("train_00001.jpg 5"), the
// aligned crops Image/aligned/train_00001_aligned.jpg, or, without them, the
// originals Image/original/train_00001.jpg cropped by
// Annotation/boundingbox/train_00001_boundingbox.txt (x1 y1 x2 y2).
import { existsSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import type { Box, Dataset, SampleRef, Split } from '../dataset.js';
import { type ClassCount, labelNames, rafdbLabel } from '../labels.js';
import { DataError, SkipReport } from '../skips.js';
import { printable } from '../../terminal.js';
import { readDataText, reportLine } from './files.js';

export const RAFDB_LIST = join('EmoLabel', 'list_patition_label.txt');

function readBox(file: string): Box | undefined {
  if (!existsSync(file)) return undefined;
  let text: string;
  try {
    text = readDataText(file, 'the RAF-DB box file');
  } catch {
    return undefined; // a box file that is not a regular file is no box
  }
  const v = text.trim().split(/\s+/).map(Number);
  if (v.length < 4 || v.slice(0, 4).some((x) => !Number.isFinite(x))) return undefined;
  const [x1, y1, x2, y2] = v;
  return [Math.round(x1), Math.round(y1), Math.round(x2 - x1), Math.round(y2 - y1)];
}

export function readRafDb(path: string, options: { classes?: ClassCount; strict?: boolean } = {}): Dataset {
  const classes = options.classes ?? 7;
  const report = new SkipReport(options.strict);
  const root = resolve(path);
  const list = join(root, RAFDB_LIST);
  if (!existsSync(list)) throw new DataError(`RAF-DB label list not found: ${printable(list)}`);
  const aligned = existsSync(join(root, 'Image', 'aligned'));
  const lists = new Map<string, SampleRef[]>([
    ['train', []],
    ['test', []],
  ]);
  const lines = readDataText(list, 'the RAF-DB label list').split(/\r?\n/);
  lines.forEach((text, i) => {
    const where = `${list}:${i + 1}`;
    if (!text.trim()) return;
    const [name, code] = text.trim().split(/\s+/);
    const split = name?.startsWith('train_') ? 'train' : name?.startsWith('test_') ? 'test' : null;
    if (!split || code === undefined) {
      report.skip('malformed row', where, `expected "train_00001.jpg 5" or "test_0001.jpg 5", got "${text.trim()}"`);
      return;
    }
    const mapped = rafdbLabel(code, classes);
    if (!('label' in mapped)) {
      if ('excluded' in mapped) report.exclude(mapped.excluded);
      else report.skip('unknown label', where, mapped.unknown);
      return;
    }
    const stem = basename(name, extname(name));
    const sample: SampleRef = aligned
      ? { label: mapped.label, source: join(root, 'Image', 'aligned', `${stem}_aligned.jpg`), where }
      : {
          label: mapped.label,
          source: join(root, 'Image', 'original', name),
          where,
          box: readBox(join(root, 'Annotation', 'boundingbox', `${stem}_boundingbox.txt`)),
        };
    lists.get(split)!.push(sample);
  });
  const splits = new Map<string, Split>();
  for (const [name, samples] of lists) if (samples.length) splits.set(name, { name, samples });
  if (splits.size === 0) throw new DataError(`${printable(list)}: no usable lines (${reportLine(report)})`);
  return { format: 'rafdb', path: root, classes, labelNames: labelNames(classes), splits, report };
}
