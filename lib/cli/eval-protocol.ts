// FER+'s two protocols scored in one pass (adcorre-eval): the plain majority's images, and the subset FERPlus's
// reference code keeps (SampleRef.ferPlusReference, lib/data/readers/ferplus.ts), which published FER+ accuracies
// use. Other datasets have one set of images and one score.
import type { Dataset, SampleRef } from '../data/dataset.js';
import type { FerPlusProtocol } from '../data/readers/ferplus.js';
import { argmaxRow, type ClassificationMetrics, confusionMatrix, metricsFrom } from '../train/metrics.js';

/** One protocol's headline numbers, as `adcorre-eval --json` prints them beside the reported one. */
export interface ProtocolScore {
  samples: number;
  accuracy: number;
  meanClassAccuracy: number;
}

export class ProtocolTally {
  private readonly plain: number[][];
  private readonly reference: number[][];

  /** `protocol` is the one reported; null for a dataset without FER+ votes (one score). */
  constructor(
    readonly protocol: FerPlusProtocol | null,
    private readonly labels: string[],
  ) {
    this.plain = confusionMatrix(labels.length);
    this.reference = confusionMatrix(labels.length);
  }

  /** Counts row `row` of probs (the model's answer) for a sample of label `label`. */
  add(sample: SampleRef, label: number, probs: ArrayLike<number>, row: number): void {
    const predicted = argmaxRow(probs, row, this.labels.length);
    this.plain[label][predicted]++;
    if (sample.ferPlusReference) this.reference[label][predicted]++;
  }

  /** The reported protocol's metrics (the plain set's where there is no protocol). */
  reported(): ClassificationMetrics {
    return metricsFrom(this.protocol === 'reference' ? this.reference : this.plain, this.labels);
  }

  /** Both protocols' scores, for FER+; undefined otherwise. */
  both(): Record<FerPlusProtocol, ProtocolScore> | undefined {
    if (!this.protocol) return undefined;
    const score = (confusion: number[][]): ProtocolScore => {
      const { samples, accuracy, meanClassAccuracy } = metricsFrom(confusion, this.labels);
      return { samples, accuracy, meanClassAccuracy };
    };
    return { reference: score(this.reference), plain: score(this.plain) };
  }

  /** A line under the text report naming the protocol reported and the other one's numbers. */
  describe(): string {
    const both = this.both();
    if (!both || !this.protocol) return '';
    const other: FerPlusProtocol = this.protocol === 'reference' ? 'plain' : 'reference';
    const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
    const s = both[other];
    return (
      `FER+ protocol: ${this.protocol} (${this.protocol === 'reference' ? "FERPlus's code: single votes zeroed, a top above half" : 'the most voted emotion alone'}); ` +
      `${other}: accuracy ${pct(s.accuracy)}  mean class accuracy ${pct(s.meanClassAccuracy)}  (${s.samples} samples)\n`
    );
  }
}

/** The protocol reported for a dataset: the one asked for on FER+, none elsewhere. */
export function protocolFor(dataset: Dataset, asked: FerPlusProtocol): FerPlusProtocol | null {
  return dataset.format === 'ferplus' ? asked : null;
}
