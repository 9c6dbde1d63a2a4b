// Training-engine operations, CUDA backend (declared in ops_cuda.cuh).
//
// Design note. First versions, written for correctness and determinism
// before speed: a 64x64-tiled SGEMM (4x4 outputs per thread, transposes by
// index) carries the dense and pointwise convolutions and the im2col
// convolutions; every reduction (batch-norm statistics, weight gradients of
// depthwise convolutions, bias gradients) runs in a fixed order in one block,
// and scatters (max-pool and col2im backward) are written as gathers, so no
// float atomics: results repeat run to run. Layouts as on the CPU (NCHW,
// OIHW, [out][in]); the batch of a convolution is one GEMM over the
// channel-major packed input [c][n*P].
#include "ops_cuda.cuh"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "../common/rng.h"
#include "../loss/adcorre.h"
#include "op_table.h"  // kPoolKernel, kPoolStride

namespace adcorre::engine::cuda {

#define CHECK_LAUNCH() ADCORRE_LAUNCH_CHECK("an engine kernel")

namespace {

constexpr int kThreads = kBlockThreads;
using cuda_common::grid_for;
using cuda_common::grid_for_strided;

// ------------------------------------------------------------------ GEMM
constexpr int TM = 64, TN = 64, TK = 16;

__global__ void gemm_kernel(bool ta, bool tb, int M, int N, int K, const float* __restrict__ A,
                            const float* __restrict__ B, float* __restrict__ C, bool accumulate) {
  __shared__ float As[TK][TM + 1];
  __shared__ float Bs[TK][TN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += 256) {
      const int kk = i / TM, mm = i % TM;
      const int r = row0 + mm, k = k0 + kk;
      As[kk][mm] =
          (r < M && k < K) ? (ta ? A[static_cast<size_t>(k) * M + r] : A[static_cast<size_t>(r) * K + k]) : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += 256) {
      const int kk = i / TN, nn = i % TN;
      const int c = col0 + nn, k = k0 + kk;
      Bs[kk][nn] =
          (c < N && k < K) ? (tb ? B[static_cast<size_t>(c) * K + k] : B[static_cast<size_t>(k) * N + c]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i) {
    const int r = row0 + ty * 4 + i;
    if (r >= M) continue;
    for (int j = 0; j < 4; ++j) {
      const int c = col0 + tx * 4 + j;
      if (c >= N) continue;
      float* out = C + static_cast<size_t>(r) * N + c;
      *out = accumulate ? *out + acc[i][j] : acc[i][j];
    }
  }
}

// ------------------------------------------------------------------ convolution helpers
__global__ void im2col_kernel(ConvShape s, const float* __restrict__ x, float* __restrict__ col) {
  const int P = s.oh * s.ow;
  const size_t NP = static_cast<size_t>(s.n) * P, total = static_cast<size_t>(s.c) * s.k * s.k * NP;
  ADCORRE_GRID_STRIDE(i, total) {
    const size_t row = i / NP, rest = i % NP;
    const int n = static_cast<int>(rest / P), p = static_cast<int>(rest % P);
    const int c = static_cast<int>(row / (s.k * s.k)), ky = static_cast<int>(row / s.k % s.k),
              kx = static_cast<int>(row % s.k);
    const int iy = (p / s.ow) * s.stride + ky - s.pad_top, ix = (p % s.ow) * s.stride + kx - s.pad_left;
    col[i] = (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w)
                 ? x[((static_cast<size_t>(n) * s.c + c) * s.h + iy) * s.w + ix]
                 : 0.f;
  }
}

// Calls f(ky, kx, oy, ox) for every output position whose kernel window
// covers input pixel (iy, ix): the gathers that replace scatters in backward.
template <typename F>
__device__ __forceinline__ void for_each_covering_output(const ConvShape& s, int iy, int ix, F f) {
  for (int ky = 0; ky < s.k; ++ky) {
    const int ty = iy + s.pad_top - ky;
    if (ty < 0 || ty % s.stride) continue;
    const int oy = ty / s.stride;
    if (oy >= s.oh) continue;
    for (int kx = 0; kx < s.k; ++kx) {
      const int tx = ix + s.pad_left - kx;
      if (tx < 0 || tx % s.stride) continue;
      const int ox = tx / s.stride;
      if (ox < s.ow) f(ky, kx, oy, ox);
    }
  }
}

// One thread per input pixel gathers every column entry that read it.
__global__ void col2im_kernel(ConvShape s, const float* __restrict__ col, float* __restrict__ dx) {
  const int P = s.oh * s.ow;
  const size_t NP = static_cast<size_t>(s.n) * P, total = static_cast<size_t>(s.n) * s.c * s.h * s.w;
  ADCORRE_GRID_STRIDE(i, total) {
    const int ix = static_cast<int>(i % s.w), iy = static_cast<int>(i / s.w % s.h);
    const int c = static_cast<int>(i / (static_cast<size_t>(s.w) * s.h) % s.c),
              n = static_cast<int>(i / (static_cast<size_t>(s.w) * s.h * s.c));
    float acc = 0.f;
    for_each_covering_output(s, iy, ix, [&](int ky, int kx, int oy, int ox) {
      acc += col[static_cast<size_t>((c * s.k + ky) * s.k + kx) * NP + static_cast<size_t>(n) * P + oy * s.ow + ox];
    });
    dx[i] = acc;
  }
}

// [n][c][P] <-> [c][n*P]
__global__ void pack_kernel(int n, int c, int P, const float* __restrict__ in, float* __restrict__ out, bool unpack) {
  const size_t total = static_cast<size_t>(n) * c * P;
  ADCORRE_GRID_STRIDE(i, total) {
    const int p = static_cast<int>(i % P), ch = static_cast<int>(i / P % c),
              b = static_cast<int>(i / (static_cast<size_t>(P) * c));
    const size_t packed = (static_cast<size_t>(ch) * n + b) * P + p;
    if (unpack)
      out[i] = in[packed];
    else
      out[packed] = in[i];
  }
}

__global__ void depthwise_forward_kernel(ConvShape s, const float* __restrict__ x, const float* __restrict__ w,
                                         float* __restrict__ y) {
  const size_t total = static_cast<size_t>(s.n) * s.c * s.oh * s.ow;
  ADCORRE_GRID_STRIDE(i, total) {
    const int ox = static_cast<int>(i % s.ow), oy = static_cast<int>(i / s.ow % s.oh);
    const size_t nc = i / (static_cast<size_t>(s.ow) * s.oh);
    const int c = static_cast<int>(nc % s.c);
    const float* xp = x + nc * s.h * s.w;
    const float* wk = w + static_cast<size_t>(c) * s.k * s.k;
    float acc = 0.f;
    for (int ky = 0; ky < s.k; ++ky) {
      const int iy = oy * s.stride + ky - s.pad_top;
      if (iy < 0 || iy >= s.h) continue;
      for (int kx = 0; kx < s.k; ++kx) {
        const int ix = ox * s.stride + kx - s.pad_left;
        if (ix >= 0 && ix < s.w) acc += xp[iy * s.w + ix] * wk[ky * s.k + kx];
      }
    }
    y[i] = acc;
  }
}

__global__ void depthwise_backward_input_kernel(ConvShape s, const float* __restrict__ w, const float* __restrict__ dy,
                                                float* __restrict__ dx) {
  const size_t total = static_cast<size_t>(s.n) * s.c * s.h * s.w;
  ADCORRE_GRID_STRIDE(i, total) {
    const int ix = static_cast<int>(i % s.w), iy = static_cast<int>(i / s.w % s.h);
    const size_t nc = i / (static_cast<size_t>(s.w) * s.h);
    const int c = static_cast<int>(nc % s.c);
    const float* dyp = dy + nc * s.oh * s.ow;
    const float* wk = w + static_cast<size_t>(c) * s.k * s.k;
    float acc = 0.f;
    for_each_covering_output(s, iy, ix,
                             [&](int ky, int kx, int oy, int ox) { acc += dyp[oy * s.ow + ox] * wk[ky * s.k + kx]; });
    dx[i] = acc;
  }
}

// One block per (channel, tap): sum over samples and output positions in a fixed order.
__global__ void depthwise_backward_weight_kernel(ConvShape s, const float* __restrict__ x, const float* __restrict__ dy,
                                                 float* __restrict__ dw) {
  __shared__ double scratch[kThreads];
  const int c = blockIdx.x / (s.k * s.k), tap = blockIdx.x % (s.k * s.k), ky = tap / s.k, kx = tap % s.k;
  const size_t P = static_cast<size_t>(s.oh) * s.ow;
  double acc = 0;
  for (size_t i = threadIdx.x; i < s.n * P; i += kThreads) {
    const int n = static_cast<int>(i / P), p = static_cast<int>(i % P);
    const int iy = (p / s.ow) * s.stride + ky - s.pad_top, ix = (p % s.ow) * s.stride + kx - s.pad_left;
    if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
    const size_t nc = static_cast<size_t>(n) * s.c + c;
    acc += static_cast<double>(dy[nc * P + p]) * x[(nc * s.h + iy) * s.w + ix];
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) dw[static_cast<size_t>(c) * s.k * s.k + tap] += static_cast<float>(acc);
}

// ------------------------------------------------------------------ batch norm
__global__ void bn_train_kernel(int n, int c, int hw, const float* __restrict__ x, const float* __restrict__ gamma,
                                const float* __restrict__ beta, float* __restrict__ y, float* __restrict__ mean,
                                float* __restrict__ invstd, double eps, bool relu) {
  __shared__ double scratch[kThreads];
  const int ch = blockIdx.x;
  const size_t m = static_cast<size_t>(n) * hw;
  auto at = [&](size_t i) { return (i / hw * c + ch) * static_cast<size_t>(hw) + i % hw; };
  double sum = 0;
  for (size_t i = threadIdx.x; i < m; i += kThreads) sum += x[at(i)];
  const double mu = block_sum(sum, scratch) / m;
  double sq = 0;
  for (size_t i = threadIdx.x; i < m; i += kThreads) sq += (x[at(i)] - mu) * (x[at(i)] - mu);
  const double inv = 1.0 / sqrt(block_sum(sq, scratch) / m + eps);
  if (threadIdx.x == 0) {
    mean[ch] = static_cast<float>(mu);
    invstd[ch] = static_cast<float>(inv);
  }
  const float g = static_cast<float>(gamma[ch] * inv), b = static_cast<float>(beta[ch] - mu * inv * gamma[ch]);
  for (size_t i = threadIdx.x; i < m; i += kThreads) {
    const float v = x[at(i)] * g + b;
    y[at(i)] = relu && !(v > 0.f) ? 0.f : v;
  }
}

__global__ void bn_eval_kernel(int n, int c, int hw, const float* __restrict__ x, const float* __restrict__ gamma,
                               const float* __restrict__ beta, const float* __restrict__ rm,
                               const float* __restrict__ rv, float* __restrict__ y, double eps, bool relu) {
  const size_t total = static_cast<size_t>(n) * c * hw;
  ADCORRE_GRID_STRIDE(i, total) {
    const int ch = static_cast<int>(i / hw % c);
    const double inv = 1.0 / sqrt(static_cast<double>(rv[ch]) + eps);
    const float v = static_cast<float>(x[i] * gamma[ch] * inv + (beta[ch] - rm[ch] * inv * gamma[ch]));
    y[i] = relu && !(v > 0.f) ? 0.f : v;
  }
}

__global__ void bn_backward_kernel(int n, int c, int hw, const float* __restrict__ x, const float* __restrict__ gamma,
                                   const float* __restrict__ mean, const float* __restrict__ invstd,
                                   const float* __restrict__ dy, float* __restrict__ dx, float* __restrict__ dgamma,
                                   float* __restrict__ dbeta, const float* __restrict__ relu_y) {
  __shared__ double scratch[kThreads];
  const int ch = blockIdx.x;
  const size_t m = static_cast<size_t>(n) * hw;
  auto at = [&](size_t i) { return (i / hw * c + ch) * static_cast<size_t>(hw) + i % hw; };
  // the gradient at the batch norm's output: through the fused ReLU where there is one
  auto grad = [&](size_t j) { return relu_y && !(relu_y[j] > 0.f) ? 0.f : dy[j]; };
  const double mu = mean[ch], inv = invstd[ch];
  double a = 0, b = 0;
  for (size_t i = threadIdx.x; i < m; i += kThreads) {
    a += grad(at(i));
    b += grad(at(i)) * (x[at(i)] - mu) * inv;
  }
  const double sdy = block_sum(a, scratch), sdyx = block_sum(b, scratch);
  if (threadIdx.x == 0) {
    dbeta[ch] += static_cast<float>(sdy);
    dgamma[ch] += static_cast<float>(sdyx);
  }
  const double k = gamma[ch] * inv / m;
  for (size_t i = threadIdx.x; i < m; i += kThreads)
    dx[at(i)] = static_cast<float>(k * (m * grad(at(i)) - sdy - (x[at(i)] - mu) * inv * sdyx));
}

// ------------------------------------------------------------------ small ops
__global__ void relu_forward_kernel(size_t n, const float* __restrict__ x, float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
__global__ void relu_backward_kernel(size_t n, const float* __restrict__ y, const float* __restrict__ dy,
                                     float* __restrict__ dx) {
  ADCORRE_GRID_STRIDE(i, n) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

__device__ __forceinline__ int same_pad(int in) {  // 3x3, stride 2
  const int out = (in + 1) / 2;
  const int total = max((out - 1) * 2 + 3 - in, 0);
  return total / 2;
}

// The maxpool kernels unroll the op table's window: 3x3, stride 2, 'same' padding.
static_assert(kPoolKernel == 3 && kPoolStride == 2, "the CUDA maxpool kernels are written for 3x3 windows, stride 2");

__global__ void maxpool_forward_kernel(int n, int c, int h, int w, const float* __restrict__ x, float* __restrict__ y,
                                       int32_t* __restrict__ argmax) {
  const int oh = (h + 1) / 2, ow = (w + 1) / 2, pt = same_pad(h), pl = same_pad(w);
  const size_t total = static_cast<size_t>(n) * c * oh * ow;
  ADCORRE_GRID_STRIDE(i, total) {
    const int ox = static_cast<int>(i % ow), oy = static_cast<int>(i / ow % oh);
    const size_t nc = i / (static_cast<size_t>(ow) * oh);
    const float* xp = x + nc * h * w;
    float best = -INFINITY;
    int at = -1;
    for (int ky = 0; ky < 3; ++ky) {
      const int iy = oy * 2 + ky - pt;
      if (iy < 0 || iy >= h) continue;
      for (int kx = 0; kx < 3; ++kx) {
        const int ix = ox * 2 + kx - pl;
        if (ix < 0 || ix >= w) continue;
        if (at < 0 || xp[iy * w + ix] > best) {
          best = xp[iy * w + ix];
          at = iy * w + ix;
        }
      }
    }
    y[i] = best;
    argmax[i] = at;
  }
}

// Gather: each input pixel sums the gradients of the outputs that chose it.
__global__ void maxpool_backward_kernel(int n, int c, int h, int w, const int32_t* __restrict__ argmax,
                                        const float* __restrict__ dy, float* __restrict__ dx) {
  const int oh = (h + 1) / 2, ow = (w + 1) / 2, pt = same_pad(h), pl = same_pad(w);
  const size_t total = static_cast<size_t>(n) * c * h * w;
  ADCORRE_GRID_STRIDE(i, total) {
    const int ix = static_cast<int>(i % w), iy = static_cast<int>(i / w % h);
    const size_t nc = i / (static_cast<size_t>(w) * h);
    const int self = iy * w + ix;
    float acc = 0.f;
    for (int ky = 0; ky < 3; ++ky) {
      const int ty = iy + pt - ky;
      if (ty < 0 || ty % 2) continue;
      const int oy = ty / 2;
      if (oy >= oh) continue;
      for (int kx = 0; kx < 3; ++kx) {
        const int tx = ix + pl - kx;
        if (tx < 0 || tx % 2) continue;
        const int ox = tx / 2;
        if (ox >= ow) continue;
        const size_t o = nc * oh * ow + oy * ow + ox;
        if (argmax[o] == self) acc += dy[o];
      }
    }
    dx[i] = acc;
  }
}

__global__ void gap_forward_kernel(size_t nc, int hw, const float* __restrict__ x, float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, nc) {
    double s = 0;
    for (int j = 0; j < hw; ++j) s += x[i * hw + j];
    y[i] = static_cast<float>(s / hw);
  }
}
__global__ void gap_backward_kernel(size_t nc, int hw, const float* __restrict__ dy, float* __restrict__ dx) {
  ADCORRE_GRID_STRIDE(i, nc * hw) dx[i] = dy[i / hw] / hw;
}

__global__ void add_bias_kernel(int n, int out, const float* __restrict__ bias, float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, static_cast<size_t>(n) * out) y[i] += bias[i % out];
}
__global__ void bias_grad_kernel(int n, int out, const float* __restrict__ dy, float* __restrict__ db) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out) return;
  double s = 0;
  for (int i = 0; i < n; ++i) s += dy[static_cast<size_t>(i) * out + o];
  db[o] += static_cast<float>(s);
}

// One warp per row.
__global__ void l2norm_forward_kernel(int rows, int dim, const float* __restrict__ x, float* __restrict__ y,
                                      double eps) {
  const int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;  // never thread 0 (emulation needs that: gpu_portability.cuh)
  const float* xr = x + static_cast<size_t>(r) * dim;
  float s = 0.f;
  for (int j = lane; j < dim; j += 32) s += xr[j] * xr[j];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  const float inv = static_cast<float>(1.0 / sqrt(fmax(static_cast<double>(s), eps)));
  for (int j = lane; j < dim; j += 32) y[static_cast<size_t>(r) * dim + j] = xr[j] * inv;
}
__global__ void l2norm_backward_kernel(int rows, int dim, const float* __restrict__ x, const float* __restrict__ y,
                                       const float* __restrict__ dy, float* __restrict__ dx, double eps) {
  const int r = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (r >= rows) return;  // never thread 0 (emulation needs that: gpu_portability.cuh)
  const size_t at = static_cast<size_t>(r) * dim;
  float s = 0.f, yd = 0.f;
  for (int j = lane; j < dim; j += 32) {
    s += x[at + j] * x[at + j];
    yd += y[at + j] * dy[at + j];
  }
  for (int o = 16; o > 0; o >>= 1) {
    s += __shfl_xor_sync(0xffffffffu, s, o);
    yd += __shfl_xor_sync(0xffffffffu, yd, o);
  }
  const bool clamped = s < eps;
  const float inv = static_cast<float>(1.0 / sqrt(fmax(static_cast<double>(s), eps)));
  for (int j = lane; j < dim; j += 32) dx[at + j] = clamped ? dy[at + j] * inv : (dy[at + j] - y[at + j] * yd) * inv;
}

// targets: n x classes soft targets, or null for the one-hot labels (ops.h)
__global__ void softmax_ce_forward_kernel(int n, int classes, const float* __restrict__ z,
                                          const int32_t* __restrict__ labels, const float* __restrict__ targets,
                                          float* __restrict__ p, double* __restrict__ losses) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float* zi = z + static_cast<size_t>(i) * classes;
  double mx = zi[0];
  for (int c = 1; c < classes; ++c) mx = fmax(mx, static_cast<double>(zi[c]));
  double s = 0;
  for (int c = 0; c < classes; ++c) s += exp(zi[c] - mx);
  for (int c = 0; c < classes; ++c) p[static_cast<size_t>(i) * classes + c] = static_cast<float>(exp(zi[c] - mx) / s);
  const double log_norm = mx + log(s);
  if (!targets) {
    losses[i] = log_norm - zi[labels[i]];
    return;
  }
  const float* ti = targets + static_cast<size_t>(i) * classes;
  double loss = 0;
  for (int c = 0; c < classes; ++c)
    if (ti[c] != 0) loss += ti[c] * (log_norm - zi[c]);
  losses[i] = loss;
}
__global__ void softmax_ce_backward_kernel(int n, int classes, const float* __restrict__ p,
                                           const int32_t* __restrict__ labels, const float* __restrict__ targets,
                                           double scale, float* __restrict__ dz) {
  const size_t total = static_cast<size_t>(n) * classes;
  ADCORRE_GRID_STRIDE(i, total) {
    const int s = static_cast<int>(i / classes), c = static_cast<int>(i % classes);
    if (!targets) {
      dz[i] = static_cast<float>(scale * (p[i] - (c == labels[s] ? 1.0 : 0.0)) / n);
      continue;
    }
    const float* ts = targets + static_cast<size_t>(s) * classes;
    double mass = 0;  // the row's sum, in the CPU's order (classes is small)
    for (int j = 0; j < classes; ++j) mass += ts[j];
    dz[i] = static_cast<float>(scale * (p[i] * mass - ts[c]) / n);
  }
}

