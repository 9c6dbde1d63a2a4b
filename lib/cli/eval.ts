// adcorre-eval --model model.onnx --data <path>: accuracy, mean class
// accuracy, per-class recall and confusion matrix through ONNX Runtime, the
// path users' predictions take.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { DATASET_FORMATS, getSplit } from '../data/dataset.js';
import { DataLoader } from '../data/loader.js';
import { openDataset } from '../data/open.js';
import { INFER_DEVICES, openSession, ort } from '../infer/session.js';
import { readMetadata } from '../model/onnx.js';
import { confusionSvg, writePng } from '../train/charts.js';
import { confusionMatrix, formatMetrics, metricsFrom } from '../train/metrics.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('adcorre-eval')
    .description('Evaluate an exported model on a dataset split')
    .requiredOption('--model <file>', 'ONNX model exported by adcorre-native')
    .requiredOption('--data <path>', 'dataset folder or CSV')
    .addOption(new Option('--dataset <format>', 'dataset format').choices(['auto', ...DATASET_FORMATS]).default('auto'))
    .option('--split <name>', 'split to evaluate (default: val, else test, else all)')
    .option('--fer2013 <csv>', 'FER+: the FER-2013 CSV holding the pixels')
    .addOption(new Option('--device <device>', 'execution provider').choices([...INFER_DEVICES]).default('auto'))
    .option('--batch <n>', 'batch size', (v) => Number(v), 64)
    .option('--json', 'machine-readable output')
    .option('--confusion <file.png>', 'also draw the confusion matrix into this PNG file')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    return (err as { code?: string }).code === 'commander.helpDisplayed' ? 0 : 2;
  }
  const o = program.opts<{
    model: string;
    data: string;
    dataset: string;
    split?: string;
    fer2013?: string;
    device: string;
    batch: number;
    json?: boolean;
    confusion?: string;
  }>();
  try {
    const bytes = readFileSync(o.model);
    const meta = readMetadata(bytes, o.model);
    const { session, provider } = await openSession(bytes, o.device as never);
    const dataset = await openDataset(o.data, {
      format: o.dataset as never,
      classes: meta.labels.length === 8 ? 8 : 7,
      fer2013: o.fer2013,
    });
    const name = o.split ?? ['val', 'test', 'all'].find((s) => dataset.splits.has(s)) ?? [...dataset.splits.keys()][0];
    const split = getSplit(dataset, name);
    const loader = new DataLoader(split, { batchSize: o.batch, size: meta.input.size, channels: meta.input.channels });
    const C = meta.labels.length;
    const confusion = confusionMatrix(C);
    // progress on a terminal (stderr, so that --json output stays clean)
    const bar = process.stderr.isTTY
      ? new SingleBar({
          format: 'eval [{bar}] {value}/{total} images | {eta_formatted} left',
          stream: process.stderr,
          clearOnComplete: true,
        })
      : null;
    bar?.start(split.samples.length, 0);
    let seen = 0;
    try {
      for await (const b of loader.epoch(0)) {
        bar?.update((seen += b.count));
        const outputs = await session.run({
          image: new ort.Tensor('float32', b.images, [b.count, meta.input.channels, meta.input.size, meta.input.size]),
        });
        const probs = outputs.probs.data as Float32Array;
        for (let i = 0; i < b.count; i++) {
          let best = 0;
          for (let c = 1; c < C; c++) if (probs[i * C + c] > probs[i * C + best]) best = c;
          confusion[b.labels[i]][best]++;
        }
      }
    } finally {
      bar?.stop();
      await loader.close();
    }
    const metrics = metricsFrom(confusion, meta.labels);
    if (o.confusion) {
      const title = `${basename(o.model)} on ${name}: accuracy ${(metrics.accuracy * 100).toFixed(2)} %, mean class ${(metrics.meanClassAccuracy * 100).toFixed(2)} %`;
      await writePng(o.confusion, confusionSvg(title, meta.labels, confusion));
    }
    if (o.json)
      process.stdout.write(
        `${JSON.stringify({ model: o.model, provider, split: name, ...metrics, skipped: loader.report.summary() }, null, 2)}\n`,
      );
    else
      process.stdout.write(
        `${o.model} on ${dataset.path} (${name}, ${provider})\n${formatMetrics(metrics, meta.labels)}\n${loader.report.total ? loader.report.format() + '\n' : ''}`,
      );
    return 0;
  } catch (err) {
    process.stderr.write(`adcorre-eval: ${(err as Error).message}\n`);
    return 1;
  }
}
