// adcorre-eval [--model model.onnx] --data <path>: accuracy, mean class
// accuracy, per-class recall and confusion matrix through ONNX Runtime, the
// path users' predictions take. Without --model, the bundled default model.
// Exit status 0, 1 when the dataset cannot be read or evaluated, 2 for usage
// errors (a bad flag, a model that cannot be used, an unusable output path).
import { basename } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { DATASET_FORMATS } from '../data/dataset.js';
import { type Batch, DataLoader } from '../data/loader.js';
import type { SampleRef, Split } from '../data/dataset.js';
import { detectFormat, openDataset } from '../data/open.js';
import { DataError, SkipReport } from '../data/skips.js';
import { checkCsvPath, checkDatasetPath, printableSummary } from '../data/readers/files.js';
import { checkProbabilities, ModelError } from '../infer/model-check.js';
import { printable } from '../terminal.js';
import { openModel, readModel, resolveModel } from '../infer/fer.js';
import { deviceChoices } from '../device.js';
import { type InferDevice, ort } from '../infer/session.js';
import { checkOutputFile, writeFileAtomic } from '../io.js';
import { describeMemory, formatBytes, inferenceMemory, memoryLimit } from '../memory.js';
import type { ModelMetadata } from '../model/onnx-metadata.js';
import { confusionSvg, writePng } from '../train/charts.js';
import { formatMetrics } from '../train/metrics.js';
import { FERPLUS_PROTOCOLS, type FerPlusProtocol } from '../data/readers/ferplus.js';
import { protocolFor, ProtocolTally } from './eval-protocol.js';
import { OptionError } from '../validate.js';
import { cropMargin, describeError, positiveInt } from './args.js';
import { evalPipeline, evaluationSplit } from './eval-pipeline.js';
import { PredictionRows } from './predictions.js';

/**
 * The data loader adcorre-eval reads a split with: in order, no augmentation, the model's input size
 * and channels (decoded by lib/image.ts and resampled by lib/pixels.ts, as prediction does).
 */
export function evaluationLoader(split: Split, meta: ModelMetadata, batch: number): DataLoader {
  return new DataLoader(split, { batchSize: batch, size: meta.input.size, channels: meta.input.channels });
}

/**
 * Each batch of the loader through the model on ONNX Runtime, with its probabilities (count x classes).
 * A model that answers NaN is a ModelError naming `model` (NaN would count as class 0).
 */
export async function* classifyBatches(
  session: ort.InferenceSession,
  meta: ModelMetadata,
  loader: DataLoader,
  model: string,
): AsyncGenerator<{ batch: Batch; probs: Float32Array }> {
  const { channels, size } = meta.input;
  for await (const batch of loader.epoch(0)) {
    const outputs = await session.run({
      image: new ort.Tensor('float32', batch.images, [batch.count, channels, size, size]),
    });
    const probs = outputs.probs.data as Float32Array;
    checkProbabilities(probs, batch.count, meta.labels, model);
    yield { batch, probs };
  }
}

/** Where a sample's image is: its file, or for images inside a file (FER-2013's CSV) the file and line. */
const imageOf = (s: SampleRef): string => (typeof s.source === 'string' ? s.source : s.where);

// every message through printable(): paths, labels and decoder messages may hold escape sequences or newlines
const say = (message: string) => process.stderr.write(`adcorre-eval: ${printable(message)}\n`);

/**
 * --labels distribution writes FER+'s vote distributions into --predictions: refused as a usage error, naming the
 * option, without --predictions, with --pipeline (photos have no votes) or on a dataset that is not FER+. A dataset
 * that cannot be read is left to openDataset, which reports it as such (exit 1).
 */
