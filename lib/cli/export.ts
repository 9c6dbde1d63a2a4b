// adcorre-export <checkpoint...> -o model.onnx: the ONNX model users run (one
// checkpoint, or several averaged as an ensemble: one input and one label list,
// architectures free; an exported single model may stand in for a checkpoint).
import { dirname, join, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { getSplit } from '../data/dataset.js';
import { labelNames } from '../data/labels.js';
import { openDataset } from '../data/open.js';
import { checkInputFile, InputFileProblem, readInputFileSync } from '../input-file.js';
import { checkOutputFile, writeFileAtomic } from '../io.js';
import { describeError, finite, nonNegativeInt } from './args.js';
import { MAX_PRIOR_POWER, validateConfig, type XceptionConfig } from '../model/config.js';
import { exportOnnx } from '../model/onnx.js';
import { readOnnxMembers } from '../model/onnx-weights.js';
import type { Weights } from '../model/weights.js';
import { printable } from '../terminal.js';
import { MAX_CHECKPOINT_BYTES, readCheckpoint } from '../train/checkpoint.js';
import { OptionError, parseDecimal } from '../validate.js';

const INPUT = '<checkpoint>';

/**
 * An input's bytes, read only when it is a regular file (a link to /dev/zero
 * would be read forever, a named pipe waited on); else a usage error naming
 * the argument and what is there. `check`: only check, read nothing.
 */
function readInput(path: string, check = false): Buffer | undefined {
  const max = MAX_CHECKPOINT_BYTES;
  try {
    if (check) checkInputFile(path, max, 'a checkpoint');
    else return readInputFileSync(path, max, 'a checkpoint');
  } catch (err) {
    if (!(err instanceof InputFileProblem)) throw err;
    const reason = err.kind === 'folder' ? 'a folder, not a regular file' : err.reason;
    throw new OptionError(INPUT, 'a checkpoint (.ckpt) or model (.onnx) file', printable(path), reason);
  }
  return undefined;
}

/** --prior: comma-separated positive numbers (their count is checked against the model's classes later). */
function counts(value: string): number[] {
  const list = value.split(',').map(parseDecimal);
  if (!list.every((n) => Number.isFinite(n) && n > 0))
    throw new InvalidArgumentError('Expected comma-separated numbers > 0 (one per class, in the label order).');
  return list;
}

/**
 * --prior-from: the training split's label counts, in the model's label
 * order (the dataset's classes matched by name); every class must occur.
 */
async function priorFrom(path: string, labels: string[]): Promise<number[]> {
  const flag = '--prior-from';
  const expected = `a dataset whose training split holds every class of the model (${labels.join(', ')})`;
  if (labels.length !== 7 && labels.length !== 8)
    throw new OptionError(flag, expected, printable(path), `the model has ${labels.length} classes; pass --prior`);
  let names: string[];
  let samples: { label: number }[];
  try {
    const dataset = await openDataset(path, { classes: labels.length as 7 | 8 });
    names = dataset.labelNames;
    samples = getSplit(dataset, 'train').samples;
  } catch (err) {
    throw new OptionError(flag, expected, printable(path), printable((err as Error).message.split('\n')[0]));
  }
  const count = labels.map(() => 0);
  for (const s of samples) {
    const c = labels.indexOf(names[s.label]);
    if (c >= 0) count[c]++;
  }
  const missing = labels.filter((_, c) => count[c] === 0);
  if (missing.length)
    throw new OptionError(
      flag,
      expected,
      printable(path),
      `no training image of ${missing.map((l) => `'${printable(l)}'`).join(', ')} (counts ${count.join(',')})`,
    );
  return count;
}

interface Member {
  path: string;
  config: XceptionConfig;
  labels: string[];
  weights: Weights;
  summary: Record<string, unknown>;
}

/** A saved configuration with the export's evaluation-only settings, checked (errors name the input). */
function withOverrides(saved: object, overrides: Partial<XceptionConfig>, path: string): XceptionConfig {
  const changed = Object.keys(overrides).length > 0;
  return validateConfig(
    { ...saved, ...overrides },
    changed ? `${printable(path)} config with the export options` : `${printable(path)} config`,
  );
}

/**
 * The models one input adds to the export: a training checkpoint (.ckpt), or
 * an exported model (.onnx, e.g. a shipped model whose checkpoints are gone):
 * a single model, or every member of an ensemble (only member `member` when
 * given), with the evaluation-only overrides applied to each configuration.
 */
function readMembers(path: string, overrides: Partial<XceptionConfig>, member?: number): Member[] {
  if (!path.toLowerCase().endsWith('.onnx')) return [readCheckpointMember(path, overrides)];
  const { meta, members } = readOnnxMembers(readInput(path) as Buffer, printable(path));
  if (member !== undefined && member >= members.length)
    throw new OptionError(
      '--member',
      `an index below ${printable(path)}'s ${members.length} member${members.length > 1 ? 's' : ''}`,
      String(member),
    );
  const summaries = (meta.training?.ensemble as Record<string, unknown>[] | undefined) ?? [];
  return members
    .map((m, i) => ({
      path: members.length > 1 ? `${path} (member ${i})` : path,
      config: withOverrides(m.config, overrides, path),
      labels: meta.labels,
      weights: m.weights,
      summary: {
        model: path,
        ...(members.length > 1 ? { member: i, ...(summaries[i] ?? {}) } : (meta.training ?? {})),
      },
    }))
    .filter((_, i) => member === undefined || i === member);
}

/** A training checkpoint to export, with the evaluation-only overrides applied to its configuration. */
function readCheckpointMember(path: string, overrides: Partial<XceptionConfig>): Member {
  const { state, meta } = readCheckpoint(path, INPUT);
  const saved = (meta.options as { config: object }).config;
  const config = withOverrides(saved, overrides, path);
  let labels = labelNames(config.classes === 8 ? 8 : 7).slice(0, config.classes);
  try {
    // read only when a regular file: a pipe or device under that name must not hang the export
    const run = readInputFileSync(join(dirname(path), 'config.json'), 2 ** 26, 'a run configuration');
    labels = JSON.parse(run.toString('utf8')).labels ?? labels;
  } catch {
    /* the run's config.json is optional */
  }
  const history = meta.history as { epoch: number; val: { accuracy: number; meanClassAccuracy: number } }[];
  const best = meta.best ? history.find((h) => h.epoch === meta.best!.epoch) : undefined;
  const summary = {
    checkpoint: path,
    steps: meta.step,
    ...(best
      ? { epoch: best.epoch, valAccuracy: best.val.accuracy, valMeanClassAccuracy: best.val.meanClassAccuracy }
      : {}),
  };
  return { path, config, labels, weights: state.weights, summary };
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('adcorre-export')
    .description(
      'Export a training checkpoint as an ONNX model (labels, configuration and training summary in its metadata); ' +
        'several checkpoints make an ensemble that averages their probabilities (one input size and label list; ' +
        "widths and depths may differ, and the embeddings are the first one's)",
    )
    .argument(
      '<checkpoint...>',
      '.ckpt files written by adcorre-train, or exported models (.onnx; an ensemble adds all its members) ' +
        '(more than one model: an ensemble)',
    )
    .requiredOption('-o, --output <file>', 'the .onnx file to write')
    .option('--flip-average', 'the exported model averages the probabilities of each image and its mirror image')
    .option(
      '--no-flip-average',
      "the exported model classifies each image once (half the work), whatever the checkpoints' setting",
    )
    .option(
      '--shift-average <pixels>',
      'the exported model also averages over four copies of each image moved by this many pixels ' +
        'left, right, up and down (5 views, 10 with --flip-average; 0: none, whatever the checkpoints say)',
      nonNegativeInt,
    )
    .option(
      '--crop-average <pixels>',
      'the exported model averages over five crops of each image (the four corners and the centre) ' +
        'this many pixels smaller than the input, resized back to it (10 with --flip-average; 0: none; ' +
        'instead of --shift-average)',
      nonNegativeInt,
    )
    .option(
      '--prior <counts>',
      "the exported model divides its probabilities by this class prior (the training split's label counts, " +
        "comma-separated in the model's label order) to the power --prior-power, renormalised: " +
        'decisions move toward the rare classes (mean class accuracy)',
      counts,
    )
    .option('--no-prior', 'no prior correction, whatever the inputs say')
    .option('--prior-from <dataset>', "--prior counted from this dataset's training split (any adcorre-train format)")
    .option('--prior-power <t>', `the prior's exponent, in (0, ${MAX_PRIOR_POWER}] (default 1)`, finite)
    .option(
      '--member <index>',
      'with one ensemble (.onnx) as the input: export only its member <index> (from 0), e.g. to train from it ' +
        '(adcorre-train --init)',
      nonNegativeInt,
    )
    .option(
      '--float16',
      'store the convolution and dense weights as float16: half the file, inference still in float32 ' +
        '(on the rounded weights)',
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === 'commander.helpDisplayed' ? 0 : 2;
  }
  const paths = program.args;
  const {
    output,
    flipAverage,
    shiftAverage,
    cropAverage,
    prior,
    priorFrom: priorPath,
    priorPower,
    member,
    float16,
  } = program.opts<{
    output: string;
    flipAverage?: boolean;
    shiftAverage?: number;
    cropAverage?: number;
    prior?: number[] | false;
    priorFrom?: string;
    priorPower?: number;
    member?: number;
    float16?: boolean;
  }>();
  // The paths before any work, usage errors (exit 2): the output a regular file or a new one (never a device, never
  // one of the inputs) in a folder that takes files (made now: fails fast on /proc and the like), and every input a
  // regular file (a link to /dev/zero would be read forever). A link as the output is written through.
  let target: string;
  try {
    if (shiftAverage && cropAverage)
      throw new OptionError(
        '--crop-average',
        '0 with --shift-average (crop views or shift views, one at a time)',
        String(cropAverage),
      );
    if (priorPath !== undefined && prior !== undefined)
      throw new OptionError('--prior-from', `no ${prior ? '--prior' : '--no-prior'} beside it`, printable(priorPath));
    if (priorPower !== undefined) {
      if (!(priorPower > 0 && priorPower <= MAX_PRIOR_POWER))
        throw new OptionError('--prior-power', `number in (0, ${MAX_PRIOR_POWER}]`, String(priorPower));
      if (!prior && priorPath === undefined)
        throw new OptionError('--prior-power', '--prior or --prior-from beside it', String(priorPower));
    }
    if (member !== undefined && (paths.length !== 1 || !paths[0].toLowerCase().endsWith('.onnx')))
      throw new OptionError(
        '--member',
        'one ensemble (.onnx) as the only input',
        paths.length === 1 ? printable(paths[0]) : `${paths.length} inputs`,
      );
    target = checkOutputFile(output, '--output', paths);
    for (const path of paths) readInput(path, true);
  } catch (err) {
    process.stderr.write(`adcorre-export: ${describeError(err).message}\n`);
    return 2;
  }
  try {
    // evaluation-only settings may be changed at export: the weights are the same either way
    // (neither flag: the checkpoints' own setting)
    // crop views replace shift views (and the other way round) unless both flags are given;
    // the crop and the prior are checked against each model's input and classes, naming their flags
    const overrides = {
      ...(flipAverage === undefined ? {} : { flipAverage }),
      ...(shiftAverage === undefined ? {} : { shiftAverage }),
      ...(shiftAverage && cropAverage === undefined ? { cropAverage: 0 } : {}),
      ...(prior === false ? { prior: undefined, priorPower: undefined } : {}),
    };
    let members = paths.flatMap((path) => readMembers(path, overrides, member));
    const classPrior = prior
      ? prior
      : priorPath !== undefined
        ? await priorFrom(priorPath, members[0].labels)
        : undefined;
    members = members.map((m) => {
      const c = m.config;
      const max = Math.floor(c.inputSize / 4);
      if (cropAverage !== undefined && cropAverage > max)
        throw new OptionError(
          '--crop-average',
          `integer in [0, ${max}] (pixels cut from the side of ${printable(m.path)}'s ${c.inputSize}-pixel input)`,
          String(cropAverage),
        );
      if (classPrior && classPrior.length !== c.classes)
        throw new OptionError(
          '--prior',
          `${c.classes} counts (one per class: ${m.labels.map(printable).join(', ')})`,
          `${classPrior.length} (${classPrior.join(',')})`,
        );
      const setting = {
        ...(cropAverage === undefined
          ? {}
          : { cropAverage, ...(shiftAverage === undefined ? { shiftAverage: 0 } : {}) }),
        ...(classPrior ? { prior: classPrior, priorPower: priorPower ?? 1 } : {}),
      };
      return {
        ...m,
        config: validateConfig({ ...c, ...setting }, `${printable(m.path)} config with the export options`),
      };
    });
    const [first] = members;
    // members may differ in architecture (width, depth, embeddings), not in what they read and answer
    const input = (c: XceptionConfig) => `${c.inputSize}x${c.inputSize}x${c.channels} input, ${c.classes} classes`;
    const views = (c: XceptionConfig) =>
      `flipAverage ${c.flipAverage ?? false}, shiftAverage ${c.shiftAverage ?? 0}, cropAverage ${c.cropAverage ?? 0}` +
      `, prior ${c.prior ? `${c.prior.join(',')} to the power ${c.priorPower ?? 1}` : 'none'}`;
    for (const m of members.slice(1)) {
      if (input(m.config) !== input(first.config)) {
        throw new Error(
          `an ensemble's checkpoints must share one input and one set of classes: ${printable(m.path)} has ${input(m.config)}, ${printable(first.path)} ${input(first.config)}`,
        );
      }
      if (views(m.config) !== views(first.config)) {
        throw new Error(
          `an ensemble's checkpoints must share one evaluation setting: ${printable(m.path)} has ${views(m.config)}, ${printable(first.path)} ${views(first.config)} ` +
            '(choose one for all with --flip-average or --no-flip-average, --shift-average, --crop-average, --prior or --no-prior)',
        );
      }
      if (JSON.stringify(m.labels) !== JSON.stringify(first.labels)) {
        throw new Error(
          `an ensemble's checkpoints must share one label list: ${printable(m.path)} has ${printable(m.labels.join(', '))}, ${printable(first.path)} ${printable(first.labels.join(', '))}`,
        );
      }
    }
    const training = members.length === 1 ? first.summary : { ensemble: members.map((m) => m.summary) };
    writeFileAtomic(
      output, // not target: errors name the path the user gave (a link is written through all the same)
      exportOnnx(
        first.config,
        members.map((m) => ({ config: m.config, weights: m.weights })),
        { labels: first.labels, training, storage: float16 ? 'float16' : 'float32' },
      ),
      '--output',
    );
    process.stdout.write(
      `wrote ${printable(output)}${target === resolve(output) ? '' : ` (through the link: ${printable(target)})`}` +
        `${members.length > 1 ? ` (an ensemble of ${members.length} models)` : ''}\n`,
    );
    return 0;
  } catch (err) {
    // an output that became unwritable meanwhile, an input swapped for a device: usage errors under their option
    const { message, usage } = describeError(err);
    process.stderr.write(`adcorre-export: ${message}\n`);
    return usage ? 2 : 1;
  }
}
