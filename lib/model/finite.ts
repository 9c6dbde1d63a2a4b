// Non-finite weights (NaN, +-Infinity): a model holding one predicts NaN and a trainer holding one fails every step.
// The trainer (a step that went wrong, an --init to start from) and the ONNX exporter look for them the same way.
import type { Weights } from './weights.js';

/** The first parameter holding NaN or an infinity: its name, how many of its values are bad and how many it has. */
export interface NonFiniteParameter {
  name: string;
  bad: number;
  length: number;
}

/** How many of `values` are NaN or infinite. */
export function countNonFinite(values: ArrayLike<number>): number {
  let bad = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) bad++;
  return bad;
}

/**
 * The first parameter of `weights` (in `names`' order, every parameter of `weights` by default) that holds NaN or an
 * infinity, or null when they are all finite. A name that `weights` lacks is passed over.
 */
export function firstNonFiniteParameter(
  weights: Weights,
  names: Iterable<string> = weights.keys(),
): NonFiniteParameter | null {
  for (const name of names) {
    const w = weights.get(name);
    if (!w) continue;
    const bad = countNonFinite(w);
    if (bad) return { name, bad, length: w.length };
  }
  return null;
}

/** How the trainer names a non-finite parameter in its messages: 'parameter <name>: <bad> of its <length> values'. */
export const describeNonFinite = (p: NonFiniteParameter): string =>
  `parameter ${p.name}: ${p.bad} of its ${p.length} values`;
