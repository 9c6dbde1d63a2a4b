// adcorre-data targets <predictions.csv...> --out <targets.csv>: distillation from a file. A teacher's answers,
// written once by `adcorre-eval --predictions` (columns path,label,split,predicted,p_<class>), become the soft
// targets of a CSV manifest for adcorre-train: each row's p = (1 - a) x one-hot(label) + a x softmax(log(p_teacher)
// / T), with the row's target_<class> columns in place of the one-hot label where it has them (FER+'s vote
// distributions, written by adcorre-eval --labels distribution): the blend and temperature that `adcorre-train
// --teacher` applies on the fly, with the same option names and defaults (lib/train/distill.ts is the one home of
// both formulas).
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { csvField, csvRows } from '../data/csv.js';
import { canonicalSplit } from '../data/dataset.js';
import { type ClassCount, labelNames, nameOrIndexLabel } from '../data/labels.js';
import { checkCsvPath, printableSummary } from '../data/readers/files.js';
import { distributionIn } from '../data/readers/folder.js';
import { SkipReport } from '../data/skips.js';
import { checkOutputFile, writeFileAtomic } from '../io.js';
import { distilledTargets, temperatureScaled } from '../train/distill.js';
import { TRAINING_DEFAULTS as D } from '../train/defaults.js';
import { printable } from '../terminal.js';
import { numberIn, OptionError } from '../validate.js';
import { finite as num } from './args.js';

interface TargetsOptions {
  out: string;
  teacherTemperature: number;
  teacherWeight: number;
}

/**
 * A row kept: its fields, its class index, the teacher's probabilities and the dataset's own soft target (both in
 * canonical class order, or none).
 */
interface TargetRow {
  path: string;
  label: number;
  split: string;
  probs: Float32Array | null;
  target: Float32Array | null;
}

/** The distribution in the columns `<prefix><class>` of one row (readers/folder.ts distributionIn), as floats. */
function distributionOf(
  record: Record<string, string>,
  names: readonly string[],
  prefix: string,
): Float32Array | null | string {
  const values = distributionIn(
    record,
    names.map((l) => `${prefix}${l}`),
  );
  return values === null || typeof values === 'string' ? values : Float32Array.from(values);
}

/** The label space of a predictions file: its p_<class> columns, which must be FER's 7 or 8 classes. */
function classesOf(header: readonly string[], path: string): ClassCount {
  const given = header.filter((c) => c.startsWith('p_')).map((c) => c.slice(2));
  for (const classes of [7, 8] as const)
    if (given.length === classes && labelNames(classes).every((l) => given.includes(l))) return classes;
  throw new OptionError(
    '<predictions>',
    `a CSV with a p_<class> column for each of the 7 or 8 classes (${labelNames(8).join(', ')}), as adcorre-eval --predictions writes`,
    printable(path),
    given.length ? `its probability columns: ${printable(given.join(', '))}` : 'it has no p_<class> column',
  );
}

/** The rows of one predictions file; bad rows are skipped and counted in `report`. */
async function readPredictions(path: string, report: SkipReport): Promise<{ classes: ClassCount; rows: TargetRow[] }> {
  let classes: ClassCount | undefined;
  const rows: TargetRow[] = [];
  for await (const { record, line } of csvRows(path, ['path', 'label'], report)) {
    classes ??= classesOf(Object.keys(record), path);
    const where = `${path}:${line}`;
    const mapped = nameOrIndexLabel(record.label ?? '', classes);
    if (!record.path || !('label' in mapped)) {
      report.skip(record.path ? 'unknown label' : 'malformed row', where, record.path ? record.label : 'empty path');
      continue;
    }
    const names = labelNames(classes);
    const probs = distributionOf(record, names, 'p_');
    const target = distributionOf(record, names, 'target_');
    if (typeof probs === 'string' || typeof target === 'string') {
      report.skip('malformed row', where, typeof probs === 'string' ? probs : (target as string));
      continue;
    }
    // a relative path is the predictions file's (a manifest's rule): made absolute, as the output may live elsewhere
    rows.push({
      path: resolve(dirname(path), record.path),
      label: mapped.label,
      split: canonicalSplit(record.split || 'all'),
      probs,
      target,
    });
  }
  if (classes === undefined) throw new OptionError('<predictions>', 'a CSV with rows', printable(path), 'it has none');
  return { classes, rows };
}

/**
 * The manifest's text: every row of a split whose rows carry the teacher's probabilities gets the blended target;
 * such a split's rows without them (adcorre-eval --pipeline's photos without a face) are left out and counted in
 * `noAnswer`; a split without any keeps its rows with empty columns (hard labels: validation, say).
 */
