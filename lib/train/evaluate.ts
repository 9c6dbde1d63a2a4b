// The validation pass at each epoch's end: the model's most probable class for every image of the split, counted into
// a confusion matrix, with the metrics from it. With a weight average (--ema) the average is the model evaluated.
import type { DataLoader } from '../data/loader.js';
import type { Engine } from '../engine/engine.js';
import type { Weights } from '../model/weights.js';
import { addPredictions, type ClassificationMetrics, confusionMatrix, metricsFrom } from './metrics.js';

/** The metrics of the engine's current weights on every batch of `loader` (unaugmented). */
export async function evaluate(
  engine: Engine,
  loader: DataLoader,
  classes: number,
  labels: string[],
): Promise<ClassificationMetrics> {
  const confusion = confusionMatrix(classes);
  for await (const b of loader.epoch(0, { augment: false })) {
    const { probs } = engine.predict(b.images, b.count);
    addPredictions(confusion, probs, b.labels, b.count, classes);
  }
  return metricsFrom(confusion, labels);
}

/**
 * The metrics of `weights` (the weight average) when given, else of the engine's own; the engine's training weights
 * are put back after, also when the evaluation fails.
 */
export async function evaluateWeights(
  engine: Engine,
  weights: Weights | undefined,
  loader: DataLoader,
  classes: number,
  labels: string[],
): Promise<ClassificationMetrics> {
  if (!weights) return evaluate(engine, loader, classes, labels);
  const raw = engine.getWeights();
  engine.setWeights(weights);
  try {
    return await evaluate(engine, loader, classes, labels);
  } finally {
    engine.setWeights(raw);
  }
}
