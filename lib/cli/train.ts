// adcorre-train: train Xception-k with cross-entropy + Ad-Corre on a dataset.
// Ctrl-C (SIGINT) or SIGTERM checkpoints and exits; --resume continues.
// Exit status (EXIT_CODES): 0 done, 1 training failed, 2 usage, 130 interrupted.
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { DATASET_FORMATS } from '../data/dataset.js';
import { SkipReport } from '../data/skips.js';
import { PRESETS } from '../model/config.js';
import { Trainer } from '../train/trainer.js';
import type { ProgressEvent, TrainerOptions } from '../train/options.js';
import { CLI_DEFAULTS, defaultBatch, TRAINING_DEFAULTS as D } from '../train/defaults.js';
import { describeError, finite as num, nonNegativeInt as int, positiveInt } from './args.js';
import { printable } from '../terminal.js';
import { RunClock } from './run-clock.js';
import { printableSummary } from '../data/readers/files.js';

// the Trainer's option names whose flag is not their kebab-case form
const FLAGS = {
  onNonFinite: '--on-nan',
  maxNonFiniteSteps: '--max-nan-steps',
  dataset: '--dataset',
  arch: '--arch',
  emaWarmup: '--no-ema-warmup',
};

/** What each exit status means, for --help and docs/cli.md. */
export const EXIT_CODES = `Exit status:
  0    done (also when --max-steps stops the run)
  1    training failed: the cause is printed (unreadable data, a full disk, a diverged run, --on-nan stop);
       the last checkpoint stays intact
  2    usage: a bad option, an unusable --out or --init, a run folder that holds a run (without --resume
       or --force) or that another trainer is using
  130  interrupted by Ctrl-C or SIGTERM, after saving a checkpoint (continue with --resume)`;
const fail = (err: unknown): number => {
  const { message, usage } = describeError(err, FLAGS);
  process.stderr.write(`adcorre-train: ${message}\n`);
  return usage ? 2 : 1;
};