__global__ void adam_kernel(size_t n, float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, double step, double b1, double b2, double eps, double wd) {
  ADCORRE_GRID_STRIDE(i, n) {
    const double gi = g[i] + wd * w[i];
    m[i] = static_cast<float>(b1 * m[i] + (1 - b1) * gi);
    v[i] = static_cast<float>(b2 * v[i] + (1 - b2) * gi * gi);
    w[i] = static_cast<float>(w[i] - step * m[i] / (sqrt(static_cast<double>(v[i])) + eps));
  }
}

// ------------------------------------------------------------------ engine plumbing
// One block per image: (x - mean) / sqrt(var + eps), statistics in double.
__global__ void standardize_kernel(size_t per, const float* __restrict__ x, float* __restrict__ y, double eps) {
  __shared__ double scratch[kThreads];
  const float* img = x + blockIdx.x * per;
  float* out = y + blockIdx.x * per;
  double s = 0;
  for (size_t i = threadIdx.x; i < per; i += kThreads) s += img[i];
  const double mean = block_sum(s, scratch) / per;
  double q = 0;
  for (size_t i = threadIdx.x; i < per; i += kThreads) q += (img[i] - mean) * (img[i] - mean);
  const double inv = 1.0 / sqrt(block_sum(q, scratch) / per + eps);
  for (size_t i = threadIdx.x; i < per; i += kThreads) out[i] = static_cast<float>((img[i] - mean) * inv);
}

