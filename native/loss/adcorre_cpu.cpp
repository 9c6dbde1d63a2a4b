// Ad-Corre loss, CPU backend.
//
// Design note. Every Ad-Corre term is a sum of Pearson correlations over
// pairs, but every pair weight factors by class (FD), or the pairs are all
// pairs of a small set (MD over class means, ED over one sample's heads). So
// the N x N Gram matrices of the definition never need forming: with
// x = the normalised rows, S_c = the sum of x over class c, S = sum_c S_c,
// R = sum_c rho_c S_c,
//   sum_{a != b} W_ab x_a.x_b = 2 sum_c (1 + 2 rho_c)|S_c|^2 - |S|^2 - 2 R.S
//                               - sum_a (1 + 2 rho_a)|x_a|^2
// and its gradient is row-local. Forward and backward cost O(k n d) instead of
// O(k n^2 d), exactly (docs/loss-derivation.md derives every line). The work
// is then a few streaming passes: normalise rows, per-class sums, per-head
// scalars, gradient rows; each pass is split over threads by rows or by
// (head, dimension block), and the inner loops over d are SIMD reductions
// accumulated in double (so the result does not depend on the thread count).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../common/thread_pool.h"
#include "adcorre.h"

// Portable prebuilt binaries cannot assume AVX2; let the loader pick the best
// clone of the hot loops at run time on x86-64 Linux.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define ADCORRE_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ADCORRE_HOT
#endif

namespace adcorre {

ClassPlan make_class_plan(const int32_t* labels, int n, int c) {
  ClassPlan plan;
  plan.offsets.assign(static_cast<size_t>(c) + 1, 0);
  for (int a = 0; a < n; ++a) plan.offsets[labels[a] + 1]++;
  for (int i = 0; i < c; ++i) {
    if (plan.offsets[i + 1] > 0) plan.present++;
    plan.offsets[i + 1] += plan.offsets[i];
  }
  plan.order.resize(static_cast<size_t>(n));
  std::vector<int32_t> next(plan.offsets.begin(), plan.offsets.end() - 1);
  for (int a = 0; a < n; ++a) plan.order[next[labels[a]]++] = a;
  return plan;
}

struct CpuWorkspace {
  Shape s;
  Weights w;
  const float* E = nullptr;
  const int32_t* labels = nullptr;
  std::vector<double> rho;  // c
  ClassPlan plan;
  std::vector<float> x;      // k*n*d normalised rows
  std::vector<double> rn;    // k*n   1 / sqrt(ss + eps)
  std::vector<double> q;     // k*n   |x|^2
  std::vector<double> S;     // k*c*d class sums of x
  std::vector<double> U;     // k*c*d class sums of the raw rows (MD means)
  std::vector<double> Stot;  // k*d   sum of x over the batch
  std::vector<double> R;     // k*d   sum_c rho_c S_c
  std::vector<double> T;     // n*d   sum of x over heads (ED)
  std::vector<double> mhat;  // k*c*d normalised class means (MD)
  std::vector<double> mrn;   // k*c   1 / norm of centred class mean
  std::vector<double> M;     // k*d   sum of mhat over present classes
  std::vector<double> B;     // k*c*d backward: dL/dx shared by a class's rows
  std::vector<double> gmu;   // k*c*d backward: MD gradient per class member
  bool forward_done = false;
};

CpuLoss::CpuLoss() : ws_(new CpuWorkspace()) {}
CpuLoss::~CpuLoss() { delete ws_; }

namespace {

// One row: x = (u - mean u) / sqrt(|u - mean|^2 + eps); also 1/norm and |x|^2.
ADCORRE_HOT void normalise_row(const float* u, int d, float* x, double* rn, double* q) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int t = 0; t < d; ++t) sum += u[t];
  const double mean = sum / d;
  double ss = 0.0;
#pragma omp simd reduction(+ : ss)
  for (int t = 0; t < d; ++t) {
    const double c = u[t] - mean;
    ss += c * c;
  }
  const double inv = 1.0 / std::sqrt(ss + kEps);
#pragma omp simd
  for (int t = 0; t < d; ++t) x[t] = static_cast<float>((u[t] - mean) * inv);
  *rn = inv;
  *q = ss * inv * inv;
}

ADCORRE_HOT void add_row(const float* __restrict src, int d, double* __restrict out) {
#pragma omp simd
  for (int t = 0; t < d; ++t) out[t] += src[t];
}

ADCORRE_HOT void set_row(const float* __restrict src, int d, double* __restrict out) {
#pragma omp simd
  for (int t = 0; t < d; ++t) out[t] = src[t];
}

