// Ad-Corre loss, CUDA backend.
//
// Design note. The same factorisation as the CPU backend (adcorre_cpu.cpp,
// docs/loss-derivation.md): no N x N Gram matrix, only per-class and
// per-sample sums of the normalised rows, so forward + backward is five
// streaming kernels over O(k n d) data:
//   1. normalise_rows   one warp per row of [k*n][d]: x, 1/norm, |x|^2
//   2. class_sums       block per (head, class, 32-dim tile): sums of x and of
//                       the raw rows over the class's samples (plan order)
//   3. head_sums        block per sample: T_a = sum over heads of x, ED part
//   4. head_scalars     block per head: FD and MD of the head, the MD
//                       gradient per class; the last block to finish reduces
//                       the heads and samples into {loss, fd, md, ed}
//   5. grad_rows        one warp per row: dLoss/dE, two passes over the row
// Every reduction runs in a fixed order (class slices come sorted from the
// host's ClassPlan; no float atomics), so results are deterministic run to run.
// The launcher takes a stream and device memory and checks every CUDA call;
// errors become adcorre::BackendError. The stream, the memory and the copies
// belong to the engine's CudaBackend (../engine/backend_cuda.cu), which both
// the training engine and the standalone loss (../engine/host_loss.h) use.
#include "../common/cuda_common.cuh"
#include "adcorre.h"

