// AffectNet: the training.csv / validation.csv manifests (subDirectory_filePath,
// face_x, face_y, face_width, face_height, ..., expression); each face is
// cropped by its box. Images are looked up under Manually_Annotated_Images/
// (the archive's layout) or directly under the dataset folder.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { csvRows } from '../csv.js';
import type { Box, Dataset, SampleRef, Split } from '../dataset.js';
import { affectnetLabel, type ClassCount, labelNames } from '../labels.js';
import { DataError, SkipReport } from '../skips.js';
import { printable } from '../../terminal.js';
import { checkDataFile, reportLine } from './files.js';

const MANIFESTS: [string, string][] = [
  ['train', 'training.csv'],
  ['val', 'validation.csv'],
];
const COLUMNS = ['subDirectory_filePath', 'face_x', 'face_y', 'face_width', 'face_height', 'expression'];

export function findAffectNetManifests(root: string): [string, string][] {
  const out: [string, string][] = [];
  for (const [split, file] of MANIFESTS) {
    for (const dir of ['', 'Manually_Annotated_file_lists']) {
      const p = join(root, dir, file);
      if (existsSync(p)) {
        out.push([split, p]);
        break;
      }
    }
  }
  return out;
}

export async function readAffectNet(
  path: string,
  options: { classes?: ClassCount; strict?: boolean } = {},
): Promise<Dataset> {
  const classes = options.classes ?? 7;
  const report = new SkipReport(options.strict);
  const root = resolve(path);
  const manifests = findAffectNetManifests(root);
  if (manifests.length === 0)
    throw new DataError(`${printable(root)}: no AffectNet manifest (training.csv or validation.csv)`);
  const imageRoot = existsSync(join(root, 'Manually_Annotated_Images'))
    ? join(root, 'Manually_Annotated_Images')
    : root;
  const splits = new Map<string, Split>();
  for (const [name, manifest] of manifests) {
    const samples: SampleRef[] = [];
    checkDataFile(manifest, 'the AffectNet manifest');
    for await (const { record, line } of csvRows(manifest, COLUMNS, report)) {
      const where = `${manifest}:${line}`;
      const mapped = affectnetLabel(record.expression, classes);
      if (!('label' in mapped)) {
        if ('excluded' in mapped) report.exclude(mapped.excluded);
        else report.skip('unknown label', where, mapped.unknown);
        continue;
      }
      const box = [record.face_x, record.face_y, record.face_width, record.face_height].map(Number);
      if (!record.subDirectory_filePath || box.some((v) => !Number.isInteger(v)) || box[2] <= 0 || box[3] <= 0) {
        report.skip(
          'malformed row',
          where,
          'needs a file path and a face box of integers with positive width and height',
        );
        continue;
      }
      samples.push({
        label: mapped.label,
        source: join(imageRoot, record.subDirectory_filePath),
        box: box as unknown as Box,
        where,
      });
    }
    if (samples.length) splits.set(name, { name, samples });
  }
  if (splits.size === 0)
    throw new DataError(
      `${printable(root)}: no usable rows in ${manifests.map((m) => printable(m[1])).join(', ')} (${reportLine(report)})`,
    );
  return { format: 'affectnet', path: root, classes, labelNames: labelNames(classes), splits, report };
}
