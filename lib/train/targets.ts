// A batch's cross-entropy targets, read the one way for label smoothing, mixup / CutMix and distillation.

/**
 * Row i's target for class c: the one-hot vector of labels[i], or row i of `targets` (n x classes, e.g. FER+ vote
 * distributions or targets already mixed or smoothed) when there are targets.
 */
export function targetReader(
  labels: Int32Array,
  targets: Float32Array | undefined,
  classes: number,
): (i: number, c: number) => number {
  return targets ? (i, c) => targets[i * classes + c] : (i, c) => (c === labels[i] ? 1 : 0);
}

/**
 * Soft targets [n][classes] pulled toward another distribution: (1 - weight) x each row's target (targetReader) +
 * `toward(i, c)`, the other distribution's share already scaled by weight (label smoothing: weight / classes;
 * distillation: weight x the teacher's probability).
 */
export function blendedTargets(
  labels: Int32Array,
  targets: Float32Array | undefined,
  classes: number,
  weight: number,
  toward: (i: number, c: number) => number,
): Float32Array {
  const out = new Float32Array(labels.length * classes);
  const target = targetReader(labels, targets, classes);
  for (let i = 0; i < labels.length; i++)
    for (let c = 0; c < classes; c++) out[i * classes + c] = (1 - weight) * target(i, c) + toward(i, c);
  return out;
}
