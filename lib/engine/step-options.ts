// A training step's options, in a module of their own: the engine checks them and the binding's types
// (lib/native.ts) take them, without either importing the other.

/**
 * A training step's options. What a call leaves out is adcorre-train's default (TRAINING_DEFAULTS,
 * lib/train/defaults.ts), so that the API trains as the CLI does.
 */
export interface TrainStepOptions {
  /** weight of cross-entropy (default 50, the reference code's) */
  lambdaCE?: number;
  /** Ad-Corre weights (default 1 each); adcorre: false trains with cross-entropy only (default true) */
  wFD?: number;
  wMD?: number;
  wED?: number;
  adcorre?: boolean;
  /** per-class recall for the adaptive attention map (ConfusionTracker.recall()); absent: uniform attention */
  classAccuracy?: Float32Array;
  /**
   * soft targets for the cross-entropy, batch x classes, each row non-negative and summing to 1 (FER+'s normalised
   * crowd votes: DataLoader's batch.targets); labels still drive Ad-Corre, the attention map and accuracy
   */
  targets?: Float32Array;
  /** default 'adam' */
  optimizer?: 'adam' | 'sgd';
  /** default 2e-3 */
  lr?: number;
  /** SGD's momentum (default 0.9) */
  momentum?: number;
  /** SGD: Nesterov momentum, w -= lr x (g + momentum x m) after m = momentum x m + g (PyTorch's form); default false */
  nesterov?: boolean;
  /** L2 weight decay of the convolution and dense weights (default 0) */
  weightDecay?: number;
  /** running batch-norm statistics: new = m * old + (1 - m) * batch (default 0.9) */
  bnMomentum?: number;
  /** seed of this step's dropout mask, an integer in [0, 2^32) (default 0) */
  seed?: number;
}

/** What the native step takes: every option explicit (the binding has no defaults of its own). */
export type NativeStepOptions = Required<Omit<TrainStepOptions, 'classAccuracy' | 'targets'>> &
  Pick<TrainStepOptions, 'classAccuracy' | 'targets'>;