namespace adcorre {

#define CUDA_CHECK(call) ADCORRE_CUDA_CHECK(call)

namespace {

constexpr int kWarp = cuda_common::kWarp;
constexpr int kRowsPerBlock = 4;                    // warps per block in the row kernels
constexpr int kSumWarps = 8;                        // row groups per class_sums block
constexpr int kBlock = cuda_common::kBlockThreads;  // threads in head_sums / head_scalars (block_sum's size)

using cuda_common::block_sum;
using cuda_common::warp_sum;

struct Workspace {
  float* x;          // k*n*d
  float* rn;         // k*n
  float* q;          // k*n
  float* S;          // k*c*d  class sums of x
  float* U;          // k*c*d  class sums of E, then normalised class means
  float* gmu;        // k*c*d  MD gradient per class mean, divided by the class size
  float* Stot;       // k*d
  float* R;          // k*d
  float* M;          // k*d
  float* T;          // n*d
  double* mrn;       // k*c    1 / norm of each centred class mean
  double* edpart;    // n
  double* headpart;  // 2k: fd_j, md_j
  unsigned int* counter;
};

size_t align_up(size_t v) { return (v + 255) & ~size_t(255); }

// Carves the workspace; with base == nullptr only measures it.
size_t carve(const Shape& s, char* base, Workspace* w) {
  const size_t k = s.k, n = s.n, d = s.d, c = s.c;
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char* p = base ? base + off : nullptr;
    off += align_up(bytes);
    return p;
  };
  Workspace tmp;
  Workspace& o = w ? *w : tmp;
  o.x = reinterpret_cast<float*>(take(k * n * d * sizeof(float)));
  o.rn = reinterpret_cast<float*>(take(k * n * sizeof(float)));
  o.q = reinterpret_cast<float*>(take(k * n * sizeof(float)));
  o.S = reinterpret_cast<float*>(take(k * c * d * sizeof(float)));
  o.U = reinterpret_cast<float*>(take(k * c * d * sizeof(float)));
  o.gmu = reinterpret_cast<float*>(take(k * c * d * sizeof(float)));
  o.Stot = reinterpret_cast<float*>(take(k * d * sizeof(float)));
  o.R = reinterpret_cast<float*>(take(k * d * sizeof(float)));
  o.M = reinterpret_cast<float*>(take(k * d * sizeof(float)));
  o.T = reinterpret_cast<float*>(take(n * d * sizeof(float)));
  o.mrn = reinterpret_cast<double*>(take(k * c * sizeof(double)));
  o.edpart = reinterpret_cast<double*>(take(n * sizeof(double)));
  o.headpart = reinterpret_cast<double*>(take(2 * k * sizeof(double)));
  o.counter = reinterpret_cast<unsigned int*>(take(sizeof(unsigned int)));
  return off;
}

// 1. x = (u - mean) / sqrt(|u - mean|^2 + eps), one warp per row.
//    Row r = j * n + a of x (head-major) reads E's row of head j, sample a.
__global__ void normalise_rows_kernel(const float* __restrict__ E, Shape s, float* __restrict__ x,
                                      float* __restrict__ rn, float* __restrict__ q) {
  const int lane = threadIdx.x % kWarp;
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  if (r >= s.k * s.n) return;  // never thread 0 (emulation needs that: gpu_portability.cuh)
  const int d = s.d;
  const float* u = E + embedding_row(s, r / s.n, r % s.n) * d;
  float sum = 0.f;
  for (int t = lane; t < d; t += kWarp) sum += u[t];
  const float mean = warp_sum(sum) / d;
  float ss = 0.f;
  for (int t = lane; t < d; t += kWarp) {
    const float c = u[t] - mean;
    ss += c * c;
  }
  ss = warp_sum(ss);
  const float inv = static_cast<float>(1.0 / sqrt(static_cast<double>(ss) + kEps));
  float* xr = x + static_cast<size_t>(r) * d;
  for (int t = lane; t < d; t += kWarp) xr[t] = (u[t] - mean) * inv;
  if (lane == 0) {
    rn[r] = inv;
    q[r] = static_cast<float>(static_cast<double>(ss) * inv * inv);
  }
}

// 2. Class sums of x and E over one class slice, one 32-dim tile per block.
__global__ void class_sums_kernel(const float* __restrict__ x, const float* __restrict__ E,
                                  const int32_t* __restrict__ order, const int32_t* __restrict__ offsets, Shape s,
                                  float* __restrict__ S, float* __restrict__ U) {
  const int n = s.n, d = s.d, C = s.c;
  __shared__ float sx[kSumWarps][kWarp];
  __shared__ float se[kSumWarps][kWarp];
  const int j = blockIdx.x / C, c = blockIdx.x % C;
  const int t = blockIdx.y * kWarp + threadIdx.x;
  const int o0 = offsets[c], o1 = offsets[c + 1];
  float ax = 0.f, ae = 0.f;
  if (t < d) {
    const size_t head = static_cast<size_t>(j) * n;
    for (int i = o0 + threadIdx.y; i < o1; i += kSumWarps) {
      ax += x[(head + order[i]) * d + t];
      ae += E[embedding_row(s, j, order[i]) * d + t];
    }
  }
  sx[threadIdx.y][threadIdx.x] = ax;
  se[threadIdx.y][threadIdx.x] = ae;
  __syncthreads();
  if (threadIdx.y == 0 && t < d) {
    for (int w = 1; w < kSumWarps; ++w) {
      ax += sx[w][threadIdx.x];
      ae += se[w][threadIdx.x];
    }
    const size_t at = (static_cast<size_t>(j) * C + c) * d + t;
    S[at] = ax;
    U[at] = ae;
  }
}

// 3. T_a = sum_j x_{j,a}; ED part of sample a = (k(k-1) + |T_a|^2 - sum_j |x_ja|^2) / k^2.
__global__ void head_sums_kernel(const float* __restrict__ x, const float* __restrict__ q, int k, int n, int d,
                                 float* __restrict__ T, double* __restrict__ edpart) {
  __shared__ double scratch[kBlock];
  const int a = blockIdx.x;
  double tt = 0.0;
  for (int t = threadIdx.x; t < d; t += kBlock) {
    float s = 0.f;
    for (int j = 0; j < k; ++j) s += x[(static_cast<size_t>(j) * n + a) * d + t];
    T[static_cast<size_t>(a) * d + t] = s;
    tt += static_cast<double>(s) * s;
  }
  tt = block_sum(tt, scratch);
  if (threadIdx.x == 0) {
    double self = 0.0;
    for (int j = 0; j < k; ++j) self += q[static_cast<size_t>(j) * n + a];
    edpart[a] = k >= 2 ? (double(k) * (k - 1) + tt - self) / (double(k) * k) : 0.0;
  }
}

struct HeadArgs {
  const int32_t* labels;
  const float* rho;
  const int32_t* offsets;
  int k, n, d, C, P;
  double wfd, wmd, wed;
  bool want_grad;
};

// 4. One block per head: FD_j and MD_j (and the MD gradient); the last block
//    reduces everything into result[4] = {loss, fd, md, ed}.
__global__ void head_scalars_kernel(HeadArgs p, Workspace w, double* __restrict__ result) {
  __shared__ double scratch[kBlock];
  __shared__ bool last;
  const int j = blockIdx.x, tid = threadIdx.x;
  const int d = p.d, C = p.C, n = p.n;
  const size_t head_d = static_cast<size_t>(j) * d;

  // FD: totals over classes, per dimension owned by this thread.
  double same = 0.0, ss = 0.0, rs = 0.0;
  for (int t = tid; t < d; t += kBlock) {
    float st = 0.f, r = 0.f;
    for (int c = 0; c < C; ++c) {
      if (p.offsets[c + 1] == p.offsets[c]) continue;
      const float v = w.S[(static_cast<size_t>(j) * C + c) * d + t];
      same += (1.0 + 2.0 * p.rho[c]) * static_cast<double>(v) * v;
      st += v;
      r += p.rho[c] * v;
    }
    w.Stot[head_d + t] = st;
    w.R[head_d + t] = r;
    ss += static_cast<double>(st) * st;
    rs += static_cast<double>(r) * st;
  }
  double diag = 0.0, sum_r = 0.0;
  for (int a = tid; a < n; a += kBlock) {
    const double ra = p.rho[p.labels[a]];
    diag += (1.0 + 2.0 * ra) * w.q[static_cast<size_t>(j) * n + a];
    sum_r += ra;
  }
  same = block_sum(same, scratch);
  ss = block_sum(ss, scratch);
  rs = block_sum(rs, scratch);
  diag = block_sum(diag, scratch);
  sum_r = block_sum(sum_r, scratch);
  const double pair_weight = double(n) * n - n + 2.0 * (n - 1) * sum_r;
  const double fd_j = (pair_weight - (2.0 * same - ss - 2.0 * rs - diag)) / (double(n) * n);

  // MD over the present classes' normalised means (U becomes mhat in place).
  double md_j = 0.0;
  if (p.P >= 2) {
    for (int t = tid; t < d; t += kBlock) w.M[head_d + t] = 0.f;
    double self = 0.0;
    for (int c = 0; c < C; ++c) {
      const int cnt = p.offsets[c + 1] - p.offsets[c];
      if (cnt == 0) continue;
      float* mu = w.U + (static_cast<size_t>(j) * C + c) * d;
      double part = 0.0;
      for (int t = tid; t < d; t += kBlock) part += mu[t] / cnt;
      const double mean = block_sum(part, scratch) / d;
      part = 0.0;
      for (int t = tid; t < d; t += kBlock) {
        const double v = mu[t] / cnt - mean;
        part += v * v;
      }
      const double css = block_sum(part, scratch);
      const double inv = 1.0 / sqrt(css + kEps);
      for (int t = tid; t < d; t += kBlock) {
        const float mh = static_cast<float>((mu[t] / cnt - mean) * inv);
        mu[t] = mh;
        w.M[head_d + t] += mh;
      }
      if (tid == 0) w.mrn[static_cast<size_t>(j) * C + c] = inv;
      self += css * inv * inv;
    }
    double mm = 0.0;
    for (int t = tid; t < d; t += kBlock) mm += static_cast<double>(w.M[head_d + t]) * w.M[head_d + t];
    mm = block_sum(mm, scratch);
    md_j = (double(p.P) * (p.P - 1) + mm - self) / (double(p.P) * p.P);

    // dMD/dmhat_c = cmd (M - mhat_c), back through the normalisation, divided by
    // the class size: what each member of class c receives (grad_rows adds it).
    if (p.want_grad) {
      const double cmd = 2.0 * p.wmd / (double(p.k) * p.P * p.P);
      for (int c = 0; c < C; ++c) {
        const int cnt = p.offsets[c + 1] - p.offsets[c];
        if (cnt == 0) continue;
        const size_t at = (static_cast<size_t>(j) * C + c) * d;
        const float* mh = w.U + at;
        float* g = w.gmu + at;
        double part = 0.0;
        for (int t = tid; t < d; t += kBlock) {
          const double gv = cmd * (w.M[head_d + t] - mh[t]);
          g[t] = static_cast<float>(gv);
          part += mh[t] * gv;
        }
        const double mg = block_sum(part, scratch);
        const double inv = w.mrn[static_cast<size_t>(j) * C + c];
        part = 0.0;
        for (int t = tid; t < d; t += kBlock) {
          const double gv = inv * (g[t] - mh[t] * mg);
          g[t] = static_cast<float>(gv);
          part += gv;
        }
        const double mean = block_sum(part, scratch) / d;
        for (int t = tid; t < d; t += kBlock) g[t] = static_cast<float>((g[t] - mean) / cnt);
      }
    }
  }
  if (tid == 0) {
    w.headpart[2 * j] = fd_j;
    w.headpart[2 * j + 1] = md_j;
  }

  // Last block: reduce heads and samples in a fixed order.
  __threadfence();
  __syncthreads();
  if (tid == 0) last = atomicAdd(w.counter, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  double ed = 0.0;
  for (int a = tid; a < n; a += kBlock) ed += w.edpart[a];
  ed = block_sum(ed, scratch) / n;
  if (tid == 0) {
    double fd = 0.0, md = 0.0;
    for (int h = 0; h < p.k; ++h) {
      fd += w.headpart[2 * h];
      md += w.headpart[2 * h + 1];
    }
    fd /= p.k;
    md /= p.k;
    result[0] = p.wfd * fd + p.wmd * md + p.wed * ed;
    result[1] = fd;
    result[2] = md;
    result[3] = ed;
  }
}
// 5. dLoss/dE, one warp per row (j, a):
//    g_x = cfd (W x)_a + ced (T_a - x),  (W x)_a = 2(1+2r)S_c - (1+r)S - R - (1+2r)x
//    g_E = centre(rn (g_x - x (x . g_x))) + gmu_c
struct GradArgs {
  const int32_t* labels;
  const float* rho;
  int k, n, d, C;
  float cfd, ced;
  bool with_md;
  bool sample_major;  // grad in E's layout (Shape::sample_major)
};

__global__ void grad_rows_kernel(GradArgs p, Workspace w, float* __restrict__ grad) {
  const int lane = threadIdx.x % kWarp;
  const int r = blockIdx.x * kRowsPerBlock + threadIdx.x / kWarp;
  if (r >= p.k * p.n) return;  // never thread 0 (emulation needs that: gpu_portability.cuh)
  const int j = r / p.n, a = r % p.n, d = p.d;
  const int c = p.labels[a];
  const float rc = p.rho[c];
  const float c1 = 2.f * (1.f + 2.f * rc), c2 = 1.f + rc, c3 = 1.f + 2.f * rc;
  const float* x = w.x + static_cast<size_t>(r) * d;
  const float* Sc = w.S + (static_cast<size_t>(j) * p.C + c) * d;
  const float* St = w.Stot + static_cast<size_t>(j) * d;
  const float* R = w.R + static_cast<size_t>(j) * d;
  const float* Ta = w.T + static_cast<size_t>(a) * d;
  const float* gm = w.gmu + (static_cast<size_t>(j) * p.C + c) * d;
  auto gx_at = [&](int t) {
    const float wx = c1 * Sc[t] - c2 * St[t] - R[t] - c3 * x[t];
    return p.cfd * wx + p.ced * (Ta[t] - x[t]);
  };
  float xg = 0.f, sg = 0.f, sx = 0.f;
  for (int t = lane; t < d; t += kWarp) {
    const float g = gx_at(t);
    xg += x[t] * g;
    sg += g;
    sx += x[t];
  }
  xg = warp_sum(xg);
  sg = warp_sum(sg);
  sx = warp_sum(sx);
  const float rn = w.rn[r];
  const float mean = rn * (sg - xg * sx) / d;
  float* out = grad + (p.sample_major ? static_cast<size_t>(a) * p.k + j : static_cast<size_t>(r)) * d;
  for (int t = lane; t < d; t += kWarp) {
    float v = rn * (gx_at(t) - x[t] * xg) - mean;
    if (p.with_md) v += gm[t];
    out[t] = v;
  }
}

inline unsigned blocks_for(size_t items, size_t per_block) {
  return static_cast<unsigned>((items + per_block - 1) / per_block);
}

}  // namespace

size_t cuda_workspace_bytes(const Shape& s) { return carve(s, nullptr, nullptr); }

void cuda_loss(const CudaProblem& p, void* workspace, double* result_device, float* grad, void* stream_ptr) {
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  const Shape& s = p.shape;
  Workspace w;
  carve(s, static_cast<char*>(workspace), &w);
  const int rows = s.k * s.n;

  // The retirement counter of head_scalars must start at 0.
  CUDA_CHECK(cudaMemsetAsync(w.counter, 0, sizeof(unsigned int), stream));
  ADCORRE_LAUNCH(normalise_rows_kernel, blocks_for(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream, p.E, s, w.x,
                 w.rn, w.q);
  CUDA_CHECK(cudaGetLastError());
  ADCORRE_LAUNCH(class_sums_kernel, dim3(s.k * s.c, blocks_for(s.d, kWarp)), dim3(kWarp, kSumWarps), 0, stream, w.x,
                 p.E, p.order, p.offsets, s, w.S, w.U);
  CUDA_CHECK(cudaGetLastError());
  ADCORRE_LAUNCH(head_sums_kernel, s.n, kBlock, 0, stream, w.x, w.q, s.k, s.n, s.d, w.T, w.edpart);
  CUDA_CHECK(cudaGetLastError());
  HeadArgs ha{p.labels, p.rho,     p.offsets,    s.k,          s.n,          s.d,
              s.c,      p.present, p.weights.fd, p.weights.md, p.weights.ed, grad != nullptr};
  ADCORRE_LAUNCH(head_scalars_kernel, s.k, kBlock, 0, stream, ha, w, result_device);
  CUDA_CHECK(cudaGetLastError());
  if (grad) {
    GradArgs ga;
    ga.labels = p.labels;
    ga.rho = p.rho;
    ga.k = s.k;
    ga.n = s.n;
    ga.d = s.d;
    ga.C = s.c;
    ga.cfd = static_cast<float>(-2.0 * p.weights.fd / (double(s.k) * s.n * s.n));
    ga.ced = s.k >= 2 ? static_cast<float>(2.0 * p.weights.ed / (double(s.n) * s.k * s.k)) : 0.f;
    ga.with_md = p.present >= 2;
    ga.sample_major = s.sample_major;
    ADCORRE_LAUNCH(grad_rows_kernel, blocks_for(rows, kRowsPerBlock), kRowsPerBlock * kWarp, 0, stream, ga, w, grad);
    CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace adcorre
