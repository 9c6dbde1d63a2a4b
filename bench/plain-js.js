// The baseline a JavaScript user would write without this package: the
// Ad-Corre loss straight from its definition, float32 storage, explicit
// n x n correlation matrices per head (forward) and their products with the
// normalised rows (backward): O(k n^2 d), about 6 k n^2 d FLOPs.
const EPS = 1e-8;

export function plainJsLoss(E, labels, { k, n, d, numClasses, classAccuracy }) {
  const acc = classAccuracy ?? new Float32Array(numClasses).fill(1);
  const X = new Float32Array(k * n * d);
  const rn = new Float32Array(k * n);
  for (let r = 0; r < k * n; r++) {
    let mean = 0;
    for (let t = 0; t < d; t++) mean += E[r * d + t];
    mean /= d;
    let ss = 0;
    for (let t = 0; t < d; t++) ss += (E[r * d + t] - mean) ** 2;
    rn[r] = 1 / Math.sqrt(ss + EPS);
    for (let t = 0; t < d; t++) X[r * d + t] = (E[r * d + t] - mean) * rn[r];
  }
  const GX = new Float32Array(k * n * d);
  const phi = new Float32Array(n * n);
  const G = new Float32Array(n * n);
  let fd = 0;
  for (let j = 0; j < k; j++) {
    const base = j * n * d;
    for (let a = 0; a < n; a++) {
      // Phi = X X^T
      for (let b = 0; b < n; b++) {
        let s = 0;
        for (let t = 0; t < d; t++) s += X[base + a * d + t] * X[base + b * d + t];
        phi[a * n + b] = s;
      }
    }
    let s = 0;
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        if (a === b) {
          G[a * n + b] = 0;
          continue;
        }
        const A = 3 - acc[labels[a]] - acc[labels[b]];
        const omega = labels[a] === labels[b] ? 1 : -1;
        s += A * Math.abs(omega - phi[a * n + b]);
        G[a * n + b] = (-A * Math.sign(omega - phi[a * n + b])) / (k * n * n);
      }
    }
    fd += s / (n * n);
    for (let a = 0; a < n; a++) {
      // dX = G X + G^T X
      for (let b = 0; b < n; b++) {
        const g = G[a * n + b] + G[b * n + a];
        if (g === 0) continue;
        for (let t = 0; t < d; t++) GX[base + a * d + t] += g * X[base + b * d + t];
      }
    }
  }
  fd /= k;

  let ed = 0; // sum over heads j != l of one sample's correlations
  for (let a = 0; a < n; a++) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      for (let l = 0; l < k; l++) {
        if (j === l) continue;
        let c = 0;
        for (let t = 0; t < d; t++) c += X[(j * n + a) * d + t] * X[(l * n + a) * d + t];
        s += 1 + c;
        for (let t = 0; t < d; t++) GX[(j * n + a) * d + t] += (2 / (n * k * k)) * X[(l * n + a) * d + t];
      }
    }
    ed += s / (k * k);
  }
  ed /= n;

  const grad = new Float32Array(k * n * d);
  for (let r = 0; r < k * n; r++) {
    // back through the normalisation
    let xg = 0;
    for (let t = 0; t < d; t++) xg += X[r * d + t] * GX[r * d + t];
    let mean = 0;
    for (let t = 0; t < d; t++) {
      grad[r * d + t] = rn[r] * (GX[r * d + t] - X[r * d + t] * xg);
      mean += grad[r * d + t];
    }
    mean /= d;
    for (let t = 0; t < d; t++) grad[r * d + t] -= mean;
  }

  let md = 0; // class means per head
  const present = [...new Set(labels)];
  const P = present.length;
  if (P >= 2) {
    for (let j = 0; j < k; j++) {
      const means = present.map((c) => {
        const members = [];
        for (let a = 0; a < n; a++) if (labels[a] === c) members.push(a);
        const mu = new Float32Array(d);
        for (const a of members) for (let t = 0; t < d; t++) mu[t] += E[(j * n + a) * d + t] / members.length;
        let mean = 0;
        for (let t = 0; t < d; t++) mean += mu[t];
        mean /= d;
        let ss = 0;
        for (let t = 0; t < d; t++) ss += (mu[t] - mean) ** 2;
        const inv = 1 / Math.sqrt(ss + EPS);
        const x = mu.map((v) => (v - mean) * inv);
        return { members, x, inv };
      });
      const M = new Float32Array(d);
      for (const m of means) for (let t = 0; t < d; t++) M[t] += m.x[t];
      let s = 0;
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < P; q++) {
          if (p === q) continue;
          let c = 0;
          for (let t = 0; t < d; t++) c += means[p].x[t] * means[q].x[t];
          s += 1 + c;
        }
      }
      md += s / (P * P);
      for (const m of means) {
        const g = new Float32Array(d);
        let xg = 0;
        for (let t = 0; t < d; t++) {
          g[t] = (2 / (k * P * P)) * (M[t] - m.x[t]);
          xg += m.x[t] * g[t];
        }
        let mean = 0;
        for (let t = 0; t < d; t++) {
          g[t] = m.inv * (g[t] - m.x[t] * xg);
          mean += g[t];
        }
        mean /= d;
        for (const a of m.members) {
          for (let t = 0; t < d; t++) grad[(j * n + a) * d + t] += (g[t] - mean) / m.members.length;
        }
      }
    }
    md /= k;
  }
  return { loss: fd + md + ed, fd, md, ed, grad };
}