__global__ void add_kernel(size_t n, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void add_into_kernel(size_t n, const float* __restrict__ x, float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, n) y[i] += x[i];
}

__global__ void multiply_kernel(size_t n, const float* __restrict__ a, const float* __restrict__ b,
                                float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

__global__ void fill_kernel(size_t n, float* __restrict__ y, float v) { ADCORRE_GRID_STRIDE(i, n) y[i] = v; }

__global__ void copy_columns_kernel(int rows, int f, const float* __restrict__ src, int src_stride, int src_offset,
                                    float* __restrict__ dst, int dst_stride, int dst_offset, bool accumulate) {
  ADCORRE_GRID_STRIDE(i, static_cast<size_t>(rows) * f) {
    const size_t r = i / f, j = i % f;
    const float v = src[r * src_stride + src_offset + j];
    float* out = dst + r * dst_stride + dst_offset + j;
    *out = accumulate ? *out + v : v;
  }
}

// Element j draws SplitMix64 value j + 1 of the seed (common/rng.h), as the CPU's sequential walk.
__global__ void dropout_kernel(size_t n, const float* __restrict__ x, float* __restrict__ y, float* __restrict__ mask,
                               uint64_t seed, double rate, float scale) {
  ADCORRE_GRID_STRIDE(j, n) {
    const double u = splitmix_uniform(splitmix_value(seed, j + 1));
    const float m = u < rate ? 0.f : scale;
    mask[j] = m;
    y[j] = x[j] * m;
  }
}

__global__ void nonfinite_kernel(size_t n, const float* __restrict__ x, int32_t* __restrict__ flag) {
  ADCORRE_GRID_STRIDE(i, n) if (!isfinite(x[i]))* flag = 1;  // a benign race: every writer writes 1
}

__global__ void bn_commit_kernel(int c, const float* __restrict__ mean, const float* __restrict__ invstd,
                                 float* __restrict__ rm, float* __restrict__ rv, double momentum, double eps) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double is = invstd[ch];
  const double var = 1.0 / (is * is) - eps;
  rm[ch] = static_cast<float>(momentum * rm[ch] + (1 - momentum) * mean[ch]);
  rv[ch] = static_cast<float>(momentum * rv[ch] + (1 - momentum) * var);
}

