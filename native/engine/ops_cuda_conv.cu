// Convolutions of the CUDA backend (ops_cuda.cuh): dense ones as one GEMM
// over the channel-major packed input [c][n*P] (im2col, or a plain repack
// for pointwise ones); depthwise ones direct. Backward scatters (col2im) are
// written as gathers and the depthwise weight gradient as a fixed-order
// block reduction: no float atomics.
#include "ops_cuda_internal.cuh"

namespace adcorre::engine::cuda {

namespace {

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

bool plain_pointwise(const ConvShape& s) {
  return s.k == 1 && s.stride == 1 && s.pad_top == 0 && s.pad_left == 0 && !s.depthwise;
}

}  // namespace

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

}  // namespace adcorre::engine::cuda
