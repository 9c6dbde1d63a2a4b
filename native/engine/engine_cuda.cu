// The training engine on CUDA: the program of engine.cpp executed with every
// tensor in GPU memory (declared in engine.h as make_cuda_engine).
//
// Design note. One cudaMalloc at construction holds everything: activations
// and their gradients for max_batch samples, parameters, gradients, Adam
// moments, batch-norm and dropout state, max-pool switches, convolution
// scratch and the Ad-Corre workspace. There is no allocation in the steady
// state, and a batch too large for the card fails at once, with the sizes.
// A step uploads the batch and its labels, then runs on one stream: forward,
// softmax cross-entropy, Ad-Corre through the loss kernels of ../cuda on the
// device-resident embeddings, backward, a finiteness check and the optimizer.
// Only the probabilities (n x C), per-sample losses, the four Ad-Corre scalars
// and a flag come back. The operations are those of ops_cuda.cu, accumulated
// in the CPU executor's order, so a step agrees with the CPU to float rounding.
// Gradients flow as on the CPU (gradient_flow in engine.h): written in place
// where a tensor has one reader, else accumulated through a scratch buffer.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "../common/rng.h"
#include "../loss/adcorre.h"
#include "engine.h"
#include "ops_cuda.cuh"

namespace adcorre::engine {

namespace {

#define CUDA_CHECK(call) ADCORRE_CUDA_CHECK(call)
#define LAUNCH_CHECK(name) ADCORRE_LAUNCH_CHECK(name)

constexpr int kThreads = cuda::kBlockThreads;
// every kernel here loops with GRID_STRIDE, so the grid may be capped
inline unsigned grid_for(size_t n) { return cuda_common::grid_for_strided(n); }

#define GRID_STRIDE(i, count) ADCORRE_GRID_STRIDE(i, count)

// ------------------------------------------------------------------ kernels

// One block per image: (x - mean) / sqrt(var + eps), statistics in double.
__global__ void standardize_kernel(size_t per, const float* __restrict__ x, float* __restrict__ y, double eps) {
  __shared__ double scratch[kThreads];
  const float* img = x + blockIdx.x * per;
  float* out = y + blockIdx.x * per;
  double s = 0;
  for (size_t i = threadIdx.x; i < per; i += kThreads) s += img[i];
  const double mean = cuda::block_sum(s, scratch) / per;
  double q = 0;
  for (size_t i = threadIdx.x; i < per; i += kThreads) q += (img[i] - mean) * (img[i] - mean);
  const double inv = 1.0 / sqrt(cuda::block_sum(q, scratch) / per + eps);
  for (size_t i = threadIdx.x; i < per; i += kThreads) out[i] = static_cast<float>((img[i] - mean) * inv);
}

__global__ void add_kernel(size_t n, const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ y) {
  GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void accumulate_kernel(size_t n, float* __restrict__ d, const float* __restrict__ g) {
  GRID_STRIDE(i, n) d[i] += g[i];
}

__global__ void multiply_kernel(size_t n, const float* __restrict__ a, const float* __restrict__ b,
                                float* __restrict__ y) {
  GRID_STRIDE(i, n) y[i] = a[i] * b[i];
}

__global__ void fill_kernel(size_t n, float* __restrict__ y, float v) { GRID_STRIDE(i, n) y[i] = v; }

// rows x f values between row-strided buffers: concatenation and its gradient.
__global__ void copy_columns_kernel(int rows, int f, const float* __restrict__ src, int src_stride, int src_offset,
                                    float* __restrict__ dst, int dst_stride, int dst_offset, bool accumulate) {
  GRID_STRIDE(i, static_cast<size_t>(rows) * f) {
    const size_t r = i / f, j = i % f;
    const float v = src[r * src_stride + src_offset + j];
    float* out = dst + r * dst_stride + dst_offset + j;
    *out = accumulate ? *out + v : v;
  }
}

// Dropout with the CPU's mask: element j draws SplitMix64 value j + 1 of the seed (common/rng.h).
__global__ void dropout_kernel(size_t n, const float* __restrict__ x, float* __restrict__ y, float* __restrict__ mask,
                               uint64_t seed, double rate, float scale) {
  GRID_STRIDE(j, n) {
    const double u = splitmix_uniform(splitmix_value(seed, j + 1));
    const float m = u < rate ? 0.f : scale;
    mask[j] = m;
    y[j] = x[j] * m;
  }
}

// [n][k][d] <-> [k][n][d] (the loss's layout)
__global__ void transpose_heads_kernel(int n, int k, int d, const float* __restrict__ src, float* __restrict__ dst,
                                       bool to_loss) {
  GRID_STRIDE(i, static_cast<size_t>(n) * k * d) {
    const int t = static_cast<int>(i % d), j = static_cast<int>(i / d % k),
              a = static_cast<int>(i / (static_cast<size_t>(d) * k));
    const size_t engine_at = i, loss_at = (static_cast<size_t>(j) * n + a) * d + t;
    if (to_loss)
      dst[loss_at] = src[engine_at];
    else
      dst[engine_at] = src[loss_at];
  }
}

__global__ void nonfinite_kernel(size_t n, const float* __restrict__ x, int* __restrict__ flag) {
  GRID_STRIDE(i, n) if (!isfinite(x[i]))* flag = 1;  // a benign race: every writer writes 1
}

__global__ void commit_stats_kernel(int c, const float* __restrict__ mean, const float* __restrict__ invstd,
                                    float* __restrict__ rm, float* __restrict__ rv, double momentum, double eps) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  const double is = invstd[ch];
  const double var = 1.0 / (is * is) - eps;
  rm[ch] = static_cast<float>(momentum * rm[ch] + (1 - momentum) * mean[ch]);
  rv[ch] = static_cast<float>(momentum * rv[ch] + (1 - momentum) * var);
}

__global__ void sgd_kernel(size_t n, float* __restrict__ w, const float* __restrict__ g, float* __restrict__ m,
                           double lr, double momentum, double wd) {
  GRID_STRIDE(i, n) {
    const double gi = g[i] + wd * w[i];
    m[i] = static_cast<float>(momentum * m[i] + gi);
    w[i] = static_cast<float>(w[i] - lr * m[i]);
  }
}

double mib(size_t bytes) { return bytes / 1048576.0; }

// Lays buffers out in one allocation (256-byte aligned), by category for the
// out-of-memory message.
class Arena {
 public:
  enum Category { kActivations, kParameters, kWorkspace };
  template <typename T>
  void add(T** where, size_t count, Category c) {
    const size_t bytes = (count * sizeof(T) + 255) & ~size_t(255);
    items_.push_back({reinterpret_cast<void**>(where), total_});
    total_ += bytes;
    by_category_[c] += bytes;
  }
  size_t total() const { return total_; }
  size_t bytes(Category c) const { return by_category_[c]; }
  void place(char* base) {
    for (const auto& it : items_) *it.where = base + it.offset;
  }