// out[t] = sum of src[t] over t in [t0, t1) for the rows of one class slice
// (count >= 1; the first row assigns, so out needs no zeroing).
ADCORRE_HOT void accumulate_rows(const float* base, size_t row_stride, const int32_t* rows, int count, int t0, int t1,
                                 double* out) {
  const float* first = base + static_cast<size_t>(rows[0]) * row_stride;
#pragma omp simd
  for (int t = t0; t < t1; ++t) out[t] = first[t];
  for (int i = 1; i < count; ++i) {
    const float* src = base + static_cast<size_t>(rows[i]) * row_stride;
#pragma omp simd
    for (int t = t0; t < t1; ++t) out[t] += src[t];
  }
}

ADCORRE_HOT double dot(const double* a, const double* b, int d) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int t = 0; t < d; ++t) s += a[t] * b[t];
  return s;
}

// dL/dE of one row: g = B + ced T - alpha x is dL/dx; pushed back through
// the normalisation, g_u = centre(rn (g - x (x . g))), plus the row's MD part
// (gm, may be null). mean(rn (g - x (x.g))) = rn (sum g - (x.g) sum x) / d
// lets one pass gather every reduction. gx is scratch of d doubles.
ADCORRE_HOT void row_backward(const float* __restrict x, double rn, int d, const double* __restrict B,
                              const double* __restrict T, double ced, double alpha, const double* __restrict gm,
                              double* __restrict gx, float* __restrict out) {
  double xg = 0.0, sg = 0.0, sx = 0.0;
#pragma omp simd reduction(+ : xg, sg, sx)
  for (int t = 0; t < d; ++t) {
    const double g = B[t] + ced * T[t] - alpha * x[t];
    gx[t] = g;
    xg += x[t] * g;
    sg += g;
    sx += x[t];
  }
  const double mean = rn * (sg - xg * sx) / d;
  if (gm) {
#pragma omp simd
    for (int t = 0; t < d; ++t) out[t] = static_cast<float>(rn * (gx[t] - x[t] * xg) - mean + gm[t]);
  } else {
#pragma omp simd
    for (int t = 0; t < d; ++t) out[t] = static_cast<float>(rn * (gx[t] - x[t] * xg) - mean);
  }
}

// Work below this many floats runs on the calling thread: waking the pool
// costs more than it saves (measured in bench/, see native/KERNELS.md).
constexpr size_t kParallelGrain = size_t(1) << 17;

}  // namespace