__global__ void sgd_kernel(size_t n, float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                           double lr, double momentum, double wd, bool nesterov) {
  ADCORRE_GRID_STRIDE(i, n) {
    const double gi = g[i] + wd * w[i];
    m[i] = static_cast<float>(momentum * m[i] + gi);
    w[i] = static_cast<float>(w[i] - lr * (nesterov ? gi + momentum * m[i] : m[i]));
  }
}

bool plain_pointwise(const ConvShape& s) {
  return s.k == 1 && s.stride == 1 && s.pad_top == 0 && s.pad_left == 0 && !s.depthwise;
}

}  // namespace

void gemm(bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float* C, bool accumulate,
          cudaStream_t s) {
  dim3 grid((N + TN - 1) / TN, (M + TM - 1) / TM);
  ADCORRE_LAUNCH(gemm_kernel, grid, 256, 0, s, ta, tb, M, N, K, A, B, C, accumulate);
  CHECK_LAUNCH();
}

size_t conv_scratch_floats(const ConvShape& sh) {
  if (sh.depthwise) return 0;
  const size_t NP = static_cast<size_t>(sh.n) * sh.oh * sh.ow;
  return static_cast<size_t>(sh.c) * sh.k * sh.k * NP + static_cast<size_t>(sh.o) * NP;
}

