// adcorre-data: what a user runs first on a dataset.
//   adcorre-data stats <path> [--format ...] [--classes 7|8] [--fer2013 csv] [--no-verify] [--strict] [--json]
//   adcorre-data align <photos> --out <folder>            (lib/cli/data-align.ts)
//   adcorre-data targets <predictions.csv...> --out <csv>  (lib/cli/data-targets.ts)
import { Command, InvalidArgumentError, Option } from 'commander';
import { DATASET_FORMATS } from '../data/dataset.js';
import { openDataset } from '../data/open.js';
import { type DatasetStats, datasetStats, formatStats } from '../data/stats.js';
import { checkCsvPath, checkDatasetPath, printableSummary } from '../data/readers/files.js';
import { printable } from '../terminal.js';
import { describeError } from './args.js';
import { addAlignCommand } from './data-align.js';
import { addTargetsCommand } from './data-targets.js';

/** The statistics as a terminal shows them: paths, split names and skipped files' names through printable(). */
function printableStats(stats: DatasetStats): DatasetStats {
  return {
    ...stats,
    path: printable(stats.path),
    splits: stats.splits.map((s) => ({ ...s, name: printable(s.name) })),
    report: printableSummary(stats.report),
  };
}

function classCount(value: string): 7 | 8 {
  if (value !== '7' && value !== '8') throw new InvalidArgumentError('expected 7 or 8');
  return Number(value) as 7 | 8;
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('adcorre-data')
    .description('Inspect facial-expression datasets (FER-2013, FER+, RAF-DB, AffectNet, image folders, CSV manifests)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let status = 0;
  program
    .command('stats')
    .description('split sizes, class histogram and skipped files of a dataset')
    .argument('<path>', 'dataset folder or CSV file')
    .addOption(new Option('--format <format>', 'dataset format').choices(['auto', ...DATASET_FORMATS]).default('auto'))
    .option('--classes <n>', '7, or 8 with contempt', classCount)
    .option('--fer2013 <csv>', 'FER+: the FER-2013 CSV holding the pixels')
    .option('--no-verify', 'do not decode every image (faster; broken files are not counted)')
    .option('--strict', 'stop at the first bad item')
    .option('--json', 'machine-readable output')
    .action(
      async (
        path: string,
        opts: { format: string; classes?: 7 | 8; fer2013?: string; verify: boolean; strict?: boolean; json?: boolean },
      ) => {
        // a device or a named pipe would be waited on or read forever: refused, named (exit 2)
        checkDatasetPath(path, '<path>');
        if (opts.fer2013 !== undefined) checkCsvPath(opts.fer2013, '--fer2013');
        const dataset = await openDataset(path, {
          format: opts.format as never,
          classes: opts.classes,
          strict: opts.strict,
          fer2013: opts.fer2013,
        });
        const tty = process.stderr.isTTY && !opts.json;
        const stats = await datasetStats(dataset, {
          verify: opts.verify,
          onProgress: tty
            ? (done, total) => {
                if (done % 500 === 0 || done === total)
                  process.stderr.write(`\rdecoding ${done}/${total}${done === total ? '\n' : ''}`);
              }
            : undefined,
        });
        process.stdout.write(`${opts.json ? JSON.stringify(stats, null, 2) : formatStats(printableStats(stats))}\n`);
        if (stats.splits.every((s) => s.samples === 0)) status = 1;
      },
    );
  addAlignCommand(program, (s) => (status = s));
  addTargetsCommand(program, (s) => (status = s));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code?.startsWith('commander.'))
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    const { message, usage } = describeError(err);
    process.stderr.write(`adcorre-data: ${printable(message)}\n`);
    return usage ? 2 : 1;
  }
}