LossParts CpuLoss::forward(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w) {
  CpuWorkspace& ws = *ws_;
  ThreadPool& pool = ThreadPool::global();
  const int k = s.k, n = s.n, d = s.d, C = s.c;
  const size_t kn = static_cast<size_t>(k) * n;
  ws.s = s;
  ws.w = w;
  ws.E = E;
  ws.labels = labels;
  ws.rho.assign(C, 0.0);
  if (rho)
    for (int c = 0; c < C; ++c) ws.rho[c] = rho[c];
  ws.plan = make_class_plan(labels, n, C);
  ws.x.resize(kn * d);
  ws.rn.resize(kn);
  ws.q.resize(kn);
  // Per-class arrays are written for the present classes before being read,
  // and only those are read: no zero fill (it cost more than the math at the
  // paper's size).
  ws.S.resize(static_cast<size_t>(k) * C * d);
  ws.U.resize(static_cast<size_t>(k) * C * d);
  ws.Stot.assign(static_cast<size_t>(k) * d, 0.0);
  ws.R.assign(static_cast<size_t>(k) * d, 0.0);
  ws.T.resize(static_cast<size_t>(n) * d);
  ws.mhat.resize(static_cast<size_t>(k) * C * d);
  ws.mrn.resize(static_cast<size_t>(k) * C);
  ws.M.assign(static_cast<size_t>(k) * d, 0.0);

  // 1. normalise every row, head by head (streams stay sequential; walking one
  //    sample's k rows, 1 MiB apart at n = 1024, thrashes L1 sets and ran 2x slower).
  pool.parallel_for(kn, std::max<size_t>(1, kParallelGrain / d), [&](size_t b, size_t e) {
    for (size_t r = b; r < e; ++r) {
      const size_t src = embedding_row(s, static_cast<int>(r / n), static_cast<int>(r % n));
      normalise_row(E + src * d, d, ws.x.data() + r * d, &ws.rn[r], &ws.q[r]);
    }
  });

  // T_a = sum over heads of x_ja, and the sample's ED term, in blocks of 16
  // samples so each block of T stays in L1 while the heads stream by.
  std::vector<double> ed_part(static_cast<size_t>(n), 0.0);
  pool.parallel_for(static_cast<size_t>(n), std::max<size_t>(1, kParallelGrain / (static_cast<size_t>(k) * d)),
                    [&](size_t b, size_t e) {
                      for (size_t a0 = b; a0 < e; a0 += 16) {
                        const size_t a1 = std::min(e, a0 + 16);
                        for (int j = 0; j < k; ++j) {
                          for (size_t a = a0; a < a1; ++a) {
                            (j == 0 ? set_row : add_row)(ws.x.data() + (static_cast<size_t>(j) * n + a) * d, d,
                                                         ws.T.data() + a * d);
                          }
                        }
                        if (k < 2) continue;
                        for (size_t a = a0; a < a1; ++a) {
                          const double* Ta = ws.T.data() + a * d;
                          double self = 0.0;
                          for (int j = 0; j < k; ++j) self += ws.q[static_cast<size_t>(j) * n + a];
                          ed_part[a] = (double(k) * (k - 1) + dot(Ta, Ta, d) - self) / (double(k) * k);
                        }
                      }
                    });

  // 2. per-class sums of x (FD) and of the raw rows (MD means), by (head, dim
  //    block): blocks of 256 dimensions keep a class's accumulator in L1 while
  //    its rows stream by.
  const int dblock = 256;
  const int nblocks = (d + dblock - 1) / dblock;
  const size_t sum_tasks = static_cast<size_t>(k) * nblocks;
  const size_t task_floats = static_cast<size_t>(n) * std::min(d, dblock) * 2;
  pool.parallel_for(sum_tasks, std::max<size_t>(1, kParallelGrain / task_floats), [&](size_t b, size_t e) {
    for (size_t task = b; task < e; ++task) {
      const int j = static_cast<int>(task / nblocks);
      const int t0 = static_cast<int>(task % nblocks) * dblock;
      const int t1 = std::min(d, t0 + dblock);
      const float* xj = ws.x.data() + static_cast<size_t>(j) * n * d;
      // head j's rows of E: n rows d apart, or k * d apart in the sample-major layout
      const float* ej = E + embedding_row(s, j, 0) * d;
      const size_t e_stride = (s.sample_major ? static_cast<size_t>(k) : 1) * d;
      for (int c = 0; c < C; ++c) {
        const int o0 = ws.plan.offsets[c], cnt = ws.plan.offsets[c + 1] - o0;
        if (cnt == 0) continue;
        const size_t at = (static_cast<size_t>(j) * C + c) * d;
        accumulate_rows(xj, d, ws.plan.order.data() + o0, cnt, t0, t1, ws.S.data() + at);
        accumulate_rows(ej, e_stride, ws.plan.order.data() + o0, cnt, t0, t1, ws.U.data() + at);
      }
    }
  });

  // 3. per-head scalars: FD from the class sums, MD from the class means.
  const int P = ws.plan.present;
  double sum_r = 0.0;  // sum over samples of rho_a
  for (int a = 0; a < n; ++a) sum_r += ws.rho[labels[a]];
  const double pair_weight = double(n) * n - n + 2.0 * (n - 1) * sum_r;  // sum_{a!=b} A_ab
  double fd_sum = 0.0, md_sum = 0.0;
  std::vector<double> mu(d);
  for (int j = 0; j < k; ++j) {
    double* St = ws.Stot.data() + static_cast<size_t>(j) * d;
    double* Rj = ws.R.data() + static_cast<size_t>(j) * d;
    double same = 0.0;
    for (int c = 0; c < C; ++c) {
      if (ws.plan.offsets[c + 1] == ws.plan.offsets[c]) continue;
      const double* Sc = ws.S.data() + (static_cast<size_t>(j) * C + c) * d;
      same += (1.0 + 2.0 * ws.rho[c]) * dot(Sc, Sc, d);
#pragma omp simd
      for (int t = 0; t < d; ++t) {
        St[t] += Sc[t];
        Rj[t] += ws.rho[c] * Sc[t];
      }
    }
    double diag = 0.0;
    for (int a = 0; a < n; ++a) diag += (1.0 + 2.0 * ws.rho[labels[a]]) * ws.q[static_cast<size_t>(j) * n + a];
    const double wphi = 2.0 * same - dot(St, St, d) - 2.0 * dot(Rj, St, d) - diag;
    fd_sum += (pair_weight - wphi) / (double(n) * n);

    if (P >= 2) {
      double* Mj = ws.M.data() + static_cast<size_t>(j) * d;
      double self = 0.0;
      for (int c = 0; c < C; ++c) {
        const int cnt = ws.plan.offsets[c + 1] - ws.plan.offsets[c];
        if (cnt == 0) continue;
        const size_t at = (static_cast<size_t>(j) * C + c) * d;
        double mean = 0.0;
#pragma omp simd reduction(+ : mean)
        for (int t = 0; t < d; ++t) mean += (mu[t] = ws.U[at + t] / cnt);
        mean /= d;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int t = 0; t < d; ++t) ss += (mu[t] - mean) * (mu[t] - mean);
        const double inv = 1.0 / std::sqrt(ss + kEps);
        ws.mrn[static_cast<size_t>(j) * C + c] = inv;
#pragma omp simd
        for (int t = 0; t < d; ++t) {
          ws.mhat[at + t] = (mu[t] - mean) * inv;
          Mj[t] += ws.mhat[at + t];
        }
        self += ss * inv * inv;
      }
      md_sum += (double(P) * (P - 1) + dot(Mj, Mj, d) - self) / (double(P) * P);
    }
  }

  double ed_sum = 0.0;  // in sample order, whatever the thread count
  for (int a = 0; a < n; ++a) ed_sum += ed_part[a];

  LossParts out;
  out.fd = fd_sum / k;
  out.md = md_sum / k;
  out.ed = ed_sum / n;
  out.loss = w.fd * out.fd + w.md * out.md + w.ed * out.ed;
  ws.forward_done = true;
  return out;
}

