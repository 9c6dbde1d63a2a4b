// adcorre-eval --predictions <file.csv>: a row per image with its label, the model's answer and the model's
// probabilities, for looking at what the model gets wrong, or as a CSV manifest for training whose p_<class>
// columns are soft targets (a teacher's probabilities computed once: lib/data/readers/folder.ts). A dataset with soft
// targets of its own (FER+ vote distributions, adcorre-eval --labels distribution) adds them as target_<class>
// columns, which adcorre-data targets blends with the teacher's instead of the one-hot label.
import { csvField } from '../data/csv.js';
import { argmaxRow } from '../train/metrics.js';

export { csvField };

export class PredictionRows {
  private readonly lines: string[];

  /**
   * `labels`: the model's classes, in its output order (a column p_<label> each); `split`: the split evaluated,
   * written on every row (the columns path, label and split make the file a CSV manifest); `targetLabels`: the
   * dataset's classes in the order of its samples' soft targets (a column target_<label> each), when it has them
   */
  constructor(
    private readonly labels: readonly string[],
    private readonly split: string,
    private readonly targetLabels?: readonly string[],
  ) {
    const targetColumns = (targetLabels ?? []).map((l) => `target_${l}`);
    this.lines = [['path', 'label', 'split', 'predicted', ...labels.map((l) => `p_${l}`), ...targetColumns]].map(
      (fields) => fields.map(csvField).join(','),
    );
  }

  /**
   * One image: row `row` of `probs` (rows in the model's class order; the answer is its argmax), or no
   * probabilities and the answer given (`'no face'`); `target`: the image's soft target in `targetLabels`' order.
   */
  add(
    image: string,
    label: string,
    answer: { probs: ArrayLike<number>; row: number } | string,
    target?: ArrayLike<number>,
  ): void {
    const C = this.labels.length;
    const fields =
      typeof answer === 'string'
        ? [answer, ...this.labels.map(() => '')]
        : [
            this.labels[argmaxRow(answer.probs, answer.row, C)],
            ...this.labels.map((_, c) => Number(answer.probs[answer.row * C + c]).toFixed(6)),
          ];
    const targets = (this.targetLabels ?? []).map((_, c) => (target ? Number(target[c]).toFixed(6) : ''));
    this.lines.push([image, label, this.split, ...fields, ...targets].map(csvField).join(','));
  }

  get count(): number {
    return this.lines.length - 1;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
