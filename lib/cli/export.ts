// adcorre-export <checkpoint> -o model.onnx: the ONNX model users run.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Command } from 'commander';
import { labelNames } from '../data/labels.js';
import { writeFileAtomic } from '../io.js';
import { validateConfig } from '../model/config.js';
import { exportOnnx } from '../model/onnx.js';
import { readCheckpoint } from '../train/checkpoint.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('adcorre-export')
    .description('Export a training checkpoint as an ONNX model (labels, configuration and training summary in its metadata)')
    .argument('<checkpoint>', 'a .ckpt file written by adcorre-train')
    .requiredOption('-o, --output <file>', 'the .onnx file to write')
    .option('--input-blur <sigma>', "set the configuration's input blur: the sigma (pixels) by which the training images were blurred " +
      '(training is the same with or without it; the exported model blurs its input alike)', Number)
    .option('--flip-average', 'the exported model averages the probabilities of each image and its mirror image')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === 'commander.helpDisplayed' ? 0 : 2;
  }
  const [path] = program.args;
  const { output, inputBlur, flipAverage } = program.opts<{ output: string; inputBlur?: number; flipAverage?: boolean }>();
  try {
    const { state, meta } = readCheckpoint(path);
    const saved = (meta.options as { config: object }).config;
    // evaluation-only settings may be changed at export: the weights are the same either way
    const overrides = { ...(inputBlur !== undefined ? { inputBlur } : {}), ...(flipAverage ? { flipAverage: true } : {}) };
    const config = validateConfig({ ...saved, ...overrides }, Object.keys(overrides).length ? `${path} config with the export options` : `${path} config`);
    let labels = labelNames(config.classes === 8 ? 8 : 7).slice(0, config.classes);
    try {
      labels = JSON.parse(readFileSync(join(dirname(path), 'config.json'), 'utf8')).labels ?? labels;
    } catch { /* the run's config.json is optional */ }
    const history = meta.history as { epoch: number; val: { accuracy: number; meanClassAccuracy: number } }[];
    const best = meta.best ? history.find((h) => h.epoch === meta.best!.epoch) : undefined;
    writeFileAtomic(output, exportOnnx(config, state.weights, {
      labels, training: { checkpoint: path, steps: meta.step, ...(best ? { epoch: best.epoch, valAccuracy: best.val.accuracy, valMeanClassAccuracy: best.val.meanClassAccuracy } : {}) },
    }));
    process.stdout.write(`wrote ${output}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`adcorre-export: ${(err as Error).message}\n`);
    return 1;
  }
}
