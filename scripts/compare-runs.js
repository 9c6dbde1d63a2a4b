#!/usr/bin/env node
// Side-by-side validation curves of training runs, as a Markdown table (the
// model card's ablation and seed tables): for each epoch, every run's
// validation accuracy and, in brackets, mean class accuracy, then each run's
// best epoch and, with --last n, the mean of its last n epochs (a summary that
// picks no epoch by the validation score it reports). A run is a run folder or
// a metrics.jsonl file (docs/ablation keeps those of the card's tables).
//
//   node scripts/compare-runs.js runs/fer2013-small runs/fer2013-small-ce [--names "Ad-Corre,CE only"] [--last 5]
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals: runs } = parseArgs({
  allowPositionals: true,
  options: { names: { type: 'string' }, last: { type: 'string' } },
});
if (runs.length === 0) {
  process.stderr.write(
    'usage: node scripts/compare-runs.js <run folder or metrics.jsonl>... [--names a,b,...] [--last n]\n',
  );
  process.exit(2);
}
const names = values.names ? values.names.split(',') : runs;
const last = values.last === undefined ? 0 : Number(values.last);
if (values.last?.trim() === '' || !Number.isInteger(last) || last < 0) {
  process.stderr.write(`--last takes a whole number of epochs, not ${JSON.stringify(values.last)}\n`);
  process.exit(2);
}
if (names.length !== runs.length) {
  process.stderr.write(`--names has ${names.length} names for ${runs.length} runs\n`);
  process.exit(2);
}

/** epoch -> { accuracy, meanClassAccuracy } of one run's metrics.jsonl (a line per epoch; unreadable lines are skipped). */
function curve(run) {
  const byEpoch = new Map();
  const file = statSync(run).isDirectory() ? join(run, 'metrics.jsonl') : run;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    try {
      const m = JSON.parse(line);
      if (m.val) byEpoch.set(m.epoch, m.val);
    } catch {
      /* a blank or partly written last line */
    }
  }
  return byEpoch;
}

const pct = (x) => `${(100 * x).toFixed(2)} %`;
const curves = runs.map(curve);
const epochs = [...new Set(curves.flatMap((c) => [...c.keys()]))].sort((a, b) => a - b);
const rows = [`| epoch | ${names.join(' | ')} |`, `|---|${names.map(() => '---|').join('')}`];
for (const e of epochs) {
  rows.push(
    `| ${e} | ${curves.map((c) => (c.has(e) ? `${pct(c.get(e).accuracy)} (${pct(c.get(e).meanClassAccuracy)})` : '')).join(' | ')} |`,
  );
}
const best = curves.map((c) =>
  [...c.entries()].reduce(
    (a, b) => (b[1].accuracy > a[1].accuracy ? b : a),
    [0, { accuracy: -1, meanClassAccuracy: 0 }],
  ),
);
rows.push(
  `| best | ${best.map(([e, v]) => (e ? `${pct(v.accuracy)} (${pct(v.meanClassAccuracy)}), epoch ${e}` : '')).join(' | ')} |`,
);
if (last > 0) {
  const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
  const tail = curves.map((c) => [...c.entries()].sort((a, b) => a[0] - b[0]).slice(-last));
  rows.push(
    `| mean of the last ${last} | ${tail
      .map((t) =>
        t.length === last
          ? `${pct(mean(t.map(([, v]) => v.accuracy)))} (${pct(mean(t.map(([, v]) => v.meanClassAccuracy)))}), epochs ${t[0][0]}-${t.at(-1)[0]}`
          : `only ${t.length} epochs`,
      )
      .join(' | ')} |`,
  );
}
process.stdout.write(rows.join('\n') + '\n');
