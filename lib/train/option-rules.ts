// Options that qualify another: --mix-prob says how often mixup or CutMix mixes, --teacher-weight how a teacher is
// blended, --plateau-patience when the plateau schedule drops. Given without what they qualify they would be
// ignored without a word, so they are refused, naming both, as --nesterov without SGD is. Only options the caller
// gave are checked (a default qualifies nothing).
import { OptionError } from '../validate.js';
import type { TrainerOptions } from './trainer.js';

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

/** Refuses an option in `given` (what the caller set) whose qualified option is off in `o` (with defaults). */
export function checkQualifiedOptions(given: Partial<TrainerOptions>, o: Options): void {
  for (const rule of RULES) {
    const set = rule.options.find((key) => given[key] !== undefined);
    if (set !== undefined && !rule.applies(o)) throw new OptionError(set, rule.needs, rule.instead(o));
  }
}
