// What a run leaves beside its checkpoints: the exported model of its best epoch (with what trained it), the charts
// of its history, and summary.json.
import { basename, join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { writeFileAtomic } from '../io.js';
import { augmentOf } from './augment-options.js';
import type { XceptionConfig } from '../model/config.js';
import { exportOnnx } from '../model/onnx.js';
import type { Weights } from '../model/weights.js';
import { VERSION } from '../version.js';
import { confusionSvg, lineChartSvg, writePng as writeChart } from './charts.js';
import { type RunPaths, writing } from './run-files.js';
import type { EpochRecord, ResolvedOptions, TrainSummary } from './options.js';

/** Exports `weights` as the run's model.onnx, its labels and `training` (trainingSummary) in its metadata. */
export function writeModel(
  paths: RunPaths,
  config: XceptionConfig,
  weights: Weights,
  labels: string[],
  training: Record<string, unknown>,
): void {
  const onnx = exportOnnx(config, weights, { labels, training });
  writing(paths.model, 'model', paths.last, () => writeFileAtomic(paths.model, onnx));
}

/** What trained the model of epoch `record`, as its ONNX metadata says: data, recipe, validation accuracy. */
export function trainingSummary(
  o: ResolvedOptions,
  dataset: Dataset,
  record: EpochRecord,
  step: number,
): Record<string, unknown> {
  return {
    dataset: dataset.format,
    data: dataset.path,
    ...(dataset.format === 'ferplus' ? { labels: o.labels } : {}),
    epoch: record.epoch,
    steps: step,
    valAccuracy: record.val.accuracy,
    valMeanClassAccuracy: record.val.meanClassAccuracy,
    valSamples: record.val.samples,
    loss: { lambdaCE: o.lambdaCE, wFD: o.wFD, wMD: o.wMD, wED: o.wED, adcorre: o.adcorre, attention: o.attention },
    optimizer: {
      name: o.optimizer,
      lr: o.lr,
      schedule: o.schedule,
      decay: o.decay,
      batch: o.batch,
      ...(o.optimizer === 'sgd' ? { momentum: o.momentum, nesterov: o.nesterov } : {}),
    },
    // issue #27's recipe tools and #28's degradations, where on
    ...(o.augment ? { augment: augmentOf(o) } : {}),
    ...(o.mixup > 0 || o.cutmix > 0 ? { mix: { mixup: o.mixup, cutmix: o.cutmix, prob: o.mixProb } } : {}),
    ...(o.ema > 0 ? { ema: { decay: o.ema, warmup: o.emaWarmup } } : {}),
    ...(o.teacher
      ? { teacher: { model: basename(o.teacher), temperature: o.teacherTemperature, weight: o.teacherWeight } }
      : {}),
    seed: o.seed,
    trainedWith: `adcorre-native ${VERSION}`,
  };
}

/** The charts of the run's history: losses, accuracies, and the best epoch's validation confusion. */
export async function writeCharts(out: string, history: EpochRecord[], labels: string[]): Promise<void> {
  const writePng = (path: string, svg: string) =>
    writing(path, 'chart', join(out, 'last.ckpt'), () => writeChart(path, svg));
  await writePng(
    join(out, 'loss.png'),
    lineChartSvg('training loss', 'epoch', [
      { name: 'total', values: history.map((h) => h.train.loss) },
      { name: 'CE', values: history.map((h) => h.train.ce) },
      { name: 'FD', values: history.map((h) => h.train.fd) },
      { name: 'MD', values: history.map((h) => h.train.md) },
      { name: 'ED', values: history.map((h) => h.train.ed) },
    ]),
  );
  await writePng(
    join(out, 'accuracy.png'),
    lineChartSvg('accuracy', 'epoch', [
      { name: 'train', values: history.map((h) => h.train.accuracy) },
      { name: 'val', values: history.map((h) => h.val.accuracy) },
      { name: 'val mean class', values: history.map((h) => h.val.meanClassAccuracy) },
    ]),
  );
  const bestRecord = history.reduce((a, b) => (b.val.accuracy > a.val.accuracy ? b : a));
  await writePng(
    join(out, 'confusion.png'),
    confusionSvg(`validation confusion (epoch ${bestRecord.epoch})`, labels, bestRecord.val.confusion),
  );
}

/** Writes config.json: the options, the model's configuration and labels, and what --init could not supply. */
export function writeRunConfig(
  paths: RunPaths,
  o: ResolvedOptions,
  config: XceptionConfig,
  labels: string[],
  initFresh: string[] | undefined,
): void {
  writing(paths.config, 'run configuration', paths.last, () =>
    writeFileAtomic(
      paths.config,
      JSON.stringify({ options: o, config, labels, ...(initFresh ? { initFresh } : {}) }, null, 2),
    ),
  );
}

/** Writes summary.json. */
export function writeSummary(paths: RunPaths, summary: TrainSummary): void {
  writing(paths.summary, 'summary', paths.last, () => writeFileAtomic(paths.summary, JSON.stringify(summary, null, 2)));
}
