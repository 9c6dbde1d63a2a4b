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

#include "adcorre.h"
#include "thread_pool.h"

// Portable prebuilt binaries cannot assume AVX2; let the loader pick the best
// clone of the hot loops at run time on x86-64 Linux.
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define ADCORRE_HOT __attribute__((target_clones("avx2", "default")))
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
  std::vector<double> rho;    // c
  ClassPlan plan;
  std::vector<float> x;       // k*n*d normalised rows
  std::vector<double> rn;     // k*n   1 / sqrt(ss + eps)
  std::vector<double> q;      // k*n   |x|^2
  std::vector<double> S;      // k*c*d class sums of x
  std::vector<double> Stot;   // k*d   sum of x over the batch
  std::vector<double> R;      // k*d   sum_c rho_c S_c
  std::vector<double> T;      // n*d   sum of x over heads (ED)
  std::vector<double> mhat;   // k*c*d normalised class means (MD)
  std::vector<double> mrn;    // k*c   1 / norm of centred class mean
  std::vector<double> M;      // k*d   sum of mhat over present classes
  bool forward_done = false;
};

CpuLoss::CpuLoss() : ws_(new CpuWorkspace()) {}
CpuLoss::~CpuLoss() { delete ws_; }

namespace {

// Rows [begin, end) of a [rows][d] matrix: x = (u - mean u) / sqrt(|u - mean|^2 + eps).
ADCORRE_HOT void normalise_rows(const float* E, int d, size_t begin, size_t end, float* x,
                                double* rn, double* q) {
  for (size_t r = begin; r < end; ++r) {
    const float* u = E + r * d;
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
    float* xr = x + r * d;
#pragma omp simd
    for (int t = 0; t < d; ++t) xr[t] = static_cast<float>((u[t] - mean) * inv);
    rn[r] = inv;
    q[r] = ss * inv * inv;
  }
}

// out[t] += src[t] over t in [t0, t1) for every row of one class slice.
ADCORRE_HOT void accumulate_rows(const float* base, const int32_t* rows, int count, int d,
                                 int t0, int t1, double* out) {
  for (int i = 0; i < count; ++i) {
    const float* src = base + static_cast<size_t>(rows[i]) * d;
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

// Gradient of one normalised row pushed back to its raw row:
// g_u = centre(rn * (g_x - x (x . g_x))). gx is overwritten.
ADCORRE_HOT void normalise_backward(const float* x, double rn, int d, double* gx, float* out,
                                    const double* extra) {
  double xg = 0.0;
#pragma omp simd reduction(+ : xg)
  for (int t = 0; t < d; ++t) xg += x[t] * gx[t];
  double mean = 0.0;
#pragma omp simd reduction(+ : mean)
  for (int t = 0; t < d; ++t) {
    gx[t] = rn * (gx[t] - x[t] * xg);
    mean += gx[t];
  }
  mean /= d;
  if (extra) {
#pragma omp simd
    for (int t = 0; t < d; ++t) out[t] = static_cast<float>(gx[t] - mean + extra[t]);
  } else {
#pragma omp simd
    for (int t = 0; t < d; ++t) out[t] = static_cast<float>(gx[t] - mean);
  }
}

// Work below this many floats runs on the calling thread: waking the pool
// costs more than it saves (measured in bench/, see native/KERNELS.md).
constexpr size_t kParallelGrain = 16384;

}  // namespace

LossParts CpuLoss::forward(const float* E, const int32_t* labels, const float* rho,
                           const Shape& s, const Weights& w) {
  CpuWorkspace& ws = *ws_;
  ThreadPool& pool = ThreadPool::global();
  const int k = s.k, n = s.n, d = s.d, C = s.c;
  const size_t kn = static_cast<size_t>(k) * n;
  ws.s = s;
  ws.w = w;
  ws.E = E;
  ws.labels = labels;
  ws.rho.assign(C, 0.0);
  if (rho) for (int c = 0; c < C; ++c) ws.rho[c] = rho[c];
  ws.plan = make_class_plan(labels, n, C);
  ws.x.resize(kn * d);
  ws.rn.resize(kn);
  ws.q.resize(kn);
  ws.S.assign(static_cast<size_t>(k) * C * d, 0.0);
  ws.Stot.assign(static_cast<size_t>(k) * d, 0.0);
  ws.R.assign(static_cast<size_t>(k) * d, 0.0);
  ws.T.assign(static_cast<size_t>(n) * d, 0.0);
  ws.mhat.assign(static_cast<size_t>(k) * C * d, 0.0);
  ws.mrn.assign(static_cast<size_t>(k) * C, 0.0);
  ws.M.assign(static_cast<size_t>(k) * d, 0.0);

  // 1. normalise every row of every head.
  const size_t rows_grain = std::max<size_t>(1, kParallelGrain / d);
  pool.parallel_for(kn, rows_grain, [&](size_t b, size_t e) {
    normalise_rows(E, d, b, e, ws.x.data(), ws.rn.data(), ws.q.data());
  });

  // 2. per-class sums of x (FD) and of the raw rows (MD means), by (head, dim block),
  //    and the sum over heads of x per sample (ED). Dimension blocks of 256 keep
  //    a class's accumulator in L1 while its rows stream by.
  const int dblock = 256;
  const int nblocks = (d + dblock - 1) / dblock;
  std::vector<double> U(static_cast<size_t>(k) * C * d, 0.0);  // raw class sums
  const size_t sum_tasks = static_cast<size_t>(k) * nblocks;
  const size_t task_floats = static_cast<size_t>(n) * std::min(d, dblock) * 2;
  pool.parallel_for(sum_tasks, std::max<size_t>(1, kParallelGrain / task_floats), [&](size_t b, size_t e) {
    for (size_t task = b; task < e; ++task) {
      const int j = static_cast<int>(task / nblocks);
      const int t0 = static_cast<int>(task % nblocks) * dblock;
      const int t1 = std::min(d, t0 + dblock);
      const float* xj = ws.x.data() + static_cast<size_t>(j) * n * d;
      const float* ej = E + static_cast<size_t>(j) * n * d;
      for (int c = 0; c < C; ++c) {
        const int o0 = ws.plan.offsets[c], cnt = ws.plan.offsets[c + 1] - o0;
        if (cnt == 0) continue;
        const size_t at = (static_cast<size_t>(j) * C + c) * d;
        accumulate_rows(xj, ws.plan.order.data() + o0, cnt, d, t0, t1, ws.S.data() + at);
        accumulate_rows(ej, ws.plan.order.data() + o0, cnt, d, t0, t1, U.data() + at);
      }
    }
  });
  pool.parallel_for(static_cast<size_t>(n), std::max<size_t>(1, kParallelGrain / (static_cast<size_t>(k) * d)),
                    [&](size_t b, size_t e) {
    for (size_t a = b; a < e; ++a) {
      double* Ta = ws.T.data() + a * d;
      for (int j = 0; j < k; ++j) {
        const float* xr = ws.x.data() + (static_cast<size_t>(j) * n + a) * d;
        for (int t = 0; t < d; ++t) Ta[t] += xr[t];
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
        for (int t = 0; t < d; ++t) mean += (mu[t] = U[at + t] / cnt);
        mean /= d;
        double ss = 0.0;
        for (int t = 0; t < d; ++t) ss += (mu[t] - mean) * (mu[t] - mean);
        const double inv = 1.0 / std::sqrt(ss + kEps);
        ws.mrn[static_cast<size_t>(j) * C + c] = inv;
        for (int t = 0; t < d; ++t) {
          ws.mhat[at + t] = (mu[t] - mean) * inv;
          Mj[t] += ws.mhat[at + t];
        }
        self += ss * inv * inv;
      }
      md_sum += (double(P) * (P - 1) + dot(Mj, Mj, d) - self) / (double(P) * P);
    }
  }

  // 4. ED from the per-sample head sums.
  double ed_sum = 0.0;
  if (k >= 2) {
    for (int a = 0; a < n; ++a) {
      const double* Ta = ws.T.data() + static_cast<size_t>(a) * d;
      double self = 0.0;
      for (int j = 0; j < k; ++j) self += ws.q[static_cast<size_t>(j) * n + a];
      ed_sum += (double(k) * (k - 1) + dot(Ta, Ta, d) - self) / (double(k) * k);
    }
  }

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
  const double cfd = -2.0 * ws.w.fd / (double(k) * n * n);  // dFD/dx = cfd * (W x)_a
  const double ced = k >= 2 ? 2.0 * ws.w.ed / (double(n) * k * k) : 0.0;  // dED/dx = ced (T_a - x)
  const double cmd = P >= 2 ? 2.0 * ws.w.md / (double(k) * P * P) : 0.0;  // dMD/dmhat = cmd (M - mhat)

  // MD: the gradient of each class mean, pushed through its normalisation and
  // divided by the class size; every member of the class receives it.
  std::vector<double> gmu(static_cast<size_t>(k) * C * d, 0.0);
  if (cmd != 0.0) {
    for (int j = 0; j < k; ++j) {
      const double* Mj = ws.M.data() + static_cast<size_t>(j) * d;
      for (int c = 0; c < C; ++c) {
        const int cnt = ws.plan.offsets[c + 1] - ws.plan.offsets[c];
        if (cnt == 0) continue;
        const size_t at = (static_cast<size_t>(j) * C + c) * d;
        const double* mh = ws.mhat.data() + at;
        double* g = gmu.data() + at;
        double mg = 0.0;
        for (int t = 0; t < d; ++t) {
          g[t] = cmd * (Mj[t] - mh[t]);
          mg += mh[t] * g[t];
        }
        const double inv = ws.mrn[static_cast<size_t>(j) * C + c];
        double mean = 0.0;
        for (int t = 0; t < d; ++t) mean += (g[t] = inv * (g[t] - mh[t] * mg));
        mean /= d;
        for (int t = 0; t < d; ++t) g[t] = (g[t] - mean) / cnt;
      }
    }
  }

  const size_t kn = static_cast<size_t>(k) * n;
  ThreadPool::global().parallel_for(kn, std::max<size_t>(1, kParallelGrain / d), [&](size_t b, size_t e) {
    std::vector<double> gx(d);
    for (size_t r = b; r < e; ++r) {
      const int j = static_cast<int>(r / n), a = static_cast<int>(r % n);
      const int c = ws.labels[a];
      const double rc = ws.rho[c];
      const float* x = ws.x.data() + r * d;
      const double* Sc = ws.S.data() + (static_cast<size_t>(j) * C + c) * d;
      const double* St = ws.Stot.data() + static_cast<size_t>(j) * d;
      const double* Rj = ws.R.data() + static_cast<size_t>(j) * d;
      const double* Ta = ws.T.data() + static_cast<size_t>(a) * d;
      // (W x)_a = 2(1 + 2 rho_c) S_c - (1 + rho_c) S - R - (1 + 2 rho_c) x_a
      const double c1 = 2.0 * (1.0 + 2.0 * rc), c2 = 1.0 + rc, c3 = 1.0 + 2.0 * rc;
      for (int t = 0; t < d; ++t) {
        const double wx = c1 * Sc[t] - c2 * St[t] - Rj[t] - c3 * x[t];
        gx[t] = cfd * wx + ced * (Ta[t] - x[t]);
      }
      const double* extra = cmd != 0.0 ? gmu.data() + (static_cast<size_t>(j) * C + c) * d : nullptr;
      normalise_backward(x, ws.rn[r], d, gx.data(), grad + r * d, extra);
    }
  });
}

}  // namespace adcorre