 private:
  struct Item {
    void** where;
    size_t offset;
  };
  std::vector<Item> items_;
  size_t total_ = 0;
  size_t by_category_[3] = {0, 0, 0};
};

class CudaEngine : public Executor {
 public:
  CudaEngine(const ProgramDesc& program, int max_batch, int device)
      : p_(program), max_batch_(max_batch), device_(device), sh_(infer_shapes(p_)), flow_(gradient_flow(p_)) {
    if (max_batch < 1) throw std::invalid_argument("max_batch must be >= 1");
    if (!cuda_usable()) throw BackendError("CUDA is not usable: " + cuda_info().error);
    int count = 0;
    CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
      throw std::invalid_argument("CUDA device " + std::to_string(device) + " does not exist (this machine has " +
                                  std::to_string(count) + ")");
    CUDA_CHECK(cudaSetDevice(device_));
    try {
      CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      allocate();
      CUDA_CHECK(cudaMemsetAsync(base_, 0, bytes_, stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));
    } catch (...) {
      release();  // a constructor that throws gets no destructor call
      throw;
    }
    probs_h_.resize(static_cast<size_t>(max_batch_) * p_.classes);
    losses_h_.resize(max_batch_);
  }

  ~CudaEngine() override { release(); }

  int max_batch() const override { return max_batch_; }
  size_t param_count() const override { return p_.param_sizes.size(); }
  size_t param_size(size_t i) const override { return p_.param_sizes[i]; }
  void read_param(size_t i, float* out) override { download(out, params_[i], p_.param_sizes[i]); }
  void write_param(size_t i, const float* in) override { upload(params_[i], in, p_.param_sizes[i]); }
  void read_moments(size_t i, float* m, float* v) override {
    download(m, m_[i], p_.param_sizes[i]);
    download(v, v_[i], p_.param_sizes[i]);
  }
  void write_moments(size_t i, const float* m, const float* v) override {
    upload(m_[i], m, p_.param_sizes[i]);
    upload(v_[i], v, p_.param_sizes[i]);
  }
  void read_grad(size_t i, float* out) override { download(out, grads_[i], p_.param_sizes[i]); }
  int64_t steps() const override { return steps_; }
  void set_steps(int64_t s) override { steps_ = s; }

