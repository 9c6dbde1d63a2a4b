// Normalisations of the CUDA backend (ops_cuda.cuh): batch norm (a block per
// channel, statistics in double in a fixed order; the ReLU that follows
// fused in) and its statistics commit, L2 normalisation (a warp per row),
// and the input pipeline's per-image standardisation (a block per image).
#include "ops_cuda_internal.cuh"

namespace adcorre::engine::cuda {

namespace {

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

__global__ void bn_commit_kernel(int c, const float* __restrict__ mean, const float* __restrict__ invstd,
                                 float* __restrict__ rm, float* __restrict__ rv, double momentum, double eps) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double is = invstd[ch];
  const double var = 1.0 / (is * is) - eps;
  rm[ch] = static_cast<float>(momentum * rm[ch] + (1 - momentum) * mean[ch]);
  rv[ch] = static_cast<float>(momentum * rv[ch] + (1 - momentum) * var);
}

}  // namespace

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
void l2norm_forward(int rows, int dim, const float* x, float* y, double eps, cudaStream_t s) {
  ADCORRE_LAUNCH(l2norm_forward_kernel, (rows + 7) / 8, 256, 0, s, rows, dim, x, y, eps);
  CHECK_LAUNCH();
}
void l2norm_backward(int rows, int dim, const float* x, const float* y, const float* dy, float* dx, double eps,
                     cudaStream_t s) {
  ADCORRE_LAUNCH(l2norm_backward_kernel, (rows + 7) / 8, 256, 0, s, rows, dim, x, y, dy, dx, eps);
  CHECK_LAUNCH();
}
void standardize(int n, size_t per_image, const float* x, float* y, double eps, cudaStream_t s) {
  ADCORRE_LAUNCH(standardize_kernel, n, kThreads, 0, s, per_image, x, y, eps);
  CHECK_LAUNCH();
}
void batchnorm_commit(int c, const float* mean, const float* invstd, float* running_mean, float* running_var,
                      double momentum, double eps, cudaStream_t s) {
  ADCORRE_LAUNCH(bn_commit_kernel, (c + kThreads - 1) / kThreads, kThreads, 0, s, c, mean, invstd, running_mean,
                 running_var, momentum, eps);
  CHECK_LAUNCH();
}

}  // namespace adcorre::engine::cuda
