// The Trainer's options checked before anything runs: every option's type and range, named (OptionError), and
// the architecture resolved from a preset, a configuration or a file.
import { existsSync } from 'node:fs';
import { readConfigFile } from '../model/config-file.js';
import { PRESETS, validateConfig, type XceptionConfig } from '../model/config.js';
import { numberIn, oneOf, OptionError } from '../validate.js';
import type { ResolvedOptions, TrainerOptions } from './options.js';

export function resolveArch(arch: string | XceptionConfig): XceptionConfig {
  if (typeof arch !== 'string') return validateConfig(arch, 'arch');
  if (PRESETS[arch]) return PRESETS[arch];
  if (existsSync(arch)) return validateConfig(readConfigFile(arch), arch);
  throw new RangeError(
    `Expected a preset (${Object.keys(PRESETS).join(', ')}) or a configuration file for arch but received '${arch}'`,
  );
}

/**
 * Every option's type and range (OptionError naming the option), and the
 * batch's memory on the CPU against what the machine allows.
 */
export function validateOptions(o: ResolvedOptions): void {
  const positiveInt = (key: keyof TrainerOptions) =>
    numberIn(key, o[key], { min: 1, integer: true, max: 0x7fffffff }, 'positive integer');
  const nonNegativeInt = (key: keyof TrainerOptions) =>
    numberIn(key, o[key], { min: 0, integer: true, max: 0x7fffffff }, 'non-negative integer');
  positiveInt('epochs');
  positiveInt('batch');
  numberIn('lr', o.lr, { min: 0, minExclusive: true, max: 10 }, 'positive number (at most 10)');
  numberIn('decay', o.decay, { min: 0 }, 'non-negative number');
  numberIn('warmup', o.warmup, { min: 0, max: o.epochs }, `number of epochs in [0, ${o.epochs}] (--epochs)`);
  numberIn('stepEvery', o.stepEvery, { min: 0, minExclusive: true }, 'positive number of epochs');
  numberIn('stepGamma', o.stepGamma, { min: 0, minExclusive: true, max: 1 }, 'number in (0, 1]');
  numberIn('plateauPatience', o.plateauPatience, { min: 1, integer: true, max: 0x7fffffff }, 'positive integer');
  numberIn(
    'plateauFactor',
    o.plateauFactor,
    { min: 0, minExclusive: true, max: 1, maxExclusive: true },
    'number in (0, 1)',
  );
  numberIn('momentum', o.momentum, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  numberIn('bnMomentum', o.bnMomentum, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  numberIn('weightDecay', o.weightDecay, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  for (const key of ['lambdaCE', 'wFD', 'wMD', 'wED'] as const)
    numberIn(key, o[key], { min: 0 }, 'non-negative number (a loss weight)');
  if (o.lambdaCE === 0 && (!o.adcorre || o.wFD + o.wMD + o.wED === 0))
    throw new OptionError('lambdaCE', 'a positive loss weight somewhere', '0', 'every term of the loss is off');
  numberIn('labelSmoothing', o.labelSmoothing, { min: 0, max: 1, maxExclusive: true }, 'number in [0, 1)');
  numberIn('rotation', o.rotation, { min: 0, max: 180 }, 'degrees in [0, 180]');
  numberIn('zoom', o.zoom, { min: 0, max: 1, maxExclusive: true }, 'fraction in [0, 1) (0: off)');
  numberIn('shift', o.shift, { min: 0, max: 0.5 }, 'fraction of the side in [0, 0.5]');
  numberIn('randomErasing', o.randomErasing, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('lowRes', o.lowRes, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('blur', o.blur, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('jpeg', o.jpeg, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('mixup', o.mixup, { min: 0, max: 100 }, "Beta distribution's alpha in [0, 100] (0: off)");
  numberIn('cutmix', o.cutmix, { min: 0, max: 100 }, "Beta distribution's alpha in [0, 100] (0: off)");
  numberIn('mixProb', o.mixProb, { min: 0, max: 1 }, 'probability in [0, 1]');
  numberIn('teacherTemperature', o.teacherTemperature, { min: 0, minExclusive: true, max: 100 }, 'number in (0, 100]');
  numberIn('teacherWeight', o.teacherWeight, { min: 0, max: 1 }, 'number in [0, 1]');
  if (o.teacher !== undefined && (typeof o.teacher !== 'string' || !o.teacher))
    throw new OptionError('teacher', 'the path of an .onnx model', String(o.teacher));
  positiveInt('history');
  numberIn(
    'valFraction',
    o.valFraction,
    { min: 0, minExclusive: true, max: 1, maxExclusive: true },
    'number in (0, 1)',
  );
  nonNegativeInt('seed');
  numberIn('ema', o.ema, { min: 0, max: 1, maxExclusive: true }, 'decay in [0, 1) (0: off)');
  if (typeof o.emaWarmup !== 'boolean') throw new OptionError('emaWarmup', 'true or false', String(o.emaWarmup));
  nonNegativeInt('checkpointEvery');
  positiveInt('maxNonFiniteSteps');
  if (o.force && o.resume)
    throw new OptionError('force', 'either force (start over) or resume (continue the run), not both', 'both');
  if (o.maxSteps !== undefined) positiveInt('maxSteps');
  if (o.workers !== undefined)
    numberIn('workers', o.workers, { min: 0, max: 256, integer: true }, 'integer in [0, 256]');
  oneOf('labels', o.labels, ['majority', 'distribution']);
  oneOf('schedule', o.schedule, ['decay', 'cosine', 'step', 'plateau']);
  oneOf('optimizer', o.optimizer, ['adam', 'sgd']);
  if (typeof o.nesterov !== 'boolean') throw new OptionError('nesterov', 'true or false', String(o.nesterov));
  if (o.nesterov && o.optimizer !== 'sgd')
    throw new OptionError('nesterov', "optimizer 'sgd' (Nesterov momentum is SGD's)", `optimizer '${o.optimizer}'`);
  oneOf('onNonFinite', o.onNonFinite, ['skip', 'stop']);
}
