// Classification metrics from a confusion matrix [label][prediction], and the
// training run's own records: metrics.jsonl lines and a watch on the loss.
import { appendFileSync, existsSync, statSync, truncateSync } from 'node:fs';

export interface ClassificationMetrics {
  samples: number;
  accuracy: number;
  /** mean of the per-class recalls (classes with samples only) */
  meanClassAccuracy: number;
  recall: Record<string, number | null>;
  confusion: number[][];
}

export function confusionMatrix(classes: number): number[][] {
  return Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
}

/** The class of highest probability in row `row` of probs (rows of `classes`); the first on a tie. */
export function argmaxRow(probs: ArrayLike<number>, row: number, classes: number): number {
  const base = row * classes;
  let best = 0;
  for (let c = 1; c < classes; c++) if (probs[base + c] > probs[base + best]) best = c;
  return best;
}

/**
 * Counts n predictions into confusion[label][predicted class]: row i of probs (n x classes,
 * row-major) is the prediction for labels[i]. The one argmax-to-confusion step of evaluation
 * (adcorre-eval, the trainer's validation).
 */
export function addPredictions(
  confusion: number[][],
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  n: number,
  classes: number,
): void {
  for (let i = 0; i < n; i++) confusion[labels[i]][argmaxRow(probs, i, classes)]++;
}

export function metricsFrom(confusion: number[][], labels: string[]): ClassificationMetrics {
  let total = 0,
    correct = 0,
    recallSum = 0,
    present = 0;
  const recall: Record<string, number | null> = {};
  confusion.forEach((row, y) => {
    const n = row.reduce((a, b) => a + b, 0);
    total += n;
    correct += row[y];
    recall[labels[y]] = n ? row[y] / n : null;
    if (n) {
      recallSum += row[y] / n;
      present++;
    }
  });
  return {
    samples: total,
    accuracy: total ? correct / total : 0,
    meanClassAccuracy: present ? recallSum / present : 0,
    recall,
    confusion,
  };
}

/** The metrics and the confusion as text; `extraColumns` name confusion columns past the labels' (e.g. 'no face'). */
export function formatMetrics(m: ClassificationMetrics, labels: string[], extraColumns: string[] = []): string {
  const w = Math.max(9, ...labels.map((l) => l.length));
  const lines = [
    `accuracy ${(m.accuracy * 100).toFixed(2)}%  mean class accuracy ${(m.meanClassAccuracy * 100).toFixed(2)}%  (${m.samples} samples)`,
    `${'label \\ predicted'.padEnd(w + 8)}${[...labels, ...extraColumns].map((l) => l.slice(0, 8).padStart(9)).join('')}   recall`,
  ];
  m.confusion.forEach((row, y) => {
    const r = m.recall[labels[y]];
    lines.push(
      `${labels[y].padEnd(w + 8)}${row.map((v) => String(v).padStart(9)).join('')}   ${r === null ? '-' : `${(r * 100).toFixed(1)}%`}`,
    );
  });
  return lines.join('\n');
}

/**
 * Appends one JSON line to a metrics file. A write cut short (a full disk) is undone, so the file never ends in
 * half a line that every later reader would stumble on.
 */
export function appendJsonLine(path: string, record: unknown): void {
  const before = existsSync(path) ? statSync(path).size : 0;
  try {
    appendFileSync(path, `${JSON.stringify(record)}\n`);
  } catch (err) {
    try {
      if (existsSync(path)) truncateSync(path, before);
    } catch {
      // the original error says more than this one
    }
    throw err;
  }
}

/**
 * Watches the training loss for divergence: a smoothed loss (an exponential moving average over steps, so that
 * one bad batch does not count) that has grown `factor` times above its lowest value so far. Reports each further
 * order of `factor` once. The lowest value is floored at a hundredth of the first, so that a loss near zero late in
 * training does not make small wiggles look like growth.
 */
export class DivergenceWatch {
  private smoothed: number | undefined;
  private first = 0;
  private lowest = Infinity;
  private reported = 1;

  constructor(
    readonly factor = 10,
    readonly smoothing = 0.1,
  ) {}

  /** Adds one finite step's loss; returns a description of the growth when it passes the next threshold. */
  observe(loss: number): { from: number; to: number; ratio: number } | null {
    if (!Number.isFinite(loss)) return null;
    this.smoothed = this.smoothed === undefined ? loss : this.smoothed + this.smoothing * (loss - this.smoothed);
    if (this.first === 0) this.first = Math.abs(this.smoothed);
    this.lowest = Math.min(this.lowest, this.smoothed);
    const reference = Math.max(this.lowest, this.first / 100);
    if (!(reference > 0)) return null;
    const ratio = this.smoothed / reference;
    if (ratio < this.reported * this.factor) return null;
    while (ratio >= this.reported * this.factor) this.reported *= this.factor;
    return { from: reference, to: this.smoothed, ratio };
  }
}
