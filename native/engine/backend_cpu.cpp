// The CPU backend: host memory and the float instantiations of ops.h (the
// SIMD GEMM and the vectorised plane loops of ops_cpu_*.cpp, split over the
// thread pool). Copies are memcpy and synchronize() has nothing to wait for.
// The convolution scratch stays a vector inside the backend, grown on the
// first step of each shape (ops.h's conv functions size it themselves), so
// the executor plans none. In bf16 precision the GEMM-based ops (convolutions
// other than depthwise, dense layers) run their GEMMs under a
// ScopedGemmPrecision (gemm_bf16.h); every other op is the same in both.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <sstream>
#include <vector>

#include "../common/rng.h"
#include "backend.h"
#include "gemm_bf16.h"

namespace adcorre::engine {

namespace {

constexpr std::align_val_t kAlignment{kBufferAlignment};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(Precision precision) : precision_(precision) {}
  std::string name() const override { return "cpu"; }
  Precision precision() const override { return precision_; }

  void* try_allocate(size_t bytes) override { return ::operator new(bytes, kAlignment, std::nothrow); }
  void release(void* block) noexcept override { ::operator delete(block, kAlignment); }
  std::string memory_state() const override {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(1);
#ifdef _SC_AVPHYS_PAGES
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    s << page * sysconf(_SC_AVPHYS_PAGES) / 1048576.0 << " MiB of " << page * sysconf(_SC_PHYS_PAGES) / 1048576.0
      << " MiB of memory are free";
#else
    s << "the host is out of memory";
#endif
    return s.str();
  }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(void* dst, size_t bytes) override {
    // every block the executor plans holds 4-byte values; fill_zero splits the pass over the threads
    if (bytes % sizeof(float) == 0)
      fill_zero(bytes / sizeof(float), static_cast<float*>(dst));
    else
      std::memset(dst, 0, bytes);
  }
  void synchronize() override {}
  size_t conv_scratch_floats(const ConvShape&) const override { return 0; }
  size_t loss_workspace_bytes(const Shape&) const override { return 0; }  // CpuLoss keeps its own

  void standardize(int n, size_t per, const float* x, float* y, double eps) override {
    for (int s = 0; s < n; ++s) {
      const float* img = x + s * per;
      double sum = 0, sq = 0;
      for (size_t i = 0; i < per; ++i) sum += img[i];
      const double mean = sum / per;
      for (size_t i = 0; i < per; ++i) sq += (img[i] - mean) * (img[i] - mean);
      const double inv = 1.0 / std::sqrt(sq / per + eps);
      for (size_t i = 0; i < per; ++i) y[s * per + i] = static_cast<float>((img[i] - mean) * inv);
    }
  }

