// What one kind of processor supplies to the training engine (ggml's backend
// shape): its memory, copies between it and the host, and the forward and
// backward kernel of every op of the program. The executor (executor.cpp)
// owns everything else: the walk, the backward order and gradient flow, the
// loss call, the optimizer step, batch-norm statistics, NaN detection and the
// memory plan. Implemented by CpuBackend (backend_cpu.cpp, the ops of ops.h)
// and CudaBackend (backend_cuda.cu, the ops of ops_cuda.cuh).
//
// Every pointer an op takes lives in the backend's memory (device memory for
// CUDA), inside the block allocate() returned. Ops are queued in order; what
// download() writes to the host is there once synchronize() returns.
// Layouts as in ops.h: activations NCHW, convolution weights OIHW, dense
// weights [out][in], embeddings [n][k][d].
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../common/backend_error.h"
#include "../common/cuda_devices.h"  // cuda_info(), cuda_usable(): whether make_cuda_backend can succeed
#include "../loss/adcorre.h"
#include "ops.h"
#include "precision.h"

namespace adcorre::engine {

// One Ad-Corre forward and backward: on the engine's [n][k][d] embeddings
// (sample_major), or on the standalone loss's [k][n][d] ones (host_loss.h).
struct AdcorreCall {
  const float* embeddings;     // backend: [n][k][d], or [k][n][d] without shape.sample_major
  const int32_t* labels;       // backend: [n]
  const int32_t* labels_host;  // the same labels on the host (the class plan is made there)
  const float* rho_host;       // host: [classes] 1 - class accuracy, or null for uniform attention
  Shape shape;                 // the executor sets sample_major
  Weights weights;
  float* grad;      // backend: dLoss/dE in the embeddings' layout; null: forward only
  double* parts;    // backend: 4 doubles {loss, fd, md, ed}
  void* workspace;  // backend: loss_workspace_bytes(shape) bytes
};

// Alignment of the block a backend allocates and of every buffer the
// executor (and a backend's own workspace layout) places inside it.
constexpr size_t kBufferAlignment = 256;
inline size_t align_up(size_t bytes) { return (bytes + kBufferAlignment - 1) & ~(kBufferAlignment - 1); }

class Backend {
 public:
  virtual ~Backend() = default;
  // "cpu", or "cuda:0 (NVIDIA H200)"
  virtual std::string name() const = 0;
  // what the GEMM-based ops compute in (precision.h): bf16 on the CPU backend only, for now
  virtual Precision precision() const { return Precision::Fp32; }

  // ---- memory
  // One block for everything the executor plans (kBufferAlignment-aligned); null
  // when there is not enough memory, so the caller can say what it needed.
  virtual void* try_allocate(size_t bytes) = 0;
  virtual void release(void* block) noexcept = 0;
  // e.g. "812.0 MiB of 143771.0 MiB are free": for the out-of-memory message
  virtual std::string memory_state() const = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* dst, size_t bytes) = 0;
  virtual void synchronize() = 0;
  // Workspace the executor plans for the ops that need one (0: none).
  virtual size_t conv_scratch_floats(const ConvShape& shape) const = 0;
  virtual size_t loss_workspace_bytes(const Shape& shape) const = 0;

  // ---- input pipeline: per-image (x - mean) / sqrt(var + eps)
  virtual void standardize(int n, size_t per_image, const float* x, float* y, double eps) = 0;

