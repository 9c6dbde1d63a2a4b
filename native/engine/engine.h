// The training engine: executes the Xception-k program (the op list built in
// lib/model/architecture.ts, passed in by the TypeScript layer) on a backend
// (the CPU or a CUDA GPU), forward, backward with cross-entropy and the
// Ad-Corre loss, and an Adam or SGD update. Parameters, gradients, optimizer state and activations live in
// the engine between steps; only the batch goes in and the scalars come back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../loss/adcorre.h"
#include "backend.h"
#include "op_table.h"
#include "ops.h"

namespace adcorre::engine {

struct ProgramDesc {
  std::vector<OpDesc> ops;
  int tensors = 0;
  int input = -1, embeddings = -1, logits = -1, probs = -1;
  int channels = 1, size = 0, k = 1, d = 1, classes = 2;
  std::vector<size_t> param_sizes;
  std::vector<bool> trainable;  // running statistics are not
  std::vector<bool> decay;      // weight decay applies (convolution and dense weights)
};

// A step's options. The numbers have no defaults here (NaN: unset, and
// train_step refuses a step with any unset): the TypeScript Engine fills what
// a caller leaves out from the training defaults (lib/train/defaults.ts), so
// that the API and the CLI train alike.
struct StepOptions {
  static constexpr double kUnset = std::numeric_limits<double>::quiet_NaN();
  double lambda_ce = kUnset, w_fd = kUnset, w_md = kUnset, w_ed = kUnset;
  bool adcorre = true;
  const float* class_accuracy = nullptr;  // numClasses values, or null for uniform attention
  // n x classes soft targets for the cross-entropy (FER+'s vote distributions), or
  // null for the one-hot labels; the labels still drive Ad-Corre and accuracy.
  const float* targets = nullptr;
  // optimizer: Adam (its constants beta1, beta2 and eps as Keras') or SGD with momentum
  bool adam = true;
  double lr = kUnset, momentum = kUnset, weight_decay = kUnset;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-7;
  double bn_momentum = kUnset;
  bool nesterov = false;  // SGD: Nesterov momentum
  uint32_t dropout_seed = 0;
};

// Throws invalid_argument naming every number of o that is unset or not finite.
void check_step_options(const StepOptions& o);

struct StepResult {
  double loss = 0, ce = 0, fd = 0, md = 0, ed = 0;
  int correct = 0;
  bool finite = true;
  std::string bad_layer;  // first layer whose output or gradient is not finite
};

// Channels, height and width of every tensor of a program (features: c x 1 x
// 1), floats per sample, and each op's geometry (its window's padding), by
// the op table's shape rules (op_table.h). Throws invalid_argument when the
// input is too small for the network.
struct TensorShapes {
  std::vector<int> c, h, w;
  std::vector<size_t> per_sample;
  std::vector<OpGeometry> ops;
};

// How backward delivers each tensor's gradient. Direct: one op reads the
// tensor, so that op's backward writes the gradient in place (no zero fill,
// no scratch, no accumulate pass); the loss tensors (logits, embeddings) never
// are, as the loss writes them first. Skip: a tensor that depends on no
// parameter (the image, the input pipeline's output), read only by ordinary
// convolutions: nobody needs its gradient, so they skip the input-gradient
// GEMM and the ops that produce it run no backward. Otherwise: zeroed, then
// every reader accumulates.
enum class GradientFlow { Accumulate, Direct, Skip };
std::vector<GradientFlow> gradient_flow(const ProgramDesc& p);
TensorShapes infer_shapes(const ProgramDesc& p);

// Host-side pieces of a training step.
// rho[c] = 1 - classAccuracy[c] (empty for uniform attention).
std::vector<float> attention_rho(const StepOptions& o, int classes);
// Throws invalid_argument for a batch size outside 1..max_batch, a label outside 0..classes-1,
// or soft targets (may be null) that are not finite, negative, or a row summing to zero.
void check_step_input(const ProgramDesc& p, int max_batch, const int32_t* labels, const float* targets, int n);
// Counts correct argmax predictions of probs [n][classes] (predictions may be null).
int score_predictions(const float* probs, const int32_t* labels, int n, int classes, int32_t* predictions);

// The training engine: one executor over any Backend (backend.h). It owns
// the walk of the program, the backward order and gradient flow, the loss
// call, the optimizer, the batch-norm statistics, NaN detection and the
// memory plan (one block from the backend at construction, nothing in the
// steady state); the backend supplies memory, copies and the ops. Host
// pointers in and out; the N-API layer sees only this.
class Executor {
 public:
  // Throws invalid_argument for a bad max_batch or an input too small for the
  // network, BackendError when the backend cannot hold the buffers (the
  // message gives the sizes).
  Executor(ProgramDesc program, int max_batch, std::unique_ptr<Backend> backend);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const Backend& backend() const { return *backend_; }
  int max_batch() const { return max_batch_; }
  size_t param_count() const { return p_.param_sizes.size(); }
  size_t param_size(size_t i) const { return p_.param_sizes[i]; }
  void read_param(size_t i, float* out) { download(out, params_[i], p_.param_sizes[i]); }
  void write_param(size_t i, const float* in) { upload(params_[i], in, p_.param_sizes[i]); }
  void read_moments(size_t i, float* m, float* v);
  void write_moments(size_t i, const float* m, const float* v);
  void read_grad(size_t i, float* out) { download(out, grads_[i], p_.param_sizes[i]); }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t s) { steps_ = s; }

