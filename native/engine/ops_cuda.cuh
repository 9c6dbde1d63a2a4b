// Training-engine operations, CUDA backend: the same operations as ops.h
// (float, device pointers, a stream each), compared with the CPU versions by
// backend_test.cpp through CudaBackend (backend_cuda.cu), which wraps them
// for the executor. Defined by family as the CPU's: ops_cuda_gemm.cu,
// ops_cuda_conv.cu, ops_cuda_norm.cu, ops_cuda_pool_dense.cu and
// ops_cuda_elementwise.cu (shared helpers: ops_cuda_internal.cuh).
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
#pragma once

#include <cstddef>
#include <cstdint>

#include "../common/cuda_common.cuh"
#include "ops.h"

namespace adcorre::engine::cuda {

constexpr int kBlockThreads = cuda_common::kBlockThreads;
using cuda_common::block_sum;  // deterministic block sum, shared by the kernels of the engine

void gemm(bool trans_a, bool trans_b, int M, int N, int K, const float* A, const float* B, float* C, bool accumulate,
          cudaStream_t s);

// scratch: conv_scratch_floats(shape) floats of device memory
size_t conv_scratch_floats(const ConvShape& shape);
void conv_forward(const ConvShape& shape, const float* x, const float* weight, float* y, float* scratch,
                  cudaStream_t s);
// dx may be null (not for depthwise) when the input's gradient is not wanted.
void conv_backward(const ConvShape& shape, const float* x, const float* weight, const float* dy, float* dx,
                   float* dweight, float* scratch, cudaStream_t s);

// relu / relu_output: the ReLU that follows fused in, as in ops.h
void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma, const float* beta, float* y,
                             float* mean, float* invstd, double eps, bool relu, cudaStream_t s);
void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y, double eps, bool relu,
                            cudaStream_t s);
void batchnorm_backward(int n, int c, int hw, const float* x, const float* gamma, const float* mean,
                        const float* invstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                        const float* relu_output, cudaStream_t s);

void relu_forward(size_t count, const float* x, float* y, cudaStream_t s);
void relu_backward(size_t count, const float* y, const float* dy, float* dx, cudaStream_t s);
void maxpool_forward(int n, int c, int h, int w, const float* x, float* y, int32_t* argmax, cudaStream_t s);
void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const float* dy, float* dx, cudaStream_t s);
void gap_forward(int n, int c, int hw, const float* x, float* y, cudaStream_t s);
void gap_backward(int n, int c, int hw, const float* dy, float* dx, cudaStream_t s);
void dense_forward(int n, int in, int out, const float* x, const float* weight, const float* bias, float* y,
                   cudaStream_t s);
void dense_backward(int n, int in, int out, const float* x, const float* weight, const float* dy, float* dx,
                    float* dweight, float* dbias, cudaStream_t s);
void l2norm_forward(int rows, int dim, const float* x, float* y, double eps, cudaStream_t s);
void l2norm_backward(int rows, int dim, const float* x, const float* y, const float* dy, float* dx, double eps,
                     cudaStream_t s);
// losses: n per-sample cross-entropies (the caller averages); targets: n x classes soft
// targets, or null for the one-hot labels (as softmax_ce_* in ops.h)
void softmax_ce_forward(int n, int classes, const float* logits, const int32_t* labels, const float* targets,
                        float* probs, double* losses, cudaStream_t s);
void softmax_ce_backward(int n, int classes, const float* probs, const int32_t* labels, const float* targets,
                         double scale, float* dlogits, cudaStream_t s);
// Adam with bias correction folded into step = lr * sqrt(1 - b2^t) / (1 - b1^t)
void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                 double eps, double weight_decay, cudaStream_t s);

// The executor's plumbing, as the CpuBackend versions (backend.h documents each).
void standardize(int n, size_t per_image, const float* x, float* y, double eps, cudaStream_t s);
void add_forward(size_t count, const float* a, const float* b, float* y, cudaStream_t s);
void add_into(size_t count, const float* x, float* y, cudaStream_t s);
void multiply(size_t count, const float* a, const float* b, float* y, cudaStream_t s);
void fill(size_t count, float* y, float value, cudaStream_t s);
void copy_columns(int rows, int f, const float* src, int src_stride, int src_offset, float* dst, int dst_stride,
                  int dst_offset, bool accumulate, cudaStream_t s);
void dropout_forward(size_t count, const float* x, float* y, float* mask, uint64_t seed, double rate, cudaStream_t s);
void flag_nonfinite(size_t count, const float* x, int32_t* flag, cudaStream_t s);
void batchnorm_commit(int c, const float* mean, const float* invstd, float* running_mean, float* running_var,
                      double momentum, double eps, cudaStream_t s);
void sgd_momentum_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                         double weight_decay, bool nesterov, cudaStream_t s);

}  // namespace adcorre::engine::cuda
