// The training engine: executes the Xception-k program (the op list built in
// lib/model/architecture.ts, passed in by the TypeScript layer) on the CPU,
// forward, backward with cross-entropy and the Ad-Corre loss, and an Adam or
// SGD update. Parameters, gradients, optimizer state and activations live in
// the engine between steps; only the batch goes in and the scalars come back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../loss/adcorre.h"
#include "ops.h"

namespace adcorre::engine {

constexpr double kBnEps = 1e-3;     // Keras' default (BN_EPS in lib/model/architecture.ts)
constexpr double kL2Eps = 1e-12;    // L2_EPS there
constexpr double kInputEps = 1e-3;  // NORMALIZATION.eps in lib/model/onnx.ts

enum class OpKind { Conv, BatchNorm, Relu, MaxPool, Add, Gap, Dense, L2Norm, Concat, Dropout, Softmax };

struct OpDesc {
  OpKind kind;
  std::string name;
  std::vector<int> inputs;  // tensor ids
  int output = -1;
  int param = -1;  // first parameter index (conv: weight; bn: gamma, beta, mean, var; dense: weight, bias)
  int in_c = 0, out_c = 0, kernel = 0, stride = 1;
  bool same = false, depthwise = false;
  double rate = 0;  // dropout
};

struct ProgramDesc {
  std::vector<OpDesc> ops;
  int tensors = 0;
  int input = -1, embeddings = -1, logits = -1, probs = -1;
  int channels = 1, size = 0, k = 1, d = 1, classes = 2;
  std::vector<size_t> param_sizes;
  std::vector<bool> trainable;  // running statistics are not
  std::vector<bool> decay;      // weight decay applies (convolution and dense weights)
};

struct StepOptions {
  double lambda_ce = 1, w_fd = 1, w_md = 1, w_ed = 1;
  bool adcorre = true;
  const float* class_accuracy = nullptr;  // numClasses values, or null for uniform attention
  // n x classes soft targets for the cross-entropy (FER+'s vote distributions), or
  // null for the one-hot labels; the labels still drive Ad-Corre and accuracy.
  const float* targets = nullptr;
  // optimizer
  bool adam = true;
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-7, momentum = 0.9, weight_decay = 0;
  double bn_momentum = 0.99;
  uint32_t dropout_seed = 0;
};

struct StepResult {
  double loss = 0, ce = 0, fd = 0, md = 0, ed = 0;
  int correct = 0;
  bool finite = true;
  std::string bad_layer;  // first layer whose output or gradient is not finite
};

// Channels, height and width of every tensor of a program (features: c x 1 x
// 1), and floats per sample; shared by the executors. Throws invalid_argument
// when the input is too small for the network.
struct TensorShapes {
  std::vector<int> c, h, w;
  std::vector<size_t> per_sample;
};

// How backward delivers each tensor's gradient. Direct: one op reads the
// tensor, so that op's backward writes the gradient in place (no zero fill,
// no scratch, no accumulate pass); the loss tensors (logits, embeddings) never
// are, as the loss writes them first. Skip: the network's input, whose
// gradient nobody needs (its convolution skips the input-gradient GEMM).
// Otherwise: zeroed, then every reader accumulates.
enum class GradientFlow { Accumulate, Direct, Skip };
std::vector<GradientFlow> gradient_flow(const ProgramDesc& p);
TensorShapes infer_shapes(const ProgramDesc& p);

// One training engine, declared once and implemented per backend (ggml
// style): Engine below on the CPU, CudaEngine (engine_cuda.cu) with every
// tensor on the GPU. Host pointers in and out; the N-API layer sees only this.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual int max_batch() const = 0;
  virtual size_t param_count() const = 0;
  virtual size_t param_size(size_t i) const = 0;
  virtual void read_param(size_t i, float* out) = 0;
  virtual void write_param(size_t i, const float* in) = 0;
  virtual void read_moments(size_t i, float* m, float* v) = 0;
  virtual void write_moments(size_t i, const float* m, const float* v) = 0;
  virtual void read_grad(size_t i, float* out) = 0;
  virtual int64_t steps() const = 0;
  virtual void set_steps(int64_t s) = 0;
  virtual StepResult train_step(const float* images, const int32_t* labels, int n, const StepOptions& options,
                                int32_t* predictions) = 0;
  virtual void predict(const float* images, int n, float* probs, float* embeddings) = 0;
};