void conv_forward(const ConvShape& sh, const float* x, const float* weight, float* y, float* scratch, cudaStream_t s) {
  if (sh.depthwise) {
    ADCORRE_LAUNCH(depthwise_forward_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.c * sh.oh * sh.ow),
                   kThreads, 0, s, sh, x, weight, y);
    CHECK_LAUNCH();
    return;
  }
  const int P = sh.oh * sh.ow, K = sh.c * sh.k * sh.k, NP = sh.n * P;
  float* cols = scratch;
  float* yp = scratch + static_cast<size_t>(K) * NP;
  if (plain_pointwise(sh))
    ADCORRE_LAUNCH(pack_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.c * P), kThreads, 0, s, sh.n, sh.c, P,
                   x, cols, false);
  else
    ADCORRE_LAUNCH(im2col_kernel, grid_for_strided(static_cast<size_t>(K) * NP), kThreads, 0, s, sh, x, cols);
  CHECK_LAUNCH();
  gemm(false, false, sh.o, NP, K, weight, cols, yp, false, s);
  ADCORRE_LAUNCH(pack_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.o * P), kThreads, 0, s, sh.n, sh.o, P, yp,
                 y, true);
  CHECK_LAUNCH();
}

void conv_backward(const ConvShape& sh, const float* x, const float* weight, const float* dy, float* dx, float* dweight,
                   float* scratch, cudaStream_t s) {
  if (sh.depthwise) {
    ADCORRE_LAUNCH(depthwise_backward_input_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.c * sh.h * sh.w),
                   kThreads, 0, s, sh, weight, dy, dx);
    CHECK_LAUNCH();
    ADCORRE_LAUNCH(depthwise_backward_weight_kernel, sh.c * sh.k * sh.k, kThreads, 0, s, sh, x, dy, dweight);
    CHECK_LAUNCH();
    return;
  }
  const int P = sh.oh * sh.ow, K = sh.c * sh.k * sh.k, NP = sh.n * P;
  float* cols = scratch;
  float* dyp = scratch + static_cast<size_t>(K) * NP;
  const bool plain = plain_pointwise(sh);
  if (plain)
    ADCORRE_LAUNCH(pack_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.c * P), kThreads, 0, s, sh.n, sh.c, P,
                   x, cols, false);
  else
    ADCORRE_LAUNCH(im2col_kernel, grid_for_strided(static_cast<size_t>(K) * NP), kThreads, 0, s, sh, x, cols);
  CHECK_LAUNCH();
  ADCORRE_LAUNCH(pack_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.o * P), kThreads, 0, s, sh.n, sh.o, P, dy,
                 dyp, false);
  CHECK_LAUNCH();
  gemm(false, true, sh.o, K, NP, dyp, cols, dweight, true, s);  // dW += dY' cols^T
  if (!dx) return;                                              // the network's input: no gradient wanted
  gemm(true, false, K, NP, sh.o, weight, dyp, cols, false, s);  // dcols = W^T dY'
  if (plain)
    ADCORRE_LAUNCH(pack_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.c * P), kThreads, 0, s, sh.n, sh.c, P,
                   cols, dx, true);
  else
    ADCORRE_LAUNCH(col2im_kernel, grid_for_strided(static_cast<size_t>(sh.n) * sh.c * sh.h * sh.w), kThreads, 0, s, sh,
                   cols, dx);
  CHECK_LAUNCH();
}

