// A learnable synthetic task for the engine tests: each class a fixed random
// pattern, each sample its class's pattern plus noise, clipped to [0, 1].
import { rng } from './random.js';

/** n samples of `size` x `size` x `channels` over `classes` classes (labels i % classes). */
export function syntheticBatch(n, seed, { size, channels = 1, classes = 4, noise = 0.15 }) {
  const per = channels * size * size;
  const patterns = Array.from({ length: classes }, (_, c) => { const r = rng(100 + c); return Float32Array.from({ length: per }, () => r.next()); });
  const r = rng(seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const images = new Float32Array(n * per);
  for (let i = 0; i < n; i++) for (let j = 0; j < per; j++) {
    images[i * per + j] = Math.min(1, Math.max(0, patterns[labels[i]][j] + noise * (r.next() - 0.5)));
  }
  return { images, labels };
}