export async function main(argv: string[]): Promise<number> {
  const program = new Command('adcorre-train')
    .description('Train an Xception-k expression model with cross-entropy + the Ad-Corre loss')
    .requiredOption('--data <path>', 'dataset folder or CSV')
    .addOption(new Option('--dataset <format>', 'dataset format').choices(['auto', ...DATASET_FORMATS]).default('auto'))
    .option(
      '--arch <preset|file>',
      `a preset (${Object.keys(PRESETS).join(', ')}) or a JSON configuration file`,
      CLI_DEFAULTS.arch,
    )
    .option(
      '--flip-average',
      'evaluation (validation, the exported model) averages the probabilities of each image and its mirror image (the default)',
    )
    .option('--no-flip-average', 'evaluation uses each image alone')
    .option('--epochs <n>', 'epochs', positiveInt, CLI_DEFAULTS.epochs)
    .option(
      '--batch <n>',
      'batch size (default: 50 for the paper preset, as in the reference code; else 64)',
      positiveInt,
    )
    .option('--out <dir>', 'run folder', `runs/${new Date().toISOString().replace(/[:.]/g, '-')}`)
    .option('--device <device>', 'where to train: auto (the GPU when one is usable), cpu, cuda or cuda:N', D.device)
    .addOption(
      new Option(
        '--precision <precision>',
        'what the convolutions and dense layers compute in: fp32; bf16 (bf16 operands, fp32 accumulation, weights and ' +
          'optimizer state; CPU only, emulated on the fp32 kernels where the CPU lacks AVX512-BF16); auto (bf16 where ' +
          'the CPU has AVX512-BF16). fp32 stays the default until the bf16 parity runs decide. --resume may change it',
      )
        .choices(['fp32', 'bf16', 'auto'])
        .default(D.precision),
    )
    .addOption(new Option('--classes <n>', '7, or 8 with contempt').choices(['7', '8']))
    .option('--fer2013 <csv>', 'FER+: the FER-2013 CSV holding the pixels')
    .addOption(
      new Option(
        '--labels <mode>',
        "FER+: train on each image's majority label, or the cross-entropy on the crowd's vote distribution (Ad-Corre and accuracy use the majority)",
      )
        .choices(['majority', 'distribution'])
        .default(D.labels),
    )
    .option('--lr <lr>', 'learning rate', num, D.lr)
    .option('--decay <d>', 'inverse-time decay per step (Keras Adam decay)', num, D.decay)
    .addOption(
      new Option('--schedule <s>', 'learning-rate schedule (plateau: follows the validation accuracy)')
        .choices(['decay', 'cosine', 'step', 'plateau'])
        .default(D.schedule),
    )
    .option(
      '--plateau-patience <epochs>',
      'with --schedule plateau: epochs without a better validation accuracy before the learning rate drops',
      positiveInt,
      D.plateauPatience,
    )
    .option(
      '--plateau-factor <f>',
      'with --schedule plateau: the factor the learning rate drops by',
      num,
      D.plateauFactor,
    )
    .option('--warmup <epochs>', 'linear warm-up epochs', num, D.warmup)
    .addOption(new Option('--optimizer <o>', 'optimizer').choices(['adam', 'sgd']).default(D.optimizer))
    .option('--momentum <m>', 'SGD momentum', num, D.momentum)
    .option('--nesterov', "SGD: Nesterov momentum, w -= lr x (g + m x v) after v = m x v + g (PyTorch's form)")
    .option('--weight-decay <w>', 'L2 weight decay', num, D.weightDecay)
    .option('--lambda-ce <w>', 'cross-entropy weight', num, D.lambdaCE)
    .option(
      '--label-smoothing <e>',
      'cross-entropy target (1 - e) x the label + e / classes (Ad-Corre and accuracy keep the label)',
      num,
      D.labelSmoothing,
    )
    .option('--w-fd <w>', 'Feature Discriminator weight', num, D.wFD)
    .option('--w-md <w>', 'Mean Discriminator weight', num, D.wMD)
    .option('--w-ed <w>', 'Embedding Discriminator weight', num, D.wED)
    .option('--no-adcorre', 'cross-entropy only (the ablation)')
    .option('--no-attention', 'uniform FD weights instead of the adaptive attention map')
    .option('--no-augment', 'no training augmentation')
    .option('--rotation <deg>', "the training warp's rotation range, +-degrees", num, D.rotation)
    .option(
      '--zoom <z>',
      "Keras-style zoom: the crop's side uniform in [1 - z, 1 + z] of the image, past its edges above 1, in place of the random resized crop (0: off)",
      num,
      D.zoom,
    )
    .option('--shift <f>', "Keras-style shift: the crop's centre moved by up to +-f x its side", num, D.shift)
    .option(
      '--random-erasing <p>',
      'probability of replacing a random rectangle of each training image with noise (Zhong et al. 2020)',
      num,
      D.randomErasing,
    )
    .option(
      '--low-res <p>',
      'probability of shrinking each training image to 25-67 % of its side and enlarging it back, as a small face in a photo',
      num,
      D.lowRes,
    )
    .option(
      '--blur <p>',
      'probability of a Gaussian blur (sigma 0.5-1.5 px at 48 px) of each training image',
      num,
      D.blur,
    )
    .option(
      '--jpeg <p>',
      "probability of JPEG's 8x8 block quantisation (quality 30-90) of each training image",
      num,
      D.jpeg,
    )
    .option(
      '--mixup <alpha>',
      "mixup: blend each batch's images and targets with a shuffled partner, lambda ~ Beta(alpha, alpha) (0: off)",
      num,
      D.mixup,
    )
    .option(
      '--cutmix <alpha>',
      "CutMix: paste a box of a shuffled partner's image, targets by the area kept, lambda ~ Beta(alpha, alpha) (0: off; with --mixup each batch picks one)",
      num,
      D.cutmix,
    )
    .option('--mix-prob <p>', 'with --mixup or --cutmix: the probability that a batch is mixed', num, D.mixProb)
    .option(
      '--teacher <model.onnx>',
      "knowledge distillation: the cross-entropy's target blends in a teacher model's temperature-scaled probabilities on the same batch",
    )
    .option(
      '--teacher-temperature <T>',
      "with --teacher: softmax(log(p) / T) of the teacher's probabilities (the student's cross-entropy stays at T = 1)",
      num,
      D.teacherTemperature,
    )
    .option(
      '--teacher-weight <a>',
      "with --teacher: the target is (1 - a) x the label's + a x the teacher's",
      num,
      D.teacherWeight,
    )
    .option(
      '--ema <decay>',
      'keep an exponential moving average of the weights with this decay, e.g. 0.999 (0: off); validation, best.ckpt and model.onnx use it',
      num,
      D.ema,
    )
    .option(
      '--no-ema-warmup',
      'with --ema: the full decay from the first step (default: min(decay, (1 + t) / (10 + t)))',
    )
    .option('--balanced', 'class-balanced sampling')
    .option('--seed <n>', 'seed of data order, augmentation, dropout and initialisation', int, D.seed)
    .option('--workers <n>', 'data-loading threads', int)
    .option('--init <file>', 'start from the weights of a checkpoint (.ckpt) or an exported model (.onnx): fine-tuning')
    .option('--resume', 'continue the run in --out from its last checkpoint')
    .option(
      '--force',
      "start over in an --out that holds a run, deleting that run's checkpoints, model, metrics and charts first",
    )
    .option('--checkpoint-every <steps>', 'also checkpoint every n steps', int, D.checkpointEvery)
    .option('--max-steps <n>', 'stop after n steps in total', positiveInt)
    .addOption(
      new Option('--on-nan <what>', 'a non-finite loss or gradient: skip the step or stop')
        .choices(['skip', 'stop'])
        .default(D.onNonFinite),
    )
    .option(
      '--max-nan-steps <n>',
      'with --on-nan skip: stop the run after this many non-finite steps in a row',
      positiveInt,
      D.maxNonFiniteSteps,
    )
    .addHelpText('after', `\n${EXIT_CODES}`)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let o: Record<string, unknown>;
  try {
    program.parse(argv, { from: 'user' });
    o = program.opts();
  } catch (err) {
    const code = (err as { code?: string }).code;
    return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
  }
  let trainer: Trainer;
  try {
    trainer = new Trainer({
      data: o.data as string,
      dataset: o.dataset as never,
      arch: o.arch as string,
      flipAverage: (o.flipAverage as boolean | undefined) ?? CLI_DEFAULTS.flipAverage,
      epochs: o.epochs as number,
      batch: (o.batch as number | undefined) ?? defaultBatch(o.arch as string),
      out: o.out as string,
      classes: o.classes ? (Number(o.classes) as 7 | 8) : undefined,
      fer2013: o.fer2013 as string | undefined,
      labels: o.labels as 'majority' | 'distribution',
      lr: o.lr as number,
      decay: o.decay as number,
      schedule: o.schedule as never,
      warmup: o.warmup as number,
      optimizer: o.optimizer as never,
      momentum: o.momentum as number,
      nesterov: Boolean(o.nesterov),
      plateauPatience: o.plateauPatience as number,
      plateauFactor: o.plateauFactor as number,
      weightDecay: o.weightDecay as number,
      lambdaCE: o.lambdaCe as number,
      labelSmoothing: o.labelSmoothing as number,
      rotation: o.rotation as number,
      zoom: o.zoom as number,
      shift: o.shift as number,
      randomErasing: o.randomErasing as number,
      lowRes: o.lowRes as number,
      blur: o.blur as number,
      jpeg: o.jpeg as number,
      wFD: o.wFd as number,
      wMD: o.wMd as number,
      wED: o.wEd as number,
      adcorre: o.adcorre as boolean,
      attention: o.attention as boolean,
      augment: o.augment as boolean,
      balanced: Boolean(o.balanced),
      mixup: o.mixup as number,
      cutmix: o.cutmix as number,
      mixProb: o.mixProb as number,
      teacher: o.teacher as string | undefined,
      teacherTemperature: o.teacherTemperature as number,
      teacherWeight: o.teacherWeight as number,
      ema: o.ema as number,
      emaWarmup: o.emaWarmup as boolean,
      seed: o.seed as number,
      device: o.device as TrainerOptions['device'],
      precision: o.precision as TrainerOptions['precision'],
      workers: o.workers as number | undefined,
      init: o.init as string | undefined,
      resume: Boolean(o.resume),
      force: Boolean(o.force),
      checkpointEvery: o.checkpointEvery as number,
      maxSteps: o.maxSteps as number | undefined,
      onNonFinite: o.onNan as never,
      maxNonFiniteSteps: o.maxNanSteps as number,
    });
  } catch (err) {
    // a bad option, configuration or device: nothing has started
    process.stderr.write(`adcorre-train: ${describeError(err, FLAGS).message}\n`);
    return 2;
  }
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals > 1) process.exit(130); // a second Ctrl-C: do not wait
    process.stderr.write(`\nadcorre-train: ${name}: saving a checkpoint, then exiting (again to quit at once)\n`);
    trainer.interrupt();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const tty = Boolean(process.stderr.isTTY);
  let bar: SingleBar | null = null;
  const fmt = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
  let clock = new RunClock(0);
  const progress = (e: ProgressEvent) => {
    if (e.phase === 'start' && e.start) {
      const { config: c, parameters, device, precision, trainSamples, valSamples, resumedAt, skipped } = e.start;
      // the epochs done when this process starts: epoch0 plus the share of its batches already run
      clock = new RunClock(e.epoch + e.batch / e.batches);
      const report = new SkipReport(); // file names and rows through printable() for the terminal
      report.merge(printableSummary(skipped));
      if (report.total || Object.keys(skipped.excluded).length)
        process.stderr.write(`adcorre-train: reading the dataset:\n${report.format()}\n`);
      process.stderr.write(
        `adcorre-train: ${c.inputSize}x${c.inputSize}x${c.channels}, width ${c.width}, r = ${c.middleBlocks}, k = ${c.k}, d = ${c.d}, ` +
          `${c.classes} classes (${(parameters / 1e6).toFixed(2)} M parameters) on ${device}${precision === 'bf16' ? ' (bf16)' : ''}; train ${trainSamples} images, val ${valSamples}; ` +
          `${e.epochs} epochs of ${e.batches} steps${resumedAt ? `; resuming at step ${resumedAt}` : ''}\n`,
      );
    } else if (e.phase === 'train') {
      if (tty) {
        if (!bar) {
          bar = new SingleBar({
            format: `epoch ${e.epoch + 1}/${e.epochs} [{bar}] {value}/{total} | loss {loss} ce {ce} fd {fd} md {md} ed {ed} | {sps} img/s | ETA {eta_formatted}`,
            stream: process.stderr,
            hideCursor: true,
          });
          bar.start(e.batches, e.batch - 1, { loss: '-', ce: '-', fd: '-', md: '-', ed: '-', sps: '-' });
        }
        bar.update(e.batch, {
          loss: fmt(e.stats?.loss),
          ce: fmt(e.stats?.ce),
          fd: fmt(e.stats?.fd),
          md: fmt(e.stats?.md),
          ed: fmt(e.stats?.ed),
          sps: e.samplesPerSecond.toFixed(0),
        });
      } else if (e.batch === e.batches || e.batch % Math.max(1, Math.floor(e.batches / 10)) === 0) {
        process.stderr.write(
          `epoch ${e.epoch + 1}/${e.epochs} batch ${e.batch}/${e.batches} loss ${fmt(e.stats?.loss)} ce ${fmt(e.stats?.ce)} fd ${fmt(e.stats?.fd)} md ${fmt(e.stats?.md)} ed ${fmt(e.stats?.ed)} ${e.samplesPerSecond.toFixed(0)} img/s\n`,
        );
      }
    } else if (e.phase === 'warning') {
      process.stderr.write(`${bar ? '\n' : ''}adcorre-train: warning: ${e.warning}\n`);
    } else if (e.phase === 'eval') {
      (bar as SingleBar | null)?.stop();
      bar = null;
    } else if (e.record) {
      const r = e.record;
      process.stderr.write(
        `epoch ${r.epoch}: train loss ${r.train.loss.toFixed(4)} acc ${(r.train.accuracy * 100).toFixed(2)}% | val acc ${(r.val.accuracy * 100).toFixed(2)}% ` +
          `mean class ${(r.val.meanClassAccuracy * 100).toFixed(2)}% | lr ${r.lr.toExponential(2)} | ${r.train.samplesPerSecond.toFixed(0)} img/s | ` +
          `${clock.describe(r.epoch, e.epochs)}${r.train.skippedSteps ? ` | ${r.train.skippedSteps} non-finite steps skipped` : ''}\n`,
      );
    }
  };
  try {
    const summary = await trainer.train(progress);
    (bar as SingleBar | null)?.stop();
    const last = summary.best
      ? `best val accuracy ${(summary.best.accuracy * 100).toFixed(2)}% (epoch ${summary.best.epoch})`
      : 'no epoch completed';
    const skipped = new SkipReport();
    skipped.merge(summary.skipped);
    process.stdout.write(
      `${summary.interrupted ? 'interrupted' : 'done'}: ${summary.steps} steps, ${last}; run folder ${printable(summary.out)}` +
        `${summary.model ? `; model ${printable(summary.model)}` : ''}; resume with --resume --out ${printable(summary.out)}\n` +
        (summary.nonFiniteSteps ? `${summary.nonFiniteSteps} steps skipped for a non-finite loss or gradient\n` : '') +
        (summary.warnings.length ? `warnings:\n${summary.warnings.map((w) => `  ${w}\n`).join('')}` : '') +
        (skipped.total ? `skipped:\n${skipped.format()}\n` : ''),
    );
    return summary.interrupted && signals > 0 ? 130 : 0;
  } catch (err) {
    (bar as SingleBar | null)?.stop();
    return fail(err);
  }
}