void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma, const float* beta, float* y,
                             float* mean, float* invstd, double eps, bool relu, cudaStream_t s) {
  ADCORRE_LAUNCH(bn_train_kernel, c, kThreads, 0, s, n, c, hw, x, gamma, beta, y, mean, invstd, eps, relu);
  CHECK_LAUNCH();
}
void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma, const float* beta,
                            const float* rm, const float* rv, float* y, double eps, bool relu, cudaStream_t s) {
  ADCORRE_LAUNCH(bn_eval_kernel, grid_for_strided(static_cast<size_t>(n) * c * hw), kThreads, 0, s, n, c, hw, x, gamma,
                 beta, rm, rv, y, eps, relu);
  CHECK_LAUNCH();
}
void batchnorm_backward(int n, int c, int hw, const float* x, const float* gamma, const float* mean,
                        const float* invstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                        const float* relu_output, cudaStream_t s) {
  ADCORRE_LAUNCH(bn_backward_kernel, c, kThreads, 0, s, n, c, hw, x, gamma, mean, invstd, dy, dx, dgamma, dbeta,
                 relu_output);
  CHECK_LAUNCH();
}
void relu_forward(size_t count, const float* x, float* y, cudaStream_t s) {
  ADCORRE_LAUNCH(relu_forward_kernel, grid_for_strided(count), kThreads, 0, s, count, x, y);
  CHECK_LAUNCH();
}
void relu_backward(size_t count, const float* y, const float* dy, float* dx, cudaStream_t s) {
  ADCORRE_LAUNCH(relu_backward_kernel, grid_for_strided(count), kThreads, 0, s, count, y, dy, dx);
  CHECK_LAUNCH();
}
void maxpool_forward(int n, int c, int h, int w, const float* x, float* y, int32_t* argmax, cudaStream_t s) {
  ADCORRE_LAUNCH(maxpool_forward_kernel, grid_for_strided(static_cast<size_t>(n) * c * ((h + 1) / 2) * ((w + 1) / 2)),
                 kThreads, 0, s, n, c, h, w, x, y, argmax);
  CHECK_LAUNCH();
}
void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const float* dy, float* dx, cudaStream_t s) {
  ADCORRE_LAUNCH(maxpool_backward_kernel, grid_for_strided(static_cast<size_t>(n) * c * h * w), kThreads, 0, s, n, c, h,
                 w, argmax, dy, dx);
  CHECK_LAUNCH();
}
void gap_forward(int n, int c, int hw, const float* x, float* y, cudaStream_t s) {
  ADCORRE_LAUNCH(gap_forward_kernel, grid_for_strided(static_cast<size_t>(n) * c), kThreads, 0, s,
                 static_cast<size_t>(n) * c, hw, x, y);
  CHECK_LAUNCH();
}
void gap_backward(int n, int c, int hw, const float* dy, float* dx, cudaStream_t s) {
  ADCORRE_LAUNCH(gap_backward_kernel, grid_for_strided(static_cast<size_t>(n) * c * hw), kThreads, 0, s,
                 static_cast<size_t>(n) * c, hw, dy, dx);
  CHECK_LAUNCH();
}
void dense_forward(int n, int in, int out, const float* x, const float* weight, const float* bias, float* y,
                   cudaStream_t s) {
  gemm(false, true, n, out, in, x, weight, y, false, s);
  ADCORRE_LAUNCH(add_bias_kernel, grid_for_strided(static_cast<size_t>(n) * out), kThreads, 0, s, n, out, bias, y);
  CHECK_LAUNCH();
}
void dense_backward(int n, int in, int out, const float* x, const float* weight, const float* dy, float* dx,
                    float* dweight, float* dbias, cudaStream_t s) {
  gemm(true, false, out, in, n, dy, x, dweight, true, s);
  ADCORRE_LAUNCH(bias_grad_kernel, grid_for(out), kThreads, 0, s, n, out, dy, dbias);
  CHECK_LAUNCH();
  if (dx) gemm(false, false, n, in, out, dy, weight, dx, false, s);
}
void l2norm_forward(int rows, int dim, const float* x, float* y, double eps, cudaStream_t s) {
  ADCORRE_LAUNCH(l2norm_forward_kernel, (rows + 7) / 8, 256, 0, s, rows, dim, x, y, eps);
  CHECK_LAUNCH();
}
void l2norm_backward(int rows, int dim, const float* x, const float* y, const float* dy, float* dx, double eps,
                     cudaStream_t s) {
  ADCORRE_LAUNCH(l2norm_backward_kernel, (rows + 7) / 8, 256, 0, s, rows, dim, x, y, dy, dx, eps);
  CHECK_LAUNCH();
}
void softmax_ce_forward(int n, int classes, const float* logits, const int32_t* labels, const float* targets,
                        float* probs, double* losses, cudaStream_t s) {
  ADCORRE_LAUNCH(softmax_ce_forward_kernel, grid_for(n), kThreads, 0, s, n, classes, logits, labels, targets, probs,
                 losses);
  CHECK_LAUNCH();
}
void softmax_ce_backward(int n, int classes, const float* probs, const int32_t* labels, const float* targets,
                         double scale, float* dlogits, cudaStream_t s) {
  ADCORRE_LAUNCH(softmax_ce_backward_kernel, grid_for_strided(static_cast<size_t>(n) * classes), kThreads, 0, s, n,
                 classes, probs, labels, targets, scale, dlogits);
  CHECK_LAUNCH();
}
void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                 double eps, double weight_decay, cudaStream_t s) {
  ADCORRE_LAUNCH(adam_kernel, grid_for_strided(count), kThreads, 0, s, count, w, g, m, v, step, beta1, beta2, eps,
                 weight_decay);
  CHECK_LAUNCH();
}

