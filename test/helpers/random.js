// Seeded random inputs for the tests and the benchmark.
export function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    const u = Math.max(next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  return { next, normal, int };
}

/** A random problem: embeddings with some class structure, labels, accuracies. */
export function randomCase(seed, { k, n, d, numClasses, classes, withAccuracy = true }) {
  const r = rng(seed);
  const pool = classes ?? Array.from({ length: numClasses }, (_, c) => c);
  const labels = Int32Array.from({ length: n }, () => pool[r.int(0, pool.length - 1)]);
  const centres = Array.from({ length: k * numClasses }, () => Float32Array.from({ length: d }, () => r.normal()));
  const embeddings = new Float32Array(k * n * d);
  for (let j = 0; j < k; j++) {
    for (let a = 0; a < n; a++) {
      const centre = centres[j * numClasses + labels[a]];
      for (let t = 0; t < d; t++) embeddings[(j * n + a) * d + t] = 0.5 * centre[t] + r.normal();
    }
  }
  const classAccuracy = withAccuracy ? Float32Array.from({ length: numClasses }, () => r.next()) : undefined;
  return { embeddings, labels, classAccuracy, k, n, d, numClasses };
}
