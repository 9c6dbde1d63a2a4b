// The whole-pipeline evaluation (adcorre-eval --pipeline): labelled photos
// run through exactly what FER.predict runs for a user (decode, detect,
// align, classify), the largest face of each photo taken as its answer.
// A photo where no face is found counts as wrong, in a column of its own,
// so that accuracy is over every photo and not only those the detector saw.
import { EXPRESSIONS } from '../data/labels.js';
import { confusionMatrix, metricsFrom, type ClassificationMetrics } from '../train/metrics.js';
import type { FaceResult, FER, PredictOptions } from './fer.js';
import { largestBy } from './align.js';
import { PREDICTION_DEFAULTS } from './defaults.js';
import { InputError } from './image.js';

/** One labelled photo: its file and its class in the canonical label space (lib/data/labels.ts). */
export interface LabelledPhoto {
  path: string;
  label: number;
}

export interface PipelineOptions extends Pick<PredictOptions, 'align' | 'margin' | 'threshold'> {
  /** photos decoded and detected together, as adcorre-predict --batch (default PREDICTION_DEFAULTS.imageBatch, 16) */
  batch?: number;
  /** called after each batch with the photos done so far */
  onProgress?: (done: number) => void;
  /** called for each photo read, in order, with its largest face (the answer) or null when none was found */
  onPhoto?: (photo: LabelledPhoto, face: FaceResult | null) => void;
}

export interface PipelineMetrics extends ClassificationMetrics {
  /** photos where at least one face was found */
  facesFound: number;
  /** photos in which no face was found (counted wrong: the confusion's last column) */
  noFace: number;
  /** photos that could not be read, each with its reason (left out of the metrics) */
  failed: { path: string; reason: string }[];
}

/**
 * The model's class for each canonical label of the photos, by name: a photo's label must be one the
 * model answers (a 7-class model has no contempt).
 */
function modelClassOf(modelLabels: readonly string[], photos: LabelledPhoto[]): Map<number, number> {
  const map = new Map<number, number>();
  for (const { label } of photos) {
    if (map.has(label)) continue;
    const index = modelLabels.indexOf(EXPRESSIONS[label]);
    if (index < 0)
      throw new RangeError(
        `Expected photos labelled with the model's classes (${modelLabels.join(', ')}) but received '${EXPRESSIONS[label]}'`,
      );
    map.set(label, index);
  }
  return map;
}

/** Accuracy, mean class accuracy, per-class recall and the confusion (plus a no-face column) over the photos. */
export async function evaluatePipeline(
  fer: FER,
  photos: LabelledPhoto[],
  options: PipelineOptions = {},
): Promise<PipelineMetrics> {
  const labels = fer.metadata.labels;
  const classOf = modelClassOf(labels, photos);
  const C = labels.length;
  // rows: true class; columns: predicted class, then 'no face'
  const confusion = confusionMatrix(C).map((row) => [...row, 0]);
  const failed: PipelineMetrics['failed'] = [];
  let facesFound = 0;
  const batch = options.batch ?? PREDICTION_DEFAULTS.imageBatch;
  const predict: PredictOptions = { detect: true, top: 1 };
  if (options.align !== undefined) predict.align = options.align;
  if (options.margin !== undefined) predict.margin = options.margin;
  if (options.threshold !== undefined) predict.threshold = options.threshold;
  for (let i = 0; i < photos.length; i += batch) {
    const part = photos.slice(i, i + batch);
    const results = await fer.predictBatch(
      part.map((p) => p.path),
      predict,
    );
    results.forEach((r, j) => {
      if (r instanceof InputError) {
        failed.push({ path: part[j].path, reason: r.message });
        return;
      }
      const truth = classOf.get(part[j].label) as number;
      const face = largestBy(r.faces, (f) => f.box);
      options.onPhoto?.(part[j], face ?? null);
      if (!face) {
        confusion[truth][C]++;
        return;
      }
      facesFound++;
      confusion[truth][labels.indexOf(face.label)]++;
    });
    options.onProgress?.(Math.min(photos.length, i + batch));
  }
  const metrics = metricsFrom(confusion, labels);
  return { ...metrics, facesFound, noFace: metrics.samples - facesFound, failed };
}