void standardize(int n, size_t per_image, const float* x, float* y, double eps, cudaStream_t s) {
  ADCORRE_LAUNCH(standardize_kernel, n, kThreads, 0, s, per_image, x, y, eps);
  CHECK_LAUNCH();
}
void add_forward(size_t count, const float* a, const float* b, float* y, cudaStream_t s) {
  ADCORRE_LAUNCH(add_kernel, grid_for_strided(count), kThreads, 0, s, count, a, b, y);
  CHECK_LAUNCH();
}
void add_into(size_t count, const float* x, float* y, cudaStream_t s) {
  ADCORRE_LAUNCH(add_into_kernel, grid_for_strided(count), kThreads, 0, s, count, x, y);
  CHECK_LAUNCH();
}
void multiply(size_t count, const float* a, const float* b, float* y, cudaStream_t s) {
  ADCORRE_LAUNCH(multiply_kernel, grid_for_strided(count), kThreads, 0, s, count, a, b, y);
  CHECK_LAUNCH();
}
void fill(size_t count, float* y, float value, cudaStream_t s) {
  ADCORRE_LAUNCH(fill_kernel, grid_for_strided(count), kThreads, 0, s, count, y, value);
  CHECK_LAUNCH();
}
void copy_columns(int rows, int f, const float* src, int src_stride, int src_offset, float* dst, int dst_stride,
                  int dst_offset, bool accumulate, cudaStream_t s) {
  ADCORRE_LAUNCH(copy_columns_kernel, grid_for_strided(static_cast<size_t>(rows) * f), kThreads, 0, s, rows, f, src,
                 src_stride, src_offset, dst, dst_stride, dst_offset, accumulate);
  CHECK_LAUNCH();
}
void dropout_forward(size_t count, const float* x, float* y, float* mask, uint64_t seed, double rate, cudaStream_t s) {
  ADCORRE_LAUNCH(dropout_kernel, grid_for_strided(count), kThreads, 0, s, count, x, y, mask, seed, rate,
                 static_cast<float>(1.0 / (1.0 - rate)));
  CHECK_LAUNCH();
}
void flag_nonfinite(size_t count, const float* x, int32_t* flag, cudaStream_t s) {
  ADCORRE_LAUNCH(nonfinite_kernel, grid_for_strided(count), kThreads, 0, s, count, x, flag);
  CHECK_LAUNCH();
}
void batchnorm_commit(int c, const float* mean, const float* invstd, float* running_mean, float* running_var,
                      double momentum, double eps, cudaStream_t s) {
  ADCORRE_LAUNCH(bn_commit_kernel, (c + kThreads - 1) / kThreads, kThreads, 0, s, c, mean, invstd, running_mean,
                 running_var, momentum, eps);
  CHECK_LAUNCH();
}
void sgd_momentum_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                         double weight_decay, bool nesterov, cudaStream_t s) {
  ADCORRE_LAUNCH(sgd_kernel, grid_for_strided(count), kThreads, 0, s, count, w, g, m, lr, momentum, weight_decay,
                 nesterov);
  CHECK_LAUNCH();
}

}  // namespace adcorre::engine::cuda
