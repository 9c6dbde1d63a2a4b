// The learning-rate schedule: inverse-time decay, cosine, step or reduce-on-plateau, after a linear warm-up.
import type { ResolvedOptions } from './options.js';

type ScheduleOptions = Pick<
  ResolvedOptions,
  'lr' | 'schedule' | 'decay' | 'epochs' | 'stepGamma' | 'stepEvery' | 'warmup'
>;

/**
 * The learning rate at `step`, `epochFloat` epochs into the run (the epoch plus the fraction of it done); with the
 * plateau schedule, the rate is lr x the plateau state's scale.
 */
export function learningRate(o: ScheduleOptions, plateau: PlateauState, step: number, epochFloat: number): number {
  let lr = o.lr;
  if (o.schedule === 'decay') lr = o.lr / (1 + o.decay * step);
  else if (o.schedule === 'cosine')
    lr = 0.5 * o.lr * (1 + Math.cos((Math.PI * Math.min(epochFloat, o.epochs)) / o.epochs));
  else if (o.schedule === 'step') lr = o.lr * o.stepGamma ** Math.floor(epochFloat / o.stepEvery);
  else if (o.schedule === 'plateau') lr = o.lr * plateau.scale;
  if (o.warmup > 0 && epochFloat < o.warmup) lr *= 0.1 + (0.9 * epochFloat) / o.warmup;
  return lr;
}

/** The reduce-on-plateau schedule's state: the learning rate is lr x scale (kept in checkpoints). */
export interface PlateauState {
  /** the best validation accuracy so far (-1 before the first epoch) */
  best: number;
  /** epochs since it last improved */
  bad: number;
  scale: number;
  reductions: number;
}

export const freshPlateau = (): PlateauState => ({ best: -1, bad: 0, scale: 1, reductions: 0 });

/**
 * One epoch's validation accuracy into the plateau schedule (Keras' ReduceLROnPlateau, mode max, no cooldown): an
 * accuracy above the best resets the count; `patience` epochs in a row without one multiply the scale by `factor`.
 */
export function plateauAfter(state: PlateauState, accuracy: number, patience: number, factor: number): PlateauState {
  if (accuracy > state.best) return { ...state, best: accuracy, bad: 0 };
  const bad = state.bad + 1;
  if (bad < patience) return { ...state, bad };
  return { ...state, bad: 0, scale: state.scale * factor, reductions: state.reductions + 1 };
}