function checkLabelsOption(o: {
  labels: string;
  predictions?: string;
  pipeline?: boolean;
  data: string;
  dataset: string;
}) {
  if (o.labels !== 'distribution') return;
  const refuse = (expected: string, detail = '') => {
    throw new OptionError('--labels', expected, "'distribution'", detail);
  };
  if (!o.predictions)
    refuse("'majority', or --predictions to write the votes into (accuracy is on the majority label either way)");
  if (o.pipeline) refuse("'majority' with --pipeline (photos have no votes)");
  let format = o.dataset;
  try {
    if (format === 'auto') format = detectFormat(o.data);
  } catch (err) {
    if (err instanceof DataError) return;
    throw err;
  }
  if (format !== 'ferplus')
    refuse("'majority' for a dataset without vote counts (only FER+ has them)", `${printable(o.data)} is ${format}`);
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('adcorre-eval')
    .description('Evaluate an exported model on a dataset split')
    .option(
      '--model <file|name>',
      "ONNX model exported by adcorre-native, or a bundled model: 'fer2013' (default) or 'ferplus' (8 classes)",
    )
    .requiredOption('--data <path>', 'dataset folder or CSV')
    .addOption(new Option('--dataset <format>', 'dataset format').choices(['auto', ...DATASET_FORMATS]).default('auto'))
    .option('--split <name>', 'split to evaluate (default: val, else test, else all)')
    .option('--fer2013 <csv>', 'FER+: the FER-2013 CSV holding the pixels')
    .addOption(
      new Option(
        '--labels <mode>',
        "FER+: 'distribution' also writes each image's vote distribution into --predictions (target_<class> columns, for adcorre-data targets); accuracy is on the majority label either way",
      )
        .choices(['majority', 'distribution'])
        .default('majority'),
    )
    .addOption(
      new Option(
        '--ferplus-protocol <p>',
        "FER+: the images scored: 'reference', FERPlus's code (single votes zeroed, kept where the top emotion has more than half of the rest; what published FER+ accuracies use), or 'plain', the most voted emotion alone; --json prints both",
      )
        .choices([...FERPLUS_PROTOCOLS])
        .default('reference'),
    )
    .addOption(
      new Option('--device <device>', 'execution provider').choices([...deviceChoices('inference')]).default('auto'),
    )
    .option('--batch <n>', 'batch size', positiveInt, 64)
    .option('--json', 'machine-readable output')
    .option('--confusion <file.png>', 'also draw the confusion matrix into this PNG file')
    .option(
      '--predictions <file.csv>',
      "also write a row per image: its label, split, the model's answer and probabilities (photos without a face: 'no face'); with --labels distribution, also its votes (target_<class>)",
    )
    .option(
      '--pipeline',
      'labelled photos through the whole pipeline, as adcorre-predict runs it: detect, align, classify (the largest face per photo)',
    )
    .option('--no-align', "with --pipeline: crop the detector's box instead of aligning each face")
    .option('--margin <m>', 'with --pipeline: crop side per detected box side, without alignment', cropMargin)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    return (err as { code?: string }).code === 'commander.helpDisplayed' ? 0 : 2;
  }
  const o = program.opts<{
    model?: string;
    data: string;
    dataset: string;
    split?: string;
    fer2013?: string;
    labels: 'majority' | 'distribution';
    ferplusProtocol: FerPlusProtocol;
    device: string;
    batch: number;
    json?: boolean;
    confusion?: string;
    predictions?: string;
    pipeline?: boolean;
    align: boolean;
    margin?: number;
  }>();
  // the model and the output path first: usage errors (exit 2) before the dataset is read
  const model = resolveModel(o.model).path;
  let meta: ModelMetadata;
  let session: ort.InferenceSession, provider: string;
  try {
    // a regular file or a new one (never a device, a folder, or the model or data read), in a folder that takes files
    const inputs = [model, o.data, ...(o.fer2013 ? [o.fer2013] : [])];
    const confusionTarget = o.confusion ? checkOutputFile(o.confusion, '--confusion', inputs) : undefined;
    if (o.predictions && checkOutputFile(o.predictions, '--predictions', inputs) === confusionTarget)
      throw new OptionError('--predictions', 'a file other than --confusion', printable(o.predictions));
    // regular files only: a device or a named pipe would be read forever or waited on (usage errors, exit 2)
    const { bytes } = readModel(o.model);
    checkDatasetPath(o.data, '--data');
    checkLabelsOption(o);
    if (o.fer2013 !== undefined) checkCsvPath(o.fer2013, '--fer2013');
    if (o.model === undefined) say(`no --model given: evaluating the default model ${model}`);
    if (o.pipeline && program.getOptionValueSource('ferplusProtocol') === 'cli')
      throw new OptionError(
        '--ferplus-protocol',
        'a FER+ dataset without --pipeline (photos have no votes)',
        o.ferplusProtocol,
      );
    if (o.pipeline) {
      try {
        await evalPipeline({ ...o, model, defaultModel: o.model === undefined }, say);
        return 0;
      } catch (err) {
        const { message, usage } = describeError(err);
        say(message);
        return usage ? 2 : 1;
      }
    }
    // the labels are printed and key the metrics: openModel checks them (distinct and printable)
    ({ metadata: meta, session, provider } = await openModel(bytes, model, o.device as InferDevice));
  } catch (err) {
    say(describeError(err).message);
    return 2;
  }
  try {
    const dataset = await openDataset(o.data, {
      format: o.dataset as never,
      classes: meta.labels.length === 8 ? 8 : 7,
      fer2013: o.fer2013,
      labels: o.labels,
    });
    const { name, split } = evaluationSplit(dataset, o.split);
    // a batch is never larger than the split; refuse one that ONNX Runtime could not hold
    const batch = Math.min(o.batch, split.samples.length);
    const members = meta.memberConfigs ?? Array.from({ length: meta.members ?? 1 }, () => meta.config);
    const need = inferenceMemory(meta.config, batch, members);
    const usable = memoryLimit() * 0.8;
    if (need.total > usable)
      throw new OptionError(
        '--batch',
        `a batch size that fits in memory (at most about ${Math.max(1, Math.floor((usable - need.fixed) / need.perImage))} images for this model here)`,
        String(o.batch),
        `batches of ${batch} may need up to ${formatBytes(need.total)} (${formatBytes(need.perImage)} per image); ${describeMemory()}`,
      );
    const loader = evaluationLoader(split, meta, o.batch);
    const tally = new ProtocolTally(protocolFor(dataset, o.ferplusProtocol), meta.labels);
    if (!tally.protocol && program.getOptionValueSource('ferplusProtocol') === 'cli')
      throw new OptionError(
        '--ferplus-protocol',
        'a FER+ dataset (only FER+ has votes)',
        o.ferplusProtocol,
        `${printable(dataset.path)} is ${dataset.format}`,
      );
    // the dataset's own soft targets (FER+ vote distributions), written beside the answers when it has them
    const targets = split.samples.some((s) => s.target) ? dataset.labelNames : undefined;
    const rows = o.predictions ? new PredictionRows(meta.labels, name, targets) : null;
    // progress on a terminal (stderr, so that --json output stays clean)
    const bar = process.stderr.isTTY
      ? new SingleBar({
          format: 'eval [{bar}] {value}/{total} images | {eta_formatted} left',
          stream: process.stderr,
          clearOnComplete: true,
        })
      : null;
    bar?.start(split.samples.length, 0);
    let seen = 0;
    try {
      for await (const { batch: b, probs } of classifyBatches(session, meta, loader, model)) {
        bar?.update((seen += b.count));
        for (let k = 0; k < b.count; k++) {
          const sample = split.samples[b.indices[k]];
          tally.add(sample, b.labels[k], probs, k);
          rows?.add(imageOf(sample), dataset.labelNames[b.labels[k]], { probs, row: k }, sample.target);
        }
      }
    } finally {
      bar?.stop();
      await loader.close();
    }
    const metrics = tally.reported();
    // what reading the dataset skipped (bad rows, links, labels), then what decoding this split did
    const skipped = new SkipReport();
    skipped.merge(dataset.report.summary());
    skipped.merge(loader.report.summary());
    const shown = new SkipReport(); // the same, with file names through printable(), for the terminal
    shown.merge(printableSummary(skipped.summary()));
    if (rows && o.predictions) writeFileAtomic(o.predictions, rows.toString(), '--predictions');
    if (o.confusion) {
      const title = `${basename(model)} on ${name}: accuracy ${(metrics.accuracy * 100).toFixed(2)} %, mean class ${(metrics.meanClassAccuracy * 100).toFixed(2)} %`;
      await writePng(o.confusion, confusionSvg(title, meta.labels, metrics.confusion), '--confusion');
    }
    if (o.json)
      process.stdout.write(
        `${JSON.stringify({ model, defaultModel: o.model === undefined, provider, split: name, ...metrics, ...(tally.protocol ? { protocol: tally.protocol, ferplus: tally.both() } : {}), skipped: skipped.summary() }, null, 2)}\n`,
      );
    else
      process.stdout.write(
        `${printable(model)}${o.model === undefined ? ' (the default model)' : ''} on ${printable(dataset.path)} (${printable(name)}, ${provider})\n` +
          `${formatMetrics(metrics, meta.labels)}\n` +
          tally.describe() +
          (skipped.total || Object.keys(skipped.summary().excluded).length ? `${shown.format()}\n` : ''),
      );
    return 0;
  } catch (err) {
    const { message, usage } = describeError(err);
    say(message);
    return usage || err instanceof ModelError ? 2 : 1; // a model that answers NaN cannot be used
  }
}
