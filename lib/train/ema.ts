// An exponential moving average of the weights (Polyak averaging; --ema <decay>): after each finite training step,
// shadow = d x shadow + (1 - d) x weights for every parameter, the batch-norm running statistics included (they are
// parameters of the engine, non-trainable ones: averaging them keeps them consistent with the averaged weights, as
// timm's ModelEmaV2 does). With warm-up the decay at update t (0-based) is min(decay, (1 + t) / (10 + t)), so that
// the first steps' random initialisation fades quickly (TensorFlow's ExponentialMovingAverage with num_updates).
// The arithmetic is in float64, stored as float32: the same inputs give the same bits, which an exact --resume
// needs (the checkpoint holds the shadow and the update count).
import type { Weights } from '../model/weights.js';

export interface EmaState {
  decay: number;
  warmup: boolean;
  /** updates applied so far (the warm-up's t) */
  updates: number;
}

export class WeightEma {
  readonly shadow: Weights;

  /** Starts the average at `weights` (copied), or continues a saved one (`updates` > 0). */
  constructor(
    readonly decay: number,
    readonly warmup: boolean,
    weights: Weights,
    public updates = 0,
  ) {
    if (!(decay > 0 && decay < 1)) throw new RangeError(`Expected an EMA decay in (0, 1) but received ${decay}`);
    this.shadow = new Map([...weights].map(([name, w]) => [name, Float32Array.from(w)]));
  }

  /** The decay of the next update. */
  decayAt(t = this.updates): number {
    return this.warmup ? Math.min(this.decay, (1 + t) / (10 + t)) : this.decay;
  }

  /** One update from the current (raw) weights; every parameter of the shadow must be there, of the same size. */
  update(weights: Weights): void {
    const d = this.decayAt();
    for (const [name, s] of this.shadow) {
      const w = weights.get(name);
      if (!w || w.length !== s.length) throw new Error(`EMA: parameter ${name} is missing or changed size`);
      for (let i = 0; i < s.length; i++) s[i] = d * s[i] + (1 - d) * w[i];
    }
    this.updates++;
  }

  state(): EmaState {
    return { decay: this.decay, warmup: this.warmup, updates: this.updates };
  }
}