export function targetsCsv(
  rows: readonly TargetRow[],
  classes: ClassCount,
  temperature: number,
  weight: number,
): { text: string; written: number; noAnswer: number; voted: number } {
  const names = labelNames(classes);
  const soft = new Set(rows.filter((r) => r.probs).map((r) => r.split));
  const lines = [['path', 'label', 'split', ...names.map((l) => `p_${l}`)].map(csvField).join(',')];
  let noAnswer = 0,
    voted = 0;
  for (const r of rows) {
    let columns = names.map(() => '');
    if (r.probs) {
      const teacher = temperatureScaled(r.probs, classes, temperature);
      const target = distilledTargets(Int32Array.of(r.label), r.target ?? undefined, teacher, classes, weight);
      if (r.target) voted++;
      columns = Array.from(target, (p) => p.toFixed(6));
    } else if (soft.has(r.split)) {
      noAnswer++;
      continue;
    }
    lines.push([r.path, names[r.label], r.split, ...columns].map(csvField).join(','));
  }
  return { text: `${lines.join('\n')}\n`, written: lines.length - 1, noAnswer, voted };
}

const rowCount = (n: number, kind = ''): string => `${n} ${kind}row${n === 1 ? '' : 's'}`;

async function writeTargets(inputs: string[], o: TargetsOptions): Promise<number> {
  numberIn(
    '--teacher-temperature',
    o.teacherTemperature,
    { min: 0, minExclusive: true, max: 100 },
    'a number in (0, 100]',
  );
  numberIn('--teacher-weight', o.teacherWeight, { min: 0, max: 1 }, 'a number in [0, 1]');
  for (const p of inputs) {
    checkCsvPath(p, '<predictions>');
    if (!existsSync(p)) throw new OptionError('<predictions>', 'an existing CSV file', printable(p), 'not found');
  }
  checkOutputFile(o.out, '--out', inputs);
  const report = new SkipReport();
  const all: TargetRow[] = [];
  let classes: ClassCount | undefined;
  for (const path of inputs) {
    const read = await readPredictions(path, report);
    if (classes !== undefined && read.classes !== classes)
      throw new OptionError(
        '<predictions>',
        `files of one label space (${classes} classes)`,
        printable(path),
        `it has ${read.classes}`,
      );
    classes = read.classes;
    all.push(...read.rows);
  }
  const { text, written, noAnswer, voted } = targetsCsv(all, classes!, o.teacherTemperature, o.teacherWeight);
  writeFileAtomic(o.out, text, '--out');
  // bad rows: counted on the summary line, then one line per reason with an example (names through printable())
  const shown = new SkipReport();
  shown.merge(printableSummary(report.summary()));
  const bad = Object.values(report.summary().skipped).reduce((a, b) => a + (b ?? 0), 0);
  process.stdout.write(
    `${rowCount(written)} in ${printable(o.out)} (teacher weight ${o.teacherWeight}, temperature ${o.teacherTemperature})` +
      `${voted ? `; ${rowCount(voted)} blended with their votes (target_<class>), not the one-hot label` : ''}` +
      `${noAnswer ? `; ${rowCount(noAnswer)} without the teacher's answer left out` : ''}` +
      `${bad ? `; ${rowCount(bad, 'bad ')} skipped:\n${shown.format()}` : ''}\n`,
  );
  return written ? 0 : 1;
}

/** Adds `targets` to adcorre-data; `setStatus` receives its exit status. */
export function addTargetsCommand(program: Command, setStatus: (status: number) => void): void {
  program
    .command('targets')
    .description(
      "distillation from a file: a teacher's predictions (adcorre-eval --predictions) turned into a CSV manifest of soft targets for adcorre-train",
    )
    .argument('<predictions...>', 'CSV files written by adcorre-eval --predictions (their rows are concatenated)')
    .requiredOption('--out <file.csv>', 'the manifest to write: path,label,split,p_<class>...')
    .option(
      '--teacher-temperature <T>',
      "softmax(log(p) / T) of the teacher's probabilities (as adcorre-train --teacher-temperature)",
      num,
      D.teacherTemperature,
    )
    .option(
      '--teacher-weight <a>',
      "the target is (1 - a) x the label's (or the row's target_<class> votes) + a x the teacher's",
      num,
      D.teacherWeight,
    )
    .action(async (inputs: string[], opts: TargetsOptions) => setStatus(await writeTargets(inputs, opts)));
}