  void conv_forward(const ConvShape& s, const float* x, const float* weight, float* y, float*) override {
    const ScopedGemmPrecision gemm(precision_);
    engine::conv_forward(s, x, weight, y, scratch_);
  }
  void conv_backward(const ConvShape& s, const float* x, const float* weight, const float* dy, float* dx,
                     float* dweight, float*) override {
    const ScopedGemmPrecision gemm(precision_);
    engine::conv_backward(s, x, weight, dy, dx, dweight, scratch_);
  }
  void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma, const float* beta, float* y,
                               float* mean, float* invstd, double eps, bool relu) override {
    engine::batchnorm_forward_train<float>(n, c, hw, x, gamma, beta, y, mean, invstd, nullptr, nullptr, 0.0, eps, relu);
  }
  void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y, double eps,
                              bool relu) override {
    engine::batchnorm_forward_eval(n, c, hw, x, gamma, beta, running_mean, running_var, y, eps, relu);
  }
  void batchnorm_backward(int n, int c, int hw, const float* x, const float* gamma, const float* mean,
                          const float* invstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                          const float* relu_output) override {
    engine::batchnorm_backward(n, c, hw, x, gamma, mean, invstd, dy, dx, dgamma, dbeta, relu_output);
  }
  void batchnorm_commit(int c, const float* mean, const float* invstd, float* rm, float* rv, double momentum,
                        double eps) override {
    for (int ch = 0; ch < c; ++ch) {
      const double is = invstd[ch];
      const double var = 1.0 / (is * is) - eps;
      rm[ch] = static_cast<float>(momentum * rm[ch] + (1 - momentum) * mean[ch]);
      rv[ch] = static_cast<float>(momentum * rv[ch] + (1 - momentum) * var);
    }
  }
  void relu_forward(size_t count, const float* x, float* y) override { engine::relu_forward(count, x, y); }
  void relu_backward(size_t count, const float* y, const float* dy, float* dx) override {
    engine::relu_backward(count, y, dy, dx);
  }
  void maxpool_forward(int n, int c, int h, int w, const float* x, float* y, int32_t* argmax) override {
    engine::maxpool_forward(n, c, h, w, x, y, argmax);
  }
  void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const float* dy, float* dx) override {
    engine::maxpool_backward(n, c, h, w, argmax, dy, dx);
  }
  void gap_forward(int n, int c, int hw, const float* x, float* y) override { engine::gap_forward(n, c, hw, x, y); }
  void gap_backward(int n, int c, int hw, const float* dy, float* dx) override {
    engine::gap_backward(n, c, hw, dy, dx);
  }
  void dense_forward(int n, int in, int out, const float* x, const float* weight, const float* bias,
                     float* y) override {
    const ScopedGemmPrecision gemm(precision_);
    engine::dense_forward(n, in, out, x, weight, bias, y);
  }
  void dense_backward(int n, int in, int out, const float* x, const float* weight, const float* dy, float* dx,
                      float* dweight, float* dbias) override {
    const ScopedGemmPrecision gemm(precision_);
    engine::dense_backward(n, in, out, x, weight, dy, dx, dweight, dbias);
  }
  void l2norm_forward(int rows, int dim, const float* x, float* y, double eps) override {
    engine::l2norm_forward(rows, dim, x, y, eps);
  }
  void l2norm_backward(int rows, int dim, const float* x, const float* y, const float* dy, float* dx,
                       double eps) override {
    engine::l2norm_backward(rows, dim, x, y, dy, dx, eps);
  }
  void dropout_forward(size_t count, const float* x, float* y, float* mask, uint64_t seed, double rate) override {
    SplitMix rng(seed);  // value j + 1 for element j, as splitmix_value(seed, j + 1)
    const float scale = static_cast<float>(1.0 / (1.0 - rate));
    for (size_t j = 0; j < count; ++j) {
      const float m = rng.uniform() < rate ? 0.f : scale;
      mask[j] = m;
      y[j] = x[j] * m;
    }
  }

  void add(size_t count, const float* a, const float* b, float* y) override { add_forward(count, a, b, y); }
  void add_into(size_t count, const float* x, float* y) override { engine::add_into(count, x, y); }
  void multiply(size_t count, const float* __restrict a, const float* __restrict b, float* __restrict y) override {
    for (size_t j = 0; j < count; ++j) y[j] = a[j] * b[j];
  }
  void copy(size_t count, const float* x, float* y) override { std::memcpy(y, x, count * sizeof(float)); }
  void fill(size_t count, float* y, float value) override { std::fill(y, y + count, value); }
  void copy_columns(int rows, int f, const float* src, int src_stride, int src_offset, float* dst, int dst_stride,
                    int dst_offset, bool accumulate) override {
    if (src_stride == f && dst_stride == f) {  // one contiguous run (Add's gradient)
      const size_t count = static_cast<size_t>(rows) * f;
      if (accumulate)
        engine::add_into(count, src + src_offset, dst + dst_offset);
      else
        std::memcpy(dst + dst_offset, src + src_offset, count * sizeof(float));
      return;
    }
    for (int r = 0; r < rows; ++r) {
      const float* s = src + static_cast<size_t>(r) * src_stride + src_offset;
      float* d = dst + static_cast<size_t>(r) * dst_stride + dst_offset;
      if (accumulate)
        for (int j = 0; j < f; ++j) d[j] += s[j];
      else
        std::memcpy(d, s, f * sizeof(float));
    }
  }
  void flag_nonfinite(size_t count, const float* x, int32_t* flag) override {
    if (!all_finite(count, x)) *flag = 1;
  }

  void softmax_ce_forward(int n, int classes, const float* logits, const int32_t* labels, const float* targets,
                          float* probs, double* losses) override {
    engine::softmax_ce_forward(n, classes, logits, labels, targets, probs, losses);
  }
  void softmax_ce_backward(int n, int classes, const float* probs, const int32_t* labels, const float* targets,
                           double scale, float* dlogits) override {
    engine::softmax_ce_backward(n, classes, probs, labels, targets, scale, dlogits);
  }
  void adcorre_loss(const AdcorreCall& call) override {
    const LossParts parts = loss_.forward(call.embeddings, call.labels_host, call.rho_host, call.shape, call.weights);
    if (call.grad) loss_.backward(call.grad);  // null: forward only (the standalone loss, host_loss.h)
    call.parts[0] = parts.loss;
    call.parts[1] = parts.fd;
    call.parts[2] = parts.md;
    call.parts[3] = parts.ed;
  }

  void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                   double eps, double weight_decay) override {
    engine::adam_update(count, w, g, m, v, step, beta1, beta2, eps, weight_decay);
  }
  void sgd_update(size_t count, float* w, const float* g, float* m, double lr, double momentum, double weight_decay,
                  bool nesterov) override {
    sgd_momentum_update(count, w, g, m, lr, momentum, weight_decay, nesterov);
  }

 private:
  Precision precision_;
  std::vector<float> scratch_;
  CpuLoss loss_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(Precision precision) { return std::make_unique<CpuBackend>(precision); }

}  // namespace adcorre::engine
