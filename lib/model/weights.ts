// Model parameters by name (the architecture's ParamSpec list) and their
// seeded initialisation.
import { mixSeed, mulberry32 } from '../data/random.js';
import type { Architecture } from './architecture.js';

export type Weights = Map<string, Float32Array>;

/** Fresh parameters: He-normal convolutions, Glorot-uniform dense layers, BN at identity. */
export function initWeights(arch: Architecture, seed = 0): Weights {
  const weights: Weights = new Map();
  for (const [i, p] of arch.params.entries()) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const random = mulberry32(mixSeed(seed, i));
    if (p.init === 'one') data.fill(1);
    else if (p.init === 'he') {
      const fanIn = p.shape.slice(1).reduce((a, b) => a * b, 1);
      const std = Math.sqrt(2 / fanIn);
      for (let j = 0; j < size; j++) {
        const u = Math.max(random(), 1e-12);
        data[j] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
      }
    } else if (p.init === 'glorot') {
      const limit = Math.sqrt(6 / (p.shape[0] + p.shape[1]));
      for (let j = 0; j < size; j++) data[j] = (2 * random() - 1) * limit;
    }
    weights.set(p.name, data);
  }
  return weights;
}

/** Throws unless every parameter is present with its size. */
export function checkWeights(arch: Architecture, weights: Weights, owner?: string): void {
  const of = owner ? ` of ${owner}` : '';
  for (const p of arch.params) {
    const w = weights.get(p.name);
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (!w) throw new Error(`Missing parameter ${p.name}${of} (shape ${p.shape.join('x')})`);
    if (w.length !== size)
      throw new Error(`Parameter ${p.name}${of} has ${w.length} values; expected ${size} (shape ${p.shape.join('x')})`);
  }
}