  // ---- layers (forward / backward pairs, as ops.h)
  virtual void conv_forward(const ConvShape& s, const float* x, const float* weight, float* y, float* scratch) = 0;
  // dx may be null (not for depthwise): the input's gradient is not wanted
  virtual void conv_backward(const ConvShape& s, const float* x, const float* weight, const float* dy, float* dx,
                             float* dweight, float* scratch) = 0;
  // relu: y = max(0, bn(x)), the ReLU that follows fused in; relu_output: that y for the fused pair's
  // backward, dy then being the gradient at the ReLU's output (null: a plain batch norm)
  virtual void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma, const float* beta,
                                       float* y, float* mean, float* invstd, double eps, bool relu) = 0;
  virtual void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma, const float* beta,
                                      const float* running_mean, const float* running_var, float* y, double eps,
                                      bool relu) = 0;
  virtual void batchnorm_backward(int n, int c, int hw, const float* x, const float* gamma, const float* mean,
                                  const float* invstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                                  const float* relu_output) = 0;
  // running = momentum * running + (1 - momentum) * batch (variance from invstd)
  virtual void batchnorm_commit(int c, const float* mean, const float* invstd, float* running_mean, float* running_var,
                                double momentum, double eps) = 0;
  virtual void relu_forward(size_t count, const float* x, float* y) = 0;
  virtual void relu_backward(size_t count, const float* y, const float* dy, float* dx) = 0;
  virtual void maxpool_forward(int n, int c, int h, int w, const float* x, float* y, int32_t* argmax) = 0;
  virtual void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const float* dy, float* dx) = 0;
  virtual void gap_forward(int n, int c, int hw, const float* x, float* y) = 0;
  virtual void gap_backward(int n, int c, int hw, const float* dy, float* dx) = 0;
  virtual void dense_forward(int n, int in, int out, const float* x, const float* weight, const float* bias,
                             float* y) = 0;
  virtual void dense_backward(int n, int in, int out, const float* x, const float* weight, const float* dy, float* dx,
                              float* dweight, float* dbias) = 0;
  virtual void l2norm_forward(int rows, int dim, const float* x, float* y, double eps) = 0;
  virtual void l2norm_backward(int rows, int dim, const float* x, const float* y, const float* dy, float* dx,
                               double eps) = 0;
  // Element j of the mask is 0 when SplitMix64 value j + 1 of seed (common/rng.h) is below rate, else 1 / (1 - rate).
  virtual void dropout_forward(size_t count, const float* x, float* y, float* mask, uint64_t seed, double rate) = 0;

  // ---- elementwise and data movement
  virtual void add(size_t count, const float* a, const float* b, float* y) = 0;  // y = a + b
  virtual void add_into(size_t count, const float* x, float* y) = 0;             // y += x
  virtual void multiply(size_t count, const float* a, const float* b, float* y) = 0;
  virtual void copy(size_t count, const float* x, float* y) = 0;  // y = x
  virtual void fill(size_t count, float* y, float value) = 0;
  // rows x f values from src (row stride src_stride, offset src_offset) to dst:
  // concatenation and its gradient; accumulate adds instead of writing.
  virtual void copy_columns(int rows, int f, const float* src, int src_stride, int src_offset, float* dst,
                            int dst_stride, int dst_offset, bool accumulate) = 0;
  // *flag = 1 if any of x[0, count) is not finite (never cleared here)
  virtual void flag_nonfinite(size_t count, const float* x, int32_t* flag) = 0;

  // ---- losses
  // probs and per-sample cross-entropies (losses, n doubles); targets may be null (one-hot labels)
  virtual void softmax_ce_forward(int n, int classes, const float* logits, const int32_t* labels, const float* targets,
                                  float* probs, double* losses) = 0;
  virtual void softmax_ce_backward(int n, int classes, const float* probs, const int32_t* labels, const float* targets,
                                   double scale, float* dlogits) = 0;
  virtual void adcorre_loss(const AdcorreCall& call) = 0;

  // ---- optimizers (ops.h: adam_update, sgd_momentum_update)
  virtual void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1,
                           double beta2, double eps, double weight_decay) = 0;
  virtual void sgd_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                          double weight_decay, bool nesterov = false) = 0;
};

std::unique_ptr<Backend> make_cpu_backend(Precision precision = Precision::Fp32);
// Throws adcorre::BackendError where CUDA is not compiled in or not usable,
// and std::invalid_argument for a device index this machine does not have.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace adcorre::engine
