// Error measures with the tolerances the tests state.
export function relativeError(value, reference) {
  if (reference === 0) return Math.abs(value); // exact zeros (md with one class, ed with k = 1)
  return Math.abs(value - reference) / Math.abs(reference);
}

/** ||g - g_ref|| / ||g_ref|| (absolute ||g|| when the reference is all zeros). */
export function relativeNormError(g, ref) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (g[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
