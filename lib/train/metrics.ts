// Classification metrics from a confusion matrix [label][prediction].

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

export function formatMetrics(m: ClassificationMetrics, labels: string[]): string {
  const w = Math.max(9, ...labels.map((l) => l.length));
  const lines = [
    `accuracy ${(m.accuracy * 100).toFixed(2)}%  mean class accuracy ${(m.meanClassAccuracy * 100).toFixed(2)}%  (${m.samples} samples)`,
    `${'label \\ predicted'.padEnd(w + 8)}${labels.map((l) => l.slice(0, 8).padStart(9)).join('')}   recall`,
  ];
  m.confusion.forEach((row, y) => {
    const r = m.recall[labels[y]];
    lines.push(
      `${labels[y].padEnd(w + 8)}${row.map((v) => String(v).padStart(9)).join('')}   ${r === null ? '-' : `${(r * 100).toFixed(1)}%`}`,
    );
  });
  return lines.join('\n');
}
