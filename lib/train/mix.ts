// Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) of a training batch, as a pure function of the batch and a
// seed. Each sample i is paired with partner[i] (a seeded permutation of the batch); lambda ~ Beta(alpha, alpha) is
// drawn once per batch. Mixup blends the images, lambda x own + (1 - lambda) x partner's; CutMix pastes a box of the
// partner's image (every channel) and sets lambda to the area of the own image that is kept. The cross-entropy's
// soft target is lambda x own target + (1 - lambda) x partner's (one-hot labels, or the rows of `targets`, e.g.
// FER+ vote distributions). Ad-Corre's class terms, the attention map and accuracy need one class per image: they
// get the dominant label, the own label when lambda >= 0.5, else the partner's.
import { mulberry32, shuffleInPlace } from '../data/random.js';
import { targetReader } from './targets.js';

export interface MixSpec {
  /** mixup's Beta(alpha, alpha) parameter; 0: off */
  mixup: number;
  /** CutMix's Beta(alpha, alpha) parameter; 0: off. With both on, each mixed batch picks one, 50/50 */
  cutmix: number;
  /** the probability that a batch is mixed at all */
  prob: number;
  /** image side (square planes) and channels, and the class count of the targets */
  size: number;
  channels: number;
  classes: number;
}

export interface MixedBatch {
  kind: 'mixup' | 'cutmix';
  /** the weight of each sample's own image and target */
  lambda: number;
  /** each sample's partner in the batch */
  partner: Int32Array;
  /** CutMix: the pasted box, x0 <= x < x1, y0 <= y < y1 */
  box?: { x0: number; y0: number; x1: number; y1: number };
  images: Float32Array;
  /** n x classes, each row summing to 1 */
  targets: Float32Array;
  /** the dominant label of each mixed sample */
  labels: Int32Array;
}

/** A standard normal draw (Box-Muller). */
function normal(random: () => number): number {
  const u = 1 - random(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Gamma(shape, 1) (Marsaglia and Tsang 2000; shape < 1 through Gamma(shape + 1) x U^(1 / shape)). */
function gamma(shape: number, random: () => number): number {
  if (shape < 1) return gamma(shape + 1, random) * Math.pow(1 - random(), 1 / shape);
  const d = shape - 1 / 3,
    c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number, v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(a, b) from two gamma draws. */
export function sampleBeta(a: number, b: number, random: () => number): number {
  const x = gamma(a, random),
    y = gamma(b, random);
  return x + y > 0 ? x / (x + y) : 0.5;
}

/**
 * Mixes a batch of n images (n x channels x size x size) with labels (and optional soft targets, n x classes), or
 * returns null when this batch is left as it is (mixing off, or not drawn with probability prob). Deterministic in
 * `seed` (the trainer's (seed, epoch, step)).
 */
export function mixBatch(
  images: Float32Array,
  labels: Int32Array,
  targets: Float32Array | undefined,
  spec: MixSpec,
  seed: number,
): MixedBatch | null {
  if (spec.mixup <= 0 && spec.cutmix <= 0) return null;
  const random = mulberry32(seed);
  if (random() >= spec.prob) return null;
  const kind: MixedBatch['kind'] =
    spec.mixup > 0 && spec.cutmix > 0 ? (random() < 0.5 ? 'mixup' : 'cutmix') : spec.mixup > 0 ? 'mixup' : 'cutmix';
  const alpha = kind === 'mixup' ? spec.mixup : spec.cutmix;
  let lambda = sampleBeta(alpha, alpha, random);
  const n = labels.length,
    { size, channels, classes } = spec;
  const partner = shuffleInPlace(
    Int32Array.from({ length: n }, (_, i) => i),
    random,
  );
  const plane = size * size,
    per = channels * plane;
  if (images.length !== n * per)
    throw new RangeError(`mixBatch: expected ${n * per} image values, got ${images.length}`);
  const out = new Float32Array(images.length);
  let box: MixedBatch['box'];
  if (kind === 'mixup') {
    for (let i = 0; i < n; i++) {
      const a = i * per,
        b = partner[i] * per;
      for (let j = 0; j < per; j++) out[a + j] = lambda * images[a + j] + (1 - lambda) * images[b + j];
    }
  } else {
    // a box of about (1 - lambda) of the area around a uniform centre, clipped to the image; lambda = the area kept
    const cut = Math.sqrt(1 - lambda);
    const w = Math.floor(size * cut),
      h = Math.floor(size * cut);
    const cx = Math.floor(random() * size),
      cy = Math.floor(random() * size);
    const clip = (v: number) => Math.min(size, Math.max(0, v));
    box = {
      x0: clip(cx - (w >> 1)),
      y0: clip(cy - (h >> 1)),
      x1: clip(cx + w - (w >> 1)),
      y1: clip(cy + h - (h >> 1)),
    };
    lambda = 1 - ((box.x1 - box.x0) * (box.y1 - box.y0)) / plane;
    out.set(images);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < channels; c++) {
        const a = i * per + c * plane,
          b = partner[i] * per + c * plane;
        for (let y = box.y0; y < box.y1; y++)
          for (let x = box.x0; x < box.x1; x++) out[a + y * size + x] = images[b + y * size + x];
      }
  }
  const mixedTargets = new Float32Array(n * classes);
  const dominant = new Int32Array(n);
  const target = targetReader(labels, targets, classes);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < classes; c++)
      mixedTargets[i * classes + c] = lambda * target(i, c) + (1 - lambda) * target(partner[i], c);
    dominant[i] = lambda >= 0.5 ? labels[i] : labels[partner[i]];
  }
  return { kind, lambda, partner, ...(box ? { box } : {}), images: out, targets: mixedTargets, labels: dominant };
}