// The CUDA engine on GPU `device`. Throws adcorre::BackendError where CUDA is
// not compiled in or not usable, and when the GPU has too little memory (the
// message gives the sizes).
std::unique_ptr<Executor> make_cuda_engine(const ProgramDesc& program, int max_batch, int device);

// Host-side pieces of a training step that both executors share.
// rho[c] = 1 - classAccuracy[c] (empty for uniform attention).
std::vector<float> attention_rho(const StepOptions& o, int classes);
// Throws invalid_argument for a batch size outside 1..max_batch, a label outside 0..classes-1,
// or soft targets (may be null) that are not finite, negative, or a row summing to zero.
void check_step_input(const ProgramDesc& p, int max_batch, const int32_t* labels, const float* targets, int n);
// Counts correct argmax predictions of probs [n][classes] (predictions may be null).
int score_predictions(const float* probs, const int32_t* labels, int n, int classes, int32_t* predictions);

class Engine : public Executor {
 public:
  Engine(ProgramDesc program, int max_batch);
  int max_batch() const override { return max_batch_; }
  size_t param_count() const override { return params_.size(); }
  size_t param_size(size_t i) const override { return params_[i].size(); }
  void read_param(size_t i, float* out) override { std::copy(params_[i].begin(), params_[i].end(), out); }
  void write_param(size_t i, const float* in) override { std::copy(in, in + params_[i].size(), params_[i].begin()); }
  void read_moments(size_t i, float* m, float* v) override {
    std::copy(m_[i].begin(), m_[i].end(), m);
    std::copy(v_[i].begin(), v_[i].end(), v);
  }
  void write_moments(size_t i, const float* m, const float* v) override {
    std::copy(m, m + m_[i].size(), m_[i].begin());
    std::copy(v, v + v_[i].size(), v_[i].begin());
  }
  void read_grad(size_t i, float* out) override { std::copy(grads_[i].begin(), grads_[i].end(), out); }
  int64_t steps() const override { return steps_; }
  void set_steps(int64_t s) override { steps_ = s; }

  // images: n x channels x size x size in [0, 1]; labels: n. predictions (n) receive the argmax.
  StepResult train_step(const float* images, const int32_t* labels, int n, const StepOptions& options,
                        int32_t* predictions) override;
  // Evaluation mode (running statistics, no dropout): probs n x classes, embeddings n x k x d (either may be null).
  void predict(const float* images, int n, float* probs, float* embeddings) override;

 private:
  // Training mode saves batch statistics; the running ones move only in commit_running_stats.
  void forward(const float* images, int n, bool train, uint32_t dropout_seed);
  void backward(int n);
  std::string first_nonfinite_output(int n) const;
  void commit_running_stats(double momentum);

  ProgramDesc p_;
  int max_batch_;
  std::vector<size_t> per_sample_;  // floats per sample of each tensor
  std::vector<int> ch_, hh_, ww_;   // tensor shapes (channels, height, width; features: c x 1 x 1)
  std::vector<std::vector<float>> act_, dact_;
  std::vector<std::vector<float>> params_, grads_, m_, v_;
  std::vector<std::vector<float>> saved_;     // per op: bn mean+invstd, dropout mask
  std::vector<std::vector<int32_t>> argmax_;  // per op: maxpool
  std::vector<float> scratch_, scratch2_;
  std::vector<float> probs_ws_;
  std::vector<GradientFlow> flow_;
  CpuLoss adcorre_;
  int64_t steps_ = 0;
};

}  // namespace adcorre::engine