  StepResult train_step(const float* images, const int32_t* labels, int n, const StepOptions& o,
                        int32_t* predictions) override;
  void predict(const float* images, int n, float* probs, float* embeddings) override;

 private:
  // no throwing here: the destructor calls it, and errors have nowhere to go
  void release() noexcept {
    cudaSetDevice(device_);
    if (stream_) cudaStreamDestroy(stream_);
    if (base_) cudaFree(base_);
    stream_ = nullptr;
    base_ = nullptr;
  }
  void allocate();
  void upload(float* dst, const float* src, size_t count) {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void download(float* dst, const float* src, size_t count) {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void prepare_input(const float* images, int n);
  void forward(int n, bool train, uint32_t dropout_seed);
  void backward(int n);
  void accumulate(int t, const float* g, int n) {
    const size_t count = sh_.per_sample[t] * n;
    accumulate_kernel<<<grid_for(count), kThreads, 0, stream_>>>(count, dact_[t], g);
    LAUNCH_CHECK("accumulate_kernel");
  }
  ConvShape conv_shape(const OpDesc& op, int n) const {
    const int x = op.inputs[0];
    return make_conv_shape(n, sh_.c[x], sh_.h[x], sh_.w[x], op.out_c, op.kernel, op.stride, op.same, op.depthwise);
  }
  std::string first_nonfinite_output(int n);

  ProgramDesc p_;
  int max_batch_, device_;
  TensorShapes sh_;
  std::vector<GradientFlow> flow_;
  cudaStream_t stream_ = nullptr;
  char* base_ = nullptr;
  size_t bytes_ = 0;
  std::vector<float*> act_, dact_, params_, grads_, m_, v_, saved_;
  std::vector<int32_t*> argmax_;
  float* grads_all_ = nullptr;  // grads_[0..] in one block
  size_t param_floats_ = 0;
  float* images_ = nullptr;
  float *scratch_ = nullptr, *dx_ = nullptr;
  int32_t *labels_ = nullptr, *zero_labels_ = nullptr, *order_ = nullptr, *offsets_ = nullptr;
  float *probs_ = nullptr, *targets_ = nullptr, *losses_ = nullptr, *rho_ = nullptr, *emb_loss_ = nullptr,
        *grad_loss_ = nullptr;
  void* loss_ws_ = nullptr;
  double* loss_result_ = nullptr;
  int* flags_ = nullptr;  // [0]: gradients; [1 + op]: op outputs
  std::vector<float> probs_h_, losses_h_;
  int64_t steps_ = 0;
};

void CudaEngine::allocate() {
  Arena a;
  const int T = p_.tensors;
  const size_t B = max_batch_;
  act_.assign(T, nullptr);
  dact_.assign(T, nullptr);
  size_t largest = 0;
  for (int t = 0; t < T; ++t) {
    a.add(&act_[t], sh_.per_sample[t] * B, Arena::kActivations);
    a.add(&dact_[t], sh_.per_sample[t] * B, Arena::kActivations);
    largest = std::max(largest, sh_.per_sample[t] * B);
  }
  for (size_t s : p_.param_sizes) param_floats_ += s;
  float *params_all = nullptr, *m_all = nullptr, *v_all = nullptr;
  a.add(&params_all, param_floats_, Arena::kParameters);
  a.add(&grads_all_, param_floats_, Arena::kParameters);
  a.add(&m_all, param_floats_, Arena::kParameters);
  a.add(&v_all, param_floats_, Arena::kParameters);
  saved_.assign(p_.ops.size(), nullptr);
  argmax_.assign(p_.ops.size(), nullptr);
  size_t conv_scratch = 1;
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    if (op.kind == OpKind::BatchNorm) a.add(&saved_[i], 2 * static_cast<size_t>(op.out_c), Arena::kActivations);
    if (op.kind == OpKind::Dropout) a.add(&saved_[i], sh_.per_sample[op.output] * B, Arena::kActivations);
    if (op.kind == OpKind::MaxPool) a.add(&argmax_[i], sh_.per_sample[op.output] * B, Arena::kActivations);
    if (op.kind == OpKind::Conv)
      conv_scratch = std::max(conv_scratch, cuda::conv_scratch_floats(conv_shape(op, max_batch_)));
  }
  const size_t input = sh_.per_sample[p_.input] * B;
  const int C = p_.classes, k = p_.k, d = p_.d;
  a.add(&images_, input, Arena::kWorkspace);
  a.add(&scratch_, conv_scratch, Arena::kWorkspace);
  a.add(&dx_, largest, Arena::kWorkspace);
  a.add(&labels_, B, Arena::kWorkspace);
  a.add(&zero_labels_, B, Arena::kWorkspace);
  a.add(&order_, B, Arena::kWorkspace);
  a.add(&offsets_, C + 1, Arena::kWorkspace);
  a.add(&probs_, B * C, Arena::kWorkspace);
  a.add(&targets_, B * C, Arena::kWorkspace);
  a.add(&losses_, B, Arena::kWorkspace);
  a.add(&rho_, C, Arena::kWorkspace);
  a.add(&emb_loss_, B * k * d, Arena::kWorkspace);
  a.add(&grad_loss_, B * k * d, Arena::kWorkspace);
  char* loss_ws = nullptr;
  a.add(&loss_ws, cuda_workspace_bytes(Shape{k, max_batch_, d, C}), Arena::kWorkspace);
  a.add(&loss_result_, 4, Arena::kWorkspace);
  a.add(&flags_, 1 + p_.ops.size(), Arena::kWorkspace);

  bytes_ = a.total();
  const cudaError_t err = cudaMalloc(reinterpret_cast<void**>(&base_), bytes_);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the error so the process can go on using CUDA
    base_ = nullptr;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, device_);
    std::ostringstream msg;
    msg.setf(std::ios::fixed);
    msg.precision(1);
    msg << "CUDA out of memory on device " << device_ << " (" << prop.name << "): the training engine needs "
        << mib(bytes_) << " MiB for batches of " << max_batch_ << " (activations and their gradients "
        << mib(a.bytes(Arena::kActivations)) << " MiB, parameters, gradients and Adam moments "
        << mib(a.bytes(Arena::kParameters)) << " MiB, workspace " << mib(a.bytes(Arena::kWorkspace)) << " MiB); "
        << mib(free_b) << " MiB of " << mib(total_b)
        << " MiB are free. Lower the batch size or the input size, or free the GPU (" << cudaGetErrorString(err) << ")";
    throw BackendError(msg.str());
  }
  a.place(base_);
  loss_ws_ = loss_ws;
  params_.resize(p_.param_sizes.size());
  grads_.resize(params_.size());
  m_.resize(params_.size());
  v_.resize(params_.size());
  size_t at = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    params_[i] = params_all + at;
    grads_[i] = grads_all_ + at;
    m_[i] = m_all + at;
    v_[i] = v_all + at;
    at += p_.param_sizes[i];
  }
}

