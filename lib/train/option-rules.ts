// Options that qualify another: --mix-prob says how often mixup or CutMix mixes, --teacher-weight how a teacher is
// blended, --plateau-patience when the plateau schedule drops. Given without what they qualify they would be
// ignored without a word, so they are refused, naming both, as --nesterov without SGD is. Only a value other than
// the default is refused: the default says nothing (adcorre-train passes every option, most at their defaults).
import { OptionError } from '../validate.js';
import { TRAINING_DEFAULTS } from './defaults.js';
import type { TrainerOptions } from './options.js';

type Options = Required<Pick<TrainerOptions, 'mixup' | 'cutmix' | 'schedule' | 'optimizer' | 'ema' | 'onNonFinite'>> &
  Pick<TrainerOptions, 'teacher'>;

interface Rule {
  /** the qualifying options */
  options: (keyof TrainerOptions)[];
  /** whether what they qualify is there */
  applies: (o: Options) => boolean;
  needs: string;
  instead: (o: Options) => string;
}

const RULES: Rule[] = [
  {
    options: ['mixProb'],
    applies: (o) => o.mixup > 0 || o.cutmix > 0,
    needs: 'mixup or cutmix above 0 (the probability that a batch is mixed)',
    instead: (o) => `mixup ${o.mixup} and cutmix ${o.cutmix}`,
  },
  {
    options: ['teacherTemperature', 'teacherWeight'],
    applies: (o) => o.teacher !== undefined,
    needs: 'a teacher',
    instead: () => 'no teacher',
  },
  {
    options: ['plateauPatience', 'plateauFactor'],
    applies: (o) => o.schedule === 'plateau',
    needs: "schedule 'plateau'",
    instead: (o) => `schedule '${o.schedule}'`,
  },
  {
    options: ['stepEvery', 'stepGamma'],
    applies: (o) => o.schedule === 'step',
    needs: "schedule 'step'",
    instead: (o) => `schedule '${o.schedule}'`,
  },
  {
    options: ['momentum'],
    applies: (o) => o.optimizer === 'sgd',
    needs: "optimizer 'sgd' (momentum is SGD's)",
    instead: (o) => `optimizer '${o.optimizer}'`,
  },
  {
    options: ['emaWarmup'],
    applies: (o) => o.ema > 0,
    needs: 'a weight average (ema above 0)',
    instead: (o) => `ema ${o.ema}`,
  },
  {
    options: ['maxNonFiniteSteps'],
    applies: (o) => o.onNonFinite === 'skip',
    needs: "onNonFinite 'skip'",
    instead: (o) => `onNonFinite '${o.onNonFinite}'`,
  },
];

const isDefault = (key: keyof TrainerOptions, value: unknown) =>
  value === undefined || value === (TRAINING_DEFAULTS as Partial<Record<keyof TrainerOptions, unknown>>)[key];

/** Refuses an option set in `o` (other than its default) whose qualified option is off there. */
export function checkQualifiedOptions(o: Options & Partial<TrainerOptions>): void {
  for (const rule of RULES) {
    const set = rule.options.find((key) => !isDefault(key, o[key]));
    if (set !== undefined && !rule.applies(o)) throw new OptionError(set, rule.needs, rule.instead(o));
  }
}
