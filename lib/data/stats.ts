// What `adcorre-data stats` prints: split sizes, class histograms and what
// was skipped, optionally after decoding every image to find broken files.
import type { Dataset } from './dataset.js';
import { decodeSample, SampleError } from './decode.js';
import { SkipReport, type SkipSummary } from './skips.js';

export interface SplitStats {
  name: string;
  samples: number;
  /** per class, in label order */
  histogram: number[];
}

export interface DatasetStats {
  format: string;
  path: string;
  classes: number;
  labelNames: string[];
  splits: SplitStats[];
  /** the index pass, plus decoding failures when verified */
  report: SkipSummary;
  verified: boolean;
}

/**
 * Statistics of a dataset. With verify, every image is decoded (concurrency
 * at a time) and the broken ones are counted as skipped; onProgress is
 * called with (done, total).
 */
export async function datasetStats(
  dataset: Dataset,
  options: { verify?: boolean; concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<DatasetStats> {
  const report = new SkipReport(false);
  report.merge(dataset.report.summary());
  const splits: SplitStats[] = [];
  let verified = false;
  for (const split of dataset.splits.values()) {
    let kept = split.samples;
    if (options.verify && split.samples.some((s) => typeof s.source === 'string')) {
      verified = true;
      const ok = new Uint8Array(split.samples.length);
      let next = 0,
        done = 0;
      const worker = async () => {
        while (next < split.samples.length) {
          const i = next++;
          try {
            await decodeSample(split.samples[i], split.pixels, 64, 1);
            ok[i] = 1;
          } catch (err) {
            if (!(err instanceof SampleError)) throw err;
            report.skip(err.reason, split.samples[i].where, err.message);
          }
          options.onProgress?.(++done, split.samples.length);
        }
      };
      await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
      kept = split.samples.filter((_, i) => ok[i]);
    }
    const histogram = new Array<number>(dataset.classes).fill(0);
    for (const s of kept) histogram[s.label]++;
    splits.push({ name: split.name, samples: kept.length, histogram });
  }
  return {
    format: dataset.format,
    path: dataset.path,
    classes: dataset.classes,
    labelNames: dataset.labelNames,
    splits,
    report: report.summary(),
    verified,
  };
}

/** A readable table of the statistics. */
export function formatStats(stats: DatasetStats): string {
  const lines = [
    `${stats.path} (${stats.format}, ${stats.classes} classes${stats.verified ? ', every image decoded' : ''})`,
  ];
  const width = Math.max(8, ...stats.labelNames.map((n) => n.length));
  const header = ['split'.padEnd(8), 'samples'.padStart(8), ...stats.labelNames.map((n) => n.padStart(width))];
  lines.push(header.join('  '));
  for (const s of stats.splits) {
    lines.push(
      [s.name.padEnd(8), String(s.samples).padStart(8), ...s.histogram.map((h) => String(h).padStart(width))].join(
        '  ',
      ),
    );
  }
  const skipped = Object.entries(stats.report.skipped);
  const excluded = Object.entries(stats.report.excluded);
  if (!skipped.length && !excluded.length) lines.push('nothing skipped');
  for (const [reason, count] of skipped) {
    lines.push(
      `skipped ${count}: ${reason}${stats.report.examples[reason as keyof typeof stats.report.examples]?.[0] ? `, e.g. ${stats.report.examples[reason as keyof typeof stats.report.examples]![0]}` : ''}`,
    );
  }
  for (const [what, count] of excluded) lines.push(`excluded ${count}: ${what}`);
  return lines.join('\n');
}