  // images: n x channels x size x size in [0, 1]; labels: n. predictions (n) receive the argmax.
  StepResult train_step(const float* images, const int32_t* labels, int n, const StepOptions& options,
                        int32_t* predictions);
  // Evaluation mode (running statistics, no dropout): probs n x classes, embeddings n x k x d (either may be null).
  void predict(const float* images, int n, float* probs, float* embeddings);

 private:
  void plan_fusion();
  void plan_memory();
  void upload(float* dst, const float* src, size_t count);
  void download(float* dst, const float* src, size_t count);
  // Uploads n images into the program's input tensor.
  void prepare_input(const float* images, int n);
  // Training mode saves batch statistics; the running ones move only after the step proves finite.
  void forward(int n, bool train, uint32_t dropout_seed);
  void backward(int n);
  std::string first_nonfinite_output(int n);
  ConvShape conv_shape(const OpDesc& op, int n) const;
  // the tensor op i writes: a batch norm fused with its ReLU writes the ReLU's output
  int written(size_t i) const { return fused_relu_[i] >= 0 ? p_.ops[fused_relu_[i]].output : p_.ops[i].output; }

  ProgramDesc p_;
  int max_batch_;
  std::unique_ptr<Backend> backend_;
  TensorShapes sh_;
  std::vector<GradientFlow> flow_;
  // per op: a batch norm whose output only a ReLU reads runs fused with it: the
  // ReLU's op index here (else -1); that ReLU is marked fused_into_ (else -1)
  std::vector<int> fused_relu_, fused_into_;
  std::vector<char> gradient_started_;  // backward's scratch: per tensor, has a part of its gradient arrived
  void* block_ = nullptr;               // everything below points into it
  size_t block_bytes_ = 0;
  std::vector<float*> act_, dact_, params_, grads_, m_, v_, saved_;  // saved: per op, bn mean+invstd or dropout mask
  std::vector<int32_t*> argmax_;                                     // per op: maxpool switches
  float* grads_all_ = nullptr;                                       // grads_[0..] in one run
  size_t param_floats_ = 0;
  float *scratch_ = nullptr, *dx_ = nullptr, *probs_ = nullptr, *targets_ = nullptr;
  int32_t *labels_ = nullptr, *zero_labels_ = nullptr, *flags_ = nullptr;  // flags: [0] gradients, [1 + op] outputs
  double *losses_ = nullptr, *parts_ = nullptr;
  void* loss_ws_ = nullptr;
  std::vector<float> probs_h_;
  std::vector<double> losses_h_;
  int64_t steps_ = 0;
};

// The executor on the CPU (device < 0) or on CUDA device `device`; precision (precision.h) Bf16 on the CPU only.
std::unique_ptr<Executor> make_engine(ProgramDesc program, int max_batch, int device,
                                      Precision precision = Precision::Fp32);

}  // namespace adcorre::engine
