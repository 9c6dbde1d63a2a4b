// Max pool, global average pool, dense layers and the softmax cross-entropy
// of the CUDA backend (ops_cuda.cuh): the max-pool backward a gather (each
// input sums the outputs that chose it), the dense layers on the GEMM,
// bias gradients and average pools summed in double in a fixed order.
#include "ops_cuda_internal.cuh"

#include "op_table.h"  // kPoolKernel, kPoolStride

namespace adcorre::engine::cuda {

namespace {

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

}  // namespace

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

}  // namespace adcorre::engine::cuda
