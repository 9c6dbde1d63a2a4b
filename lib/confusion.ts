// The adaptive attention map's input: per-class recall over the last H
// (label, prediction) pairs seen in training, as the paper keeps it.
import { invalidRange, invalidType, isNumericArray, positiveInteger } from './validate.js';

export interface ConfusionTrackerState {
  numClasses: number;
  history: number;
  /** oldest first */
  labels: number[];
  predictions: number[];
}

export class ConfusionTracker {
  readonly numClasses: number;
  readonly history: number;
  private readonly labels: Int32Array;
  private readonly predictions: Int32Array;
  private next = 0; // ring position of the next write
  private count = 0;
  private readonly matrix: Int32Array; // [label][prediction] counts over the window

  constructor(numClasses: number, options: { history?: number } = {}) {
    this.numClasses = positiveInteger('numClasses', numClasses);
    this.history = positiveInteger('options.history', options.history ?? 1000);
    this.labels = new Int32Array(this.history);
    this.predictions = new Int32Array(this.history);
    this.matrix = new Int32Array(this.numClasses * this.numClasses);
  }

  /** Pairs in the window (at most `history`). */
  get size(): number {
    return this.count;
  }

  private checkClass(name: string, value: unknown): number {
    if (typeof value !== 'number') throw invalidType(name, `integer in [0, ${this.numClasses})`, value);
    if (!Number.isInteger(value) || value < 0 || value >= this.numClasses) {
      throw invalidRange(name, `integer in [0, ${this.numClasses})`, String(value));
    }
    return value;
  }

  /** Records one (label, prediction) pair, forgetting the oldest past `history`. */
  add(label: number, prediction: number): void {
    const y = this.checkClass('label', label);
    const p = this.checkClass('prediction', prediction);
    const C = this.numClasses;
    if (this.count === this.history) {
      this.matrix[this.labels[this.next] * C + this.predictions[this.next]]--;
    } else {
      this.count++;
    }
    this.labels[this.next] = y;
    this.predictions[this.next] = p;
    this.matrix[y * C + p]++;
    this.next = (this.next + 1) % this.history;
  }

  /** Records a batch; both arrays the same length. */
  update(labels: ArrayLike<number>, predictions: ArrayLike<number>): void {
    if (!isNumericArray(labels)) throw invalidType('labels', 'array of integers', labels);
    if (!isNumericArray(predictions)) throw invalidType('predictions', 'array of integers', predictions);
    if (labels.length !== predictions.length) {
      throw invalidRange('predictions', `length ${labels.length} (the labels' length)`, `length ${predictions.length}`);
    }
    for (let i = 0; i < labels.length; i++) this.add(labels[i], predictions[i]);
  }

  /** Per-class recall over the window; 0 for a class with no history. Use as classAccuracy. */
  recall(): Float32Array {
    const C = this.numClasses;
    const out = new Float32Array(C);
    for (let y = 0; y < C; y++) {
      let total = 0;
      for (let p = 0; p < C; p++) total += this.matrix[y * C + p];
      out[y] = total === 0 ? 0 : this.matrix[y * C + y] / total;
    }
    return out;
  }

  /** Counts over the window, [label][prediction]. */
  confusion(): number[][] {
    const C = this.numClasses;
    return Array.from({ length: C }, (_, y) => Array.from(this.matrix.subarray(y * C, (y + 1) * C)));
  }

  reset(): void {
    this.next = 0;
    this.count = 0;
    this.matrix.fill(0);
  }

  /** The window, oldest first, for checkpoints. */
  toJSON(): ConfusionTrackerState {
    const labels: number[] = [];
    const predictions: number[] = [];
    const start = this.count === this.history ? this.next : 0;
    for (let i = 0; i < this.count; i++) {
      const at = (start + i) % this.history;
      labels.push(this.labels[at]);
      predictions.push(this.predictions[at]);
    }
    return { numClasses: this.numClasses, history: this.history, labels, predictions };
  }

  static fromJSON(state: ConfusionTrackerState): ConfusionTracker {
    const tracker = new ConfusionTracker(state.numClasses, { history: state.history });
    tracker.update(state.labels, state.predictions);
    return tracker;
  }
}
