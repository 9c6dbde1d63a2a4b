// What the trainer does about each training step's outcome: stop on non-finite steps that cannot be skipped, and
// warn of a diverging loss.
import type { Engine, StepStats } from '../engine/engine.js';
import { describeNonFinite, firstNonFiniteParameter } from '../model/finite.js';
import { DivergenceWatch } from './metrics.js';
import type { ResolvedOptions } from './options.js';

/**
 * What the trainer does about a step, beside the step loop. A non-finite step stops the run with onNonFinite
 * 'stop'; with 'skip' it stops the run when the weights themselves are not finite (every later step fails too:
 * skipping cannot mend them) or after maxNonFiniteSteps in a row (the run no longer trains). A smoothed loss that
 * grows by an order of magnitude (DivergenceWatch) is reported as a warning, once per order.
 */
export class StepGuard {
  /** non-finite steps so far, and in a row */
  total = 0;
  private inARow = 0;
  private firstInARow = 0;
  readonly warnings: string[] = [];
  private readonly watch = new DivergenceWatch();

  constructor(
    private readonly o: Pick<ResolvedOptions, 'lr' | 'onNonFinite' | 'maxNonFiniteSteps'>,
    private readonly engine: Engine,
    private readonly warn: (message: string, epoch: number, batch: number) => void,
  ) {}

  check(stats: StepStats, step: number, epoch: number, batch: number): void {
    if (stats.finite) {
      this.inARow = 0;
      const grown = this.watch.observe(stats.loss);
      if (grown) {
        const n = (x: number) => (x >= 1e6 ? x.toExponential(2) : String(Number(x.toPrecision(3))));
        const message =
          `the training loss has grown ${n(Math.floor(grown.ratio))} times, from ${n(grown.from)} to ${n(grown.to)} ` +
          `(averaged over steps), by step ${step}: the run is diverging; ` +
          `a lower learning rate (--lr, now ${this.o.lr}) usually helps`;
        this.warnings.push(message);
        this.warn(message, epoch, batch);
      }
      return;
    }
    this.total++;
    if (this.inARow++ === 0) this.firstInARow = step;
    const layer = `first bad layer: ${stats.badLayer}`;
    if (this.o.onNonFinite === 'stop')
      throw new Error(`Non-finite loss or gradient at step ${step} (${layer}); stopping, as --on-nan stop asks`);
    const bad = firstNonFiniteParameter(this.engine.getWeights());
    if (bad)
      throw new Error(
        `The weights hold NaN or infinite values (${describeNonFinite(bad)}) at step ${step}: every step fails and skipping cannot ` +
          'mend them; start from finite weights (--init) or an earlier checkpoint',
      );
    if (this.inARow >= this.o.maxNonFiniteSteps)
      throw new Error(
        `${this.inARow} steps in a row (steps ${this.firstInARow} to ${step}) had a non-finite loss or gradient ` +
          `(${layer}): the run no longer trains. Lower the learning rate (--lr, now ${this.o.lr}) or the loss ` +
          'weights, or check the data; --max-nan-steps sets how many in a row are tolerated',
      );
  }
}
