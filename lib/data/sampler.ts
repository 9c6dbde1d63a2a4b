// The order of one epoch: in order, shuffled, or class-balanced (each draw
// picks a class uniformly, then the class's next sample in its own shuffled
// cycle), which gives Ad-Corre's FD term same-class pairs in every batch.
import { mixSeed, mulberry32, shuffleInPlace } from './random.js';

export interface OrderOptions {
  shuffle: boolean;
  balanced: boolean;
  seed: number;
  epoch: number;
}

/** Indices into `labels` for one epoch (as many as there are samples). */
export function epochOrder(labels: ArrayLike<number>, options: OrderOptions): Int32Array {
  const n = labels.length;
  const random = mulberry32(mixSeed(options.seed, options.epoch, 0x5eed));
  if (!options.balanced) {
    const order = Int32Array.from({ length: n }, (_, i) => i);
    return options.shuffle ? shuffleInPlace(order, random) : order;
  }
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    if (!byClass.has(labels[i])) byClass.set(labels[i], []);
    byClass.get(labels[i])!.push(i);
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const cycles = classes.map((c) => shuffleInPlace(Int32Array.from(byClass.get(c)!), random));
  const next = new Int32Array(classes.length);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(random() * classes.length);
    if (next[k] === cycles[k].length) {
      shuffleInPlace(cycles[k], random);
      next[k] = 0;
    }
    order[i] = cycles[k][next[k]++];
  }
  return order;
}