void CudaEngine::prepare_input(const float* images, int n) {
  CUDA_CHECK(cudaSetDevice(device_));
  const size_t per = sh_.per_sample[p_.input];
  CUDA_CHECK(cudaMemcpyAsync(images_, images, per * n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  standardize_kernel<<<n, kThreads, 0, stream_>>>(per, images_, act_[p_.input], kInputEps);
  LAUNCH_CHECK("standardize_kernel");
}

void CudaEngine::forward(int n, bool train, uint32_t dropout_seed) {
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    const int x = op.inputs[0];
    float* y = act_[op.output];
    const float* xa = act_[x];
    const int hw = sh_.h[x] * sh_.w[x];
    const size_t count = sh_.per_sample[x] * n;
    switch (op.kind) {
      case OpKind::Conv:
        cuda::conv_forward(conv_shape(op, n), xa, params_[op.param], y, scratch_, stream_);
        break;
      case OpKind::BatchNorm:
        // Running statistics move only after the step proves finite (train_step).
        if (train)
          cuda::batchnorm_forward_train(n, sh_.c[x], hw, xa, params_[op.param], params_[op.param + 1], y, saved_[i],
                                        saved_[i] + sh_.c[x], kBnEps, stream_);
        else
          cuda::batchnorm_forward_eval(n, sh_.c[x], hw, xa, params_[op.param], params_[op.param + 1],
                                       params_[op.param + 2], params_[op.param + 3], y, kBnEps, stream_);
        break;
      case OpKind::Relu:
        cuda::relu_forward(count, xa, y, stream_);
        break;
      case OpKind::MaxPool:
        cuda::maxpool_forward(n, sh_.c[x], sh_.h[x], sh_.w[x], xa, y, argmax_[i], stream_);
        break;
      case OpKind::Add:
        add_kernel<<<grid_for(count), kThreads, 0, stream_>>>(count, xa, act_[op.inputs[1]], y);
        LAUNCH_CHECK("add_kernel");
        break;
      case OpKind::Gap:
        cuda::gap_forward(n, sh_.c[x], hw, xa, y, stream_);
        break;
      case OpKind::Dense:
        cuda::dense_forward(n, op.in_c, op.out_c, xa, params_[op.param], params_[op.param + 1], y, stream_);
        break;
      case OpKind::L2Norm:
        cuda::l2norm_forward(n, sh_.c[x], xa, y, kL2Eps, stream_);
        break;
      case OpKind::Concat: {
        const int total = sh_.c[op.output];
        int at = 0;
        for (int t : op.inputs) {
          const int f = sh_.c[t];
          copy_columns_kernel<<<grid_for(static_cast<size_t>(n) * f), kThreads, 0, stream_>>>(n, f, act_[t], f, 0, y,
                                                                                              total, at, false);
          LAUNCH_CHECK("copy_columns_kernel");
          at += f;
        }
        break;
      }
      case OpKind::Dropout:
        if (!train || op.rate <= 0) {
          CUDA_CHECK(cudaMemcpyAsync(y, xa, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
          fill_kernel<<<grid_for(count), kThreads, 0, stream_>>>(count, saved_[i], 1.f);
          LAUNCH_CHECK("fill_kernel");
        } else {
          const uint64_t seed = static_cast<uint32_t>(dropout_seed ^ (0x9e3779b9u * static_cast<uint32_t>(i + 1)));
          dropout_kernel<<<grid_for(count), kThreads, 0, stream_>>>(count, xa, y, saved_[i], seed, op.rate,
                                                                    static_cast<float>(1.0 / (1.0 - op.rate)));
          LAUNCH_CHECK("dropout_kernel");
        }
        break;
      case OpKind::Softmax:
        break;  // the loss computes the probabilities from the logits
    }
  }
}

void CudaEngine::backward(int n) {
  // gradient_flow (engine.h): direct tensors are written in place by their one
  // reader, the others zeroed and accumulated through dx_, the input skipped.
  for (int t = 0; t < p_.tensors; ++t)
    if (flow_[t] == GradientFlow::Accumulate && t != p_.logits && t != p_.embeddings)
      CUDA_CHECK(cudaMemsetAsync(dact_[t], 0, sh_.per_sample[t] * n * sizeof(float), stream_));
  auto target = [&](int t) -> float* {
    return flow_[t] == GradientFlow::Skip ? nullptr : flow_[t] == GradientFlow::Direct ? dact_[t] : dx_;
  };
  auto deliver = [&](int t, const float* g) {
    if (flow_[t] == GradientFlow::Accumulate) accumulate(t, g, n);
  };
  // Add and Concat pass gradients through: a copy where direct, else a sum.
  auto pass = [&](int t, int rows, int f, const float* src, int src_stride, int src_offset) {
    if (flow_[t] == GradientFlow::Skip) return;
    copy_columns_kernel<<<grid_for(static_cast<size_t>(rows) * f), kThreads, 0, stream_>>>(
        rows, f, src, src_stride, src_offset, dact_[t], f, 0, flow_[t] == GradientFlow::Accumulate);
    LAUNCH_CHECK("copy_columns_kernel");
  };
  for (size_t i = p_.ops.size(); i-- > 0;) {
    const OpDesc& op = p_.ops[i];
    if (op.kind == OpKind::Softmax) continue;
    const int x = op.inputs[0];
    const float* dy = dact_[op.output];
    const float* xa = act_[x];
    const int hw = sh_.h[x] * sh_.w[x];
    const size_t xcount = sh_.per_sample[x] * n;
    float* dx = target(x);
    if (!dx && op.kind != OpKind::Conv && op.kind != OpKind::Add && op.kind != OpKind::Concat)
      throw std::logic_error("gradient flow: only a convolution may skip its input's gradient");
    switch (op.kind) {
      case OpKind::Conv:
        cuda::conv_backward(conv_shape(op, n), xa, params_[op.param], dy, dx, grads_[op.param], scratch_, stream_);
        break;
      case OpKind::BatchNorm:
        cuda::batchnorm_backward(n, sh_.c[x], hw, xa, params_[op.param], saved_[i], saved_[i] + sh_.c[x], dy, dx,
                                 grads_[op.param], grads_[op.param + 1], stream_);
        break;
      case OpKind::Relu:
        cuda::relu_backward(xcount, act_[op.output], dy, dx, stream_);
        break;
      case OpKind::MaxPool:
        cuda::maxpool_backward(n, sh_.c[x], sh_.h[x], sh_.w[x], argmax_[i], dy, dx, stream_);
        break;
      case OpKind::Add: {
        // one row of xcount values: a plain copy or sum
        const int f = static_cast<int>(sh_.per_sample[x]);
        pass(op.inputs[0], n, f, dy, f, 0);
        pass(op.inputs[1], n, f, dy, f, 0);
        continue;
      }
      case OpKind::Gap:
        cuda::gap_backward(n, sh_.c[x], hw, dy, dx, stream_);
        break;
      case OpKind::Dense:
        cuda::dense_backward(n, op.in_c, op.out_c, xa, params_[op.param], dy, dx, grads_[op.param],
                             grads_[op.param + 1], stream_);
        break;
      case OpKind::L2Norm:
        cuda::l2norm_backward(n, sh_.c[x], xa, act_[op.output], dy, dx, kL2Eps, stream_);
        break;
      case OpKind::Concat: {
        const int total = sh_.c[op.output];
        int at = 0;
        for (int t : op.inputs) {
          pass(t, n, sh_.c[t], dy, total, at);
          at += sh_.c[t];
        }
        continue;
      }
      case OpKind::Dropout:
        multiply_kernel<<<grid_for(xcount), kThreads, 0, stream_>>>(xcount, dy, saved_[i], dx);
        LAUNCH_CHECK("multiply_kernel");
        break;
      case OpKind::Softmax:
        continue;
    }
    if (dx) deliver(x, dx);
  }
}

std::string CudaEngine::first_nonfinite_output(int n) {
  const size_t ops = p_.ops.size();
  CUDA_CHECK(cudaMemsetAsync(flags_ + 1, 0, ops * sizeof(int), stream_));
  for (size_t i = 0; i < ops; ++i) {
    const OpDesc& op = p_.ops[i];
    if (op.kind == OpKind::Softmax) continue;
    const size_t count = sh_.per_sample[op.output] * n;
    nonfinite_kernel<<<grid_for(count), kThreads, 0, stream_>>>(count, act_[op.output], flags_ + 1 + i);
    LAUNCH_CHECK("nonfinite_kernel");
  }
  std::vector<int> flags(ops);
  CUDA_CHECK(cudaMemcpyAsync(flags.data(), flags_ + 1, ops * sizeof(int), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < ops; ++i)
    if (flags[i]) return p_.ops[i].name;
  return "";
}

StepResult CudaEngine::train_step(const float* images, const int32_t* labels, int n, const StepOptions& o,
                                  int32_t* predictions) {
  check_step_input(p_, max_batch_, labels, o.targets, n);
  const int C = p_.classes, k = p_.k, d = p_.d;
  StepResult r;
  prepare_input(images, n);
  CUDA_CHECK(cudaMemcpyAsync(labels_, labels, n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  if (o.targets)
    CUDA_CHECK(cudaMemcpyAsync(targets_, o.targets, static_cast<size_t>(n) * C * sizeof(float), cudaMemcpyHostToDevice,
                               stream_));
  const float* targets = o.targets ? targets_ : nullptr;
  forward(n, true, o.dropout_seed);
  cuda::softmax_ce_forward(n, C, act_[p_.logits], labels_, targets, probs_, losses_, stream_);
  cuda::softmax_ce_backward(n, C, probs_, labels_, targets, o.lambda_ce, dact_[p_.logits], stream_);

  // Ad-Corre on the embeddings: [n][k][d] here, [k][n][d] in the loss.
  float* demb = dact_[p_.embeddings];
  const size_t emb = static_cast<size_t>(n) * k * d;
  const bool with_adcorre = o.adcorre && (o.w_fd != 0 || o.w_md != 0 || o.w_ed != 0);
  // host copies must outlive the asynchronous uploads: the stream is synchronised below
  ClassPlan plan;
  std::vector<float> rho;
  double parts[4] = {0, 0, 0, 0};
  if (with_adcorre) {
    plan = make_class_plan(labels, n, C);
    rho = attention_rho(o, C);
    if (rho.empty()) rho.assign(C, 0.f);  // uniform attention
    CUDA_CHECK(cudaMemcpyAsync(order_, plan.order.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(
        cudaMemcpyAsync(offsets_, plan.offsets.data(), (C + 1) * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaMemcpyAsync(rho_, rho.data(), C * sizeof(float), cudaMemcpyHostToDevice, stream_));
    transpose_heads_kernel<<<grid_for(emb), kThreads, 0, stream_>>>(n, k, d, act_[p_.embeddings], emb_loss_, true);
    LAUNCH_CHECK("transpose_heads_kernel");
    CudaProblem problem;
    problem.E = emb_loss_;
    problem.labels = labels_;
    problem.rho = rho_;
    problem.order = order_;
    problem.offsets = offsets_;
    problem.shape = Shape{k, n, d, C};
    problem.weights = Weights{o.w_fd, o.w_md, o.w_ed};
    problem.present = plan.present;
    cuda_loss(problem, loss_ws_, loss_result_, grad_loss_, stream_);
    transpose_heads_kernel<<<grid_for(emb), kThreads, 0, stream_>>>(n, k, d, grad_loss_, demb, false);
    LAUNCH_CHECK("transpose_heads_kernel");
    CUDA_CHECK(cudaMemcpyAsync(parts, loss_result_, sizeof(parts), cudaMemcpyDeviceToHost, stream_));
  } else {
    CUDA_CHECK(cudaMemsetAsync(demb, 0, emb * sizeof(float), stream_));
  }

  CUDA_CHECK(cudaMemsetAsync(grads_all_, 0, param_floats_ * sizeof(float), stream_));
  backward(n);
  CUDA_CHECK(cudaMemsetAsync(flags_, 0, sizeof(int), stream_));
  nonfinite_kernel<<<grid_for(param_floats_), kThreads, 0, stream_>>>(param_floats_, grads_all_, flags_);
  LAUNCH_CHECK("nonfinite_kernel");
  int grads_bad = 0;
  CUDA_CHECK(cudaMemcpyAsync(&grads_bad, flags_, sizeof(int), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaMemcpyAsync(probs_h_.data(), probs_, static_cast<size_t>(n) * C * sizeof(float),
                             cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaMemcpyAsync(losses_h_.data(), losses_, n * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));

  double ce = 0;
  for (int i = 0; i < n; ++i) ce += losses_h_[i];
  r.ce = ce / n;
  r.correct = score_predictions(probs_h_.data(), labels, n, C, predictions);
  r.loss = parts[0] + o.lambda_ce * r.ce;
  r.fd = parts[1];
  r.md = parts[2];
  r.ed = parts[3];
  r.finite = std::isfinite(r.loss) && !grads_bad;
  if (!r.finite) {
    r.bad_layer = first_nonfinite_output(n);
    if (r.bad_layer.empty()) r.bad_layer = "gradients";
    return r;  // the update is skipped
  }

  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    if (op.kind != OpKind::BatchNorm) continue;
    commit_stats_kernel<<<(op.out_c + kThreads - 1) / kThreads, kThreads, 0, stream_>>>(
        op.out_c, saved_[i], saved_[i] + op.out_c, params_[op.param + 2], params_[op.param + 3], o.bn_momentum, kBnEps);
    LAUNCH_CHECK("commit_stats_kernel");
  }
  ++steps_;
  const double b1t = 1 - std::pow(o.beta1, static_cast<double>(steps_)),
               b2t = 1 - std::pow(o.beta2, static_cast<double>(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!p_.trainable[i]) continue;
    const double wd = p_.decay[i] ? o.weight_decay : 0.0;
    const size_t size = p_.param_sizes[i];
    if (o.adam) {
      cuda::adam_update(size, params_[i], grads_[i], m_[i], v_[i], o.lr * std::sqrt(b2t) / b1t, o.beta1, o.beta2,
                        o.adam_eps, wd, stream_);
    } else {
      sgd_kernel<<<grid_for(size), kThreads, 0, stream_>>>(size, params_[i], grads_[i], m_[i], o.lr, o.momentum, wd);
      LAUNCH_CHECK("sgd_kernel");
    }
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return r;
}

void CudaEngine::predict(const float* images, int n, float* probs, float* embeddings) {
  const size_t per = sh_.per_sample[p_.input];
  const int C = p_.classes;
  const size_t emb = static_cast<size_t>(p_.k) * p_.d;
  for (int start = 0; start < n; start += max_batch_) {
    const int b = std::min(max_batch_, n - start);
    prepare_input(images + static_cast<size_t>(start) * per, b);
    forward(b, false, 0);
    if (probs) {
      cuda::softmax_ce_forward(b, C, act_[p_.logits], zero_labels_, nullptr, probs_, losses_, stream_);
      CUDA_CHECK(cudaMemcpyAsync(probs + static_cast<size_t>(start) * C, probs_,
                                 static_cast<size_t>(b) * C * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    }
    if (embeddings)
      CUDA_CHECK(cudaMemcpyAsync(embeddings + static_cast<size_t>(start) * emb, act_[p_.embeddings],
                                 b * emb * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
}

}  // namespace

std::unique_ptr<Executor> make_cuda_engine(const ProgramDesc& program, int max_batch, int device) {
  return std::make_unique<CudaEngine>(program, max_batch, device);
}

}  // namespace adcorre::engine
