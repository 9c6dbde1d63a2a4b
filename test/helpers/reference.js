// An independent float64 reference of the Ad-Corre loss, written straight from
// the definition (issue #2): explicit N x N correlation matrices and the
// absolute value |Omega - Phi| as written, O(k n^2 d). It shares no code and no
// algorithm with the native kernels, which use the class-factorised form.
// bench/loss.js times it as the plain-JavaScript baseline: the one plain-JS
// definition of the loss in the repository.
const EPS = 1e-8;

function normalise(u) {
  const d = u.length;
  let mean = 0;
  for (let t = 0; t < d; t++) mean += u[t];
  mean /= d;
  const c = new Float64Array(d);
  let ss = 0;
  for (let t = 0; t < d; t++) {
    c[t] = u[t] - mean;
    ss += c[t] * c[t];
  }
  const n = Math.sqrt(ss + EPS);
  const x = new Float64Array(d);
  for (let t = 0; t < d; t++) x[t] = c[t] / n;
  return { x, n };
}

// dL/du from dL/dx for x = normalise(u), via the Jacobian
// J = (I - x x^T)(I - 1 1^T / d) / n applied transposed.
function normaliseBackward({ x, n }, gx) {
  const d = x.length;
  let xg = 0;
  for (let t = 0; t < d; t++) xg += x[t] * gx[t];
  const v = new Float64Array(d);
  let mean = 0;
  for (let t = 0; t < d; t++) {
    v[t] = (gx[t] - x[t] * xg) / n;
    mean += v[t];
  }
  mean /= d;
  for (let t = 0; t < d; t++) v[t] -= mean;
  return v;
}

function dot(a, b) {
  let s = 0;
  for (let t = 0; t < a.length; t++) s += a[t] * b[t];
  return s;
}

function row(E, n, d, j, a) {
  return Float64Array.from(E.subarray((j * n + a) * d, (j * n + a + 1) * d));
}

/**
 * @param {Float32Array|Float64Array} E [k][n][d]
 * @returns {{fd, md, ed, loss, grad: Float64Array}} the gradient of the weighted total
 */
export function referenceLoss(E, labels, { k, n, d, numClasses, classAccuracy, weights = {} }) {
  const wfd = weights.fd ?? 1,
    wmd = weights.md ?? 1,
    wed = weights.ed ?? 1;
  const acc = classAccuracy ?? new Array(numClasses).fill(1);
  const grad = new Float64Array(k * n * d);
  const norm = [];
  for (let j = 0; j < k; j++) {
    norm.push([]);
    for (let a = 0; a < n; a++) norm[j].push(normalise(row(E, n, d, j, a)));
  }
  const gx = Array.from({ length: k }, () => Array.from({ length: n }, () => new Float64Array(d)));

  // FD: (1/k) sum_j (1/n^2) sum_ab A_ab |Omega_ab - Phi_ab|
  let fd = 0;
  for (let j = 0; j < k; j++) {
    let s = 0;
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        if (a === b) continue;
        const A = 1 + (1 - acc[labels[a]]) + (1 - acc[labels[b]]);
        const omega = labels[a] === labels[b] ? 1 : -1;
        const phi = dot(norm[j][a].x, norm[j][b].x);
        s += A * Math.abs(omega - phi);
        // d|omega - phi|/dphi = -sign(omega - phi); dphi/dx_a = x_b
        const g = (wfd / (k * n * n)) * A * -Math.sign(omega - phi);
        for (let t = 0; t < d; t++) {
          gx[j][a][t] += g * norm[j][b].x[t];
          gx[j][b][t] += g * norm[j][a].x[t];
        }
      }
    }
    fd += s / (n * n);
  }
  fd /= k;

  // ED: mean over a of (1/k^2) sum_{j != l} (1 + corr(E_ja, E_la))
  let ed = 0;
  for (let a = 0; a < n; a++) {
    let s = 0;
    for (let j = 0; j < k; j++) {
      for (let l = 0; l < k; l++) {
        if (j === l) continue;
        s += 1 + dot(norm[j][a].x, norm[l][a].x);
        const g = wed / (n * k * k);
        for (let t = 0; t < d; t++) {
          gx[j][a][t] += g * norm[l][a].x[t];
          gx[l][a][t] += g * norm[j][a].x[t];
        }
      }
    }
    ed += s / (k * k);
  }
  ed /= n;

  for (let j = 0; j < k; j++) {
    for (let a = 0; a < n; a++) {
      grad.set(normaliseBackward(norm[j][a], gx[j][a]), (j * n + a) * d);
    }
  }

  // MD: mean over j of (1/P^2) sum_{c != c'} (1 + corr(mu_c, mu_c')), present classes only
  let md = 0;
  const present = [...new Set(labels)].sort((x, y) => x - y);
  const P = present.length;
  if (P >= 2) {
    for (let j = 0; j < k; j++) {
      const means = present.map((c) => {
        const members = [];
        for (let a = 0; a < n; a++) if (labels[a] === c) members.push(a);
        const mu = new Float64Array(d);
        for (const a of members) for (let t = 0; t < d; t++) mu[t] += E[(j * n + a) * d + t] / members.length;
        return { members, norm: normalise(mu), g: new Float64Array(d) };
      });
      let s = 0;
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < P; q++) {
          if (p === q) continue;
          s += 1 + dot(means[p].norm.x, means[q].norm.x);
          const g = wmd / (k * P * P);
          for (let t = 0; t < d; t++) {
            means[p].g[t] += g * means[q].norm.x[t];
            means[q].g[t] += g * means[p].norm.x[t];
          }
        }
      }
      md += s / (P * P);
      for (const m of means) {
        const gmu = normaliseBackward(m.norm, m.g);
        for (const a of m.members) {
          for (let t = 0; t < d; t++) grad[(j * n + a) * d + t] += gmu[t] / m.members.length;
        }
      }
    }
    md /= k;
  }

  return { fd, md, ed, loss: wfd * fd + wmd * md + wed * ed, grad };
}
