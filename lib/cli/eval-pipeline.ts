// adcorre-eval --pipeline: a folder of labelled photos (class-named subfolders,
// or a CSV manifest) through the whole prediction pipeline, as adcorre-predict
// runs it: decode, detect, align, classify, the largest face per photo.
import { basename } from 'node:path';
import { SingleBar } from 'cli-progress';
import { canonicalSplit, type Dataset, getSplit, type Split } from '../data/dataset.js';
import { openDataset } from '../data/open.js';
import { BOX_MARGIN } from '../infer/defaults.js';
import { FER, type FaceResult } from '../infer/fer.js';
import { EXPRESSIONS } from '../data/labels.js';
import { writeFileAtomic } from '../io.js';
import { evaluatePipeline, type LabelledPhoto } from '../infer/pipeline.js';
import { confusionSvg, writePng } from '../train/charts.js';
import { formatMetrics } from '../train/metrics.js';
import { printable } from '../terminal.js';
import { OptionError } from '../validate.js';
import { PredictionRows } from './predictions.js';

export interface PipelineCliOptions {
  model: string;
  defaultModel: boolean;
  data: string;
  dataset: string;
  split?: string;
  device: string;
  json?: boolean;
  confusion?: string;
  predictions?: string;
  align: boolean;
  margin?: number;
  threshold?: number;
}

/** Runs the evaluation and prints it; throws what the caller reports (usage errors as OptionError). */
export async function evalPipeline(o: PipelineCliOptions, say: (message: string) => void): Promise<void> {
  const dataset = await openDataset(o.data, { format: o.dataset as never, classes: 8 });
  const { name, split } = evaluationSplit(dataset, o.split);
  const photos: LabelledPhoto[] = [];
  for (const s of split.samples) {
    if (typeof s.source !== 'string')
      throw new OptionError(
        '--data',
        'photos as image files (class folders or a CSV manifest of paths) for --pipeline',
        printable(o.data),
        'its images come inside a CSV as pixels: evaluate it without --pipeline',
      );
    photos.push({ path: s.source, label: s.label });
  }
  const fer = await FER.load({ model: o.model, device: o.device as never });
  const labels = fer.metadata.labels;
  const rows = o.predictions ? new PredictionRows(labels, name) : null;
  const bar =
    process.stderr.isTTY && !o.json
      ? new SingleBar({
          format: 'eval --pipeline [{bar}] {value}/{total} photos | {eta_formatted} left',
          stream: process.stderr,
          clearOnComplete: true,
        })
      : null;
  bar?.start(photos.length, 0);
  let metrics;
  try {
    metrics = await evaluatePipeline(fer, photos, {
      // a margin crops the detector's box (as adcorre-predict): FER aligns whenever align is true
      align: o.align && o.margin === undefined,
      ...(o.margin !== undefined ? { margin: o.margin } : {}),
      ...(o.threshold !== undefined ? { threshold: o.threshold } : {}),
      onProgress: (done) => bar?.update(done),
      ...(rows
        ? {
            onPhoto: (photo: LabelledPhoto, face: FaceResult | null) =>
              rows.add(
                photo.path,
                EXPRESSIONS[photo.label],
                face ? { probs: labels.map((l) => face.probabilities[l]), row: 0 } : 'no face',
              ),
          }
        : {}),
    });
  } finally {
    bar?.stop();
    await fer.close();
  }
  if (rows && o.predictions) writeFileAtomic(o.predictions, rows.toString(), '--predictions');
  const framing = o.margin !== undefined ? `box x ${o.margin}` : o.align ? 'aligned' : `box x ${BOX_MARGIN}`;
  for (const f of metrics.failed) say(`skipped ${printable(f.reason)}`);
  if (o.confusion) {
    const C = labels.length;
    const title =
      `${basename(o.model)} on ${basename(dataset.path)} (whole pipeline, ${framing}): accuracy ` +
      `${(metrics.accuracy * 100).toFixed(2)} %, mean class ${(metrics.meanClassAccuracy * 100).toFixed(2)} %` +
      (metrics.noFace ? `, ${metrics.noFace} without a face` : '');
    await writePng(
      o.confusion,
      confusionSvg(
        title,
        labels,
        metrics.confusion.map((row) => row.slice(0, C)),
      ),
      '--confusion',
    );
  }
  if (o.json) {
    const { failed, ...rest } = metrics;
    process.stdout.write(
      `${JSON.stringify(
        {
          model: o.model,
          defaultModel: o.defaultModel,
          pipeline: true,
          framing,
          split: name,
          ...rest,
          confusionColumns: [...labels, 'no face'],
          failed,
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  process.stdout.write(
    `${printable(o.model)}${o.defaultModel ? ' (the default model)' : ''} on ${printable(dataset.path)} ` +
      `(${printable(name)}, whole pipeline: detect, ${framing} crop, classify; the largest face per photo)\n` +
      `faces found in ${metrics.facesFound} of ${metrics.samples} photos` +
      (metrics.failed.length ? `; ${metrics.failed.length} photos could not be read` : '') +
      '\n' +
      `${formatMetrics(metrics, labels, ['no face'])}\n`,
  );
}

/**
 * The split adcorre-eval evaluates: the one named by --split, else val, else test, else all, else the
 * first; an unknown name is a usage error listing the dataset's splits.
 */
export function evaluationSplit(dataset: Dataset, requested: string | undefined): { name: string; split: Split } {
  if (requested !== undefined && !dataset.splits.has(canonicalSplit(requested)))
    throw new OptionError(
      '--split',
      `one of the dataset's splits (${[...dataset.splits.keys()].join(', ')})`,
      `'${printable(requested)}'`,
    );
  const name = requested ?? ['val', 'test', 'all'].find((s) => dataset.splits.has(s)) ?? [...dataset.splits.keys()][0];
  return { name, split: getSplit(dataset, name) };
}