void CpuLoss::backward(float* grad) {
  CpuWorkspace& ws = *ws_;
  if (!ws.forward_done) throw std::logic_error("CpuLoss::backward called before forward");
  const int k = ws.s.k, n = ws.s.n, d = ws.s.d, C = ws.s.c;
  const int P = ws.plan.present;
  const double cfd = -2.0 * ws.w.fd / (double(k) * n * n);                // dFD/dx = cfd * (W x)_a
  const double ced = k >= 2 ? 2.0 * ws.w.ed / (double(n) * k * k) : 0.0;  // dED/dx = ced (T_a - x)
  const double cmd = P >= 2 ? 2.0 * ws.w.md / (double(k) * P * P) : 0.0;  // dMD/dmhat = cmd (M - mhat)

  // Per (head, class), the part of dL/dx shared by all the class's rows:
  //   dL/dx_a = cfd (W x)_a + ced (T_a - x_a) = B_jc + ced T_a - alpha_c x_a,
  //   (W x)_a = 2(1 + 2 rho_c) S_c - (1 + rho_c) S - R - (1 + 2 rho_c) x_a,
  // and the MD gradient of the class mean, pushed through its normalisation and
  // divided by the class size (every member of the class receives it).
  std::vector<double>& B = ws.B;
  std::vector<double>& gmu = ws.gmu;
  B.resize(static_cast<size_t>(k) * C * d);
  gmu.resize(cmd != 0.0 ? static_cast<size_t>(k) * C * d : 0);
  for (int j = 0; j < k; ++j) {
    const double* St = ws.Stot.data() + static_cast<size_t>(j) * d;
    const double* Rj = ws.R.data() + static_cast<size_t>(j) * d;
    const double* Mj = ws.M.data() + static_cast<size_t>(j) * d;
    for (int c = 0; c < C; ++c) {
      const int cnt = ws.plan.offsets[c + 1] - ws.plan.offsets[c];
      if (cnt == 0) continue;
      const size_t at = (static_cast<size_t>(j) * C + c) * d;
      const double rc = ws.rho[c];
      const double c1 = cfd * 2.0 * (1.0 + 2.0 * rc), c2 = cfd * (1.0 + rc);
      const double* Sc = ws.S.data() + at;
#pragma omp simd
      for (int t = 0; t < d; ++t) B[at + t] = c1 * Sc[t] - c2 * St[t] - cfd * Rj[t];
      if (cmd == 0.0) continue;
      const double* mh = ws.mhat.data() + at;
      double* g = gmu.data() + at;
      double mg = 0.0;
#pragma omp simd reduction(+ : mg)
      for (int t = 0; t < d; ++t) {
        g[t] = cmd * (Mj[t] - mh[t]);
        mg += mh[t] * g[t];
      }
      const double inv = ws.mrn[static_cast<size_t>(j) * C + c];
      double mean = 0.0;
#pragma omp simd reduction(+ : mean)
      for (int t = 0; t < d; ++t) mean += (g[t] = inv * (g[t] - mh[t] * mg));
      mean /= d;
#pragma omp simd
      for (int t = 0; t < d; ++t) g[t] = (g[t] - mean) / cnt;
    }
  }

  const size_t kn = static_cast<size_t>(k) * n;
  ThreadPool::global().parallel_for(kn, std::max<size_t>(1, kParallelGrain / d), [&](size_t b, size_t e) {
    std::vector<double> gx(d);
    for (size_t r = b; r < e; ++r) {
      const int j = static_cast<int>(r / n), a = static_cast<int>(r % n);
      const int c = ws.labels[a];
      const size_t at = (static_cast<size_t>(j) * C + c) * d;
      const double alpha = cfd * (1.0 + 2.0 * ws.rho[c]) + ced;
      row_backward(ws.x.data() + r * d, ws.rn[r], d, B.data() + at, ws.T.data() + static_cast<size_t>(a) * d, ced,
                   alpha, cmd != 0.0 ? gmu.data() + at : nullptr, gx.data(), grad + embedding_row(ws.s, j, a) * d);
    }
  });
}

}  // namespace adcorre
