// Elementwise ops of the CUDA backend (ops_cuda.cuh): ReLU, adds, products,
// fills, concatenation's column copies, dropout (SplitMix64 per element, the
// CPU's sequence), the finiteness flag, and the optimizer updates (Adam, SGD
// with momentum). Grid-stride loops, one element per thread and pass.
#include "ops_cuda_internal.cuh"

#include "../common/rng.h"

namespace adcorre::engine::cuda {

namespace {

__global__ void relu_forward_kernel(size_t n, const float* __restrict__ x, float* __restrict__ y) {
  ADCORRE_GRID_STRIDE(i, n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

__global__ void relu_backward_kernel(size_t n, const float* __restrict__ y, const float* __restrict__ dy,
                                     float* __restrict__ dx) {
  ADCORRE_GRID_STRIDE(i, n) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
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

__global__ void sgd_kernel(size_t n, float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                           double lr, double momentum, double wd, bool nesterov) {
  ADCORRE_GRID_STRIDE(i, n) {
    const double gi = g[i] + wd * w[i];
    m[i] = static_cast<float>(momentum * m[i] + gi);
    w[i] = static_cast<float>(w[i] - lr * (nesterov ? gi + momentum * m[i] : m[i]));
  }
}

}  // namespace

void relu_forward(size_t count, const float* x, float* y, cudaStream_t s) {
  ADCORRE_LAUNCH(relu_forward_kernel, grid_for_strided(count), kThreads, 0, s, count, x, y);
  CHECK_LAUNCH();
}
void relu_backward(size_t count, const float* y, const float* dy, float* dx, cudaStream_t s) {
  ADCORRE_LAUNCH(relu_backward_kernel, grid_for_strided(count), kThreads, 0, s, count, y, dy, dx);
  CHECK_LAUNCH();
}
void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                 double eps, double weight_decay, cudaStream_t s) {
  ADCORRE_LAUNCH(adam_kernel, grid_for_strided(count), kThreads, 0, s, count, w, g, m, v, step, beta1, beta2, eps,
                 weight_decay);
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
void sgd_momentum_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                         double weight_decay, bool nesterov, cudaStream_t s) {
  ADCORRE_LAUNCH(sgd_kernel, grid_for_strided(count), kThreads, 0, s, count, w, g, m, lr, momentum, weight_decay,
                 nesterov);
  CHECK_LAUNCH();
}

}  // namespace adcorre::engine::cuda
