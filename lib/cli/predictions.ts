// adcorre-eval --predictions <file.csv>: a row per image with its label, the model's answer and the model's
// probabilities, for looking at what the model gets wrong, or as a CSV manifest for training whose p_<class>
// columns are soft targets (a teacher's probabilities computed once: lib/data/readers/folder.ts).
import { argmaxRow } from '../train/metrics.js';

/** A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export class PredictionRows {
  private readonly lines: string[];

  /**
   * `labels`: the model's classes, in its output order (a column p_<label> each); `split`: the split evaluated,
   * written on every row (the columns path, label and split make the file a CSV manifest)
   */
  constructor(
    private readonly labels: readonly string[],
    private readonly split: string,
  ) {
    this.lines = [['path', 'label', 'split', 'predicted', ...labels.map((l) => `p_${l}`)].map(csvField).join(',')];
  }

  /**
   * One image: row `row` of `probs` (rows in the model's class order; the answer is its argmax), or no
   * probabilities and the answer given (`'no face'`).
   */
  add(image: string, label: string, answer: { probs: ArrayLike<number>; row: number } | string): void {
    const C = this.labels.length;
    const fields =
      typeof answer === 'string'
        ? [answer, ...this.labels.map(() => '')]
        : [
            this.labels[argmaxRow(answer.probs, answer.row, C)],
            ...this.labels.map((_, c) => Number(answer.probs[answer.row * C + c]).toFixed(6)),
          ];
    this.lines.push([image, label, this.split, ...fields].map(csvField).join(','));
  }

  get count(): number {
    return this.lines.length - 1;
  }

  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}
