// The executor: one walk of the program for every backend (engine.h).
//
// Design note. At construction the executor plans every buffer of a step
// (activations and their gradients for max_batch samples, parameters,
// gradients, optimizer moments, batch-norm and dropout state, max-pool
// switches, the batch, labels and targets, probabilities, per-sample losses,
// the backend's convolution and loss workspaces, NaN flags) and asks the
// backend for one block. A step uploads the batch, walks forward, runs the
// softmax cross-entropy and Ad-Corre on the [n][k][d] embeddings in place,
// walks backward in reverse op order (gradient_flow: written in place where a
// tensor has one reader, and for the first part of one with several; later
// parts added from dx_), checks every gradient for finiteness, and only then
// commits the batch-norm statistics and steps the optimizer. Only
// probabilities, per-sample losses, the four Ad-Corre scalars and the flags
// come back to the host.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "engine.h"

namespace adcorre::engine {

TensorShapes infer_shapes(const ProgramDesc& p) {
  const int T = p.tensors;
  std::vector<Dims> dims(T);
  dims[p.input] = {p.channels, p.size, p.size};
  TensorShapes s;
  for (const OpDesc& op : p.ops) {
    s.ops.push_back(op_geometry(op, dims));
    dims[op.output] = s.ops.back().out;
  }
  s.c.resize(T);
  s.h.resize(T);
  s.w.resize(T);
  s.per_sample.resize(T);
  for (int t = 0; t < T; ++t) {
    s.c[t] = dims[t].c;
    s.h[t] = dims[t].h;
    s.w[t] = dims[t].w;
    s.per_sample[t] = static_cast<size_t>(dims[t].c) * dims[t].h * dims[t].w;
  }
  return s;
}

std::vector<GradientFlow> gradient_flow(const ProgramDesc& p) {
  std::vector<int> readers(p.tensors, 0);
  // Tensors that depend on no parameter (the image and the input pipeline's
  // output): nobody needs their gradient.
  std::vector<bool> constant(p.tensors, false);
  constant[p.input] = true;
  for (const OpDesc& op : p.ops) {
    bool c = op.param < 0;
    for (int t : op.inputs) c = c && constant[t];
    constant[op.output] = c;
  }
  for (const OpDesc& op : p.ops)
    if (op.kind != OpKind::Softmax && !constant[op.output])  // read by a backward that runs
      for (int t : op.inputs) readers[t]++;
  std::vector<GradientFlow> flow(p.tensors, GradientFlow::Accumulate);
  for (int t = 0; t < p.tensors; ++t)
    if (readers[t] == 1 && t != p.logits && t != p.embeddings) flow[t] = GradientFlow::Direct;
  // A constant tensor read only by ordinary convolutions (Xception's entry
  // convolution reads the standardised image) is skipped: those convolutions
  // skip the input-gradient GEMM. Any other reader keeps it computed.
  for (int t = 0; t < p.tensors; ++t) {
    if (!constant[t]) continue;
    bool conv_only = true;
    for (const OpDesc& op : p.ops)
      if (!constant[op.output])
        for (int in : op.inputs)
          if (in == t && (op.kind != OpKind::Conv || op.depthwise)) conv_only = false;
    if (conv_only) flow[t] = GradientFlow::Skip;
  }
  return flow;
}

std::vector<float> attention_rho(const StepOptions& o, int classes) {
  std::vector<float> rho;
  if (o.class_accuracy) {
    rho.resize(classes);
    for (int c = 0; c < classes; ++c) rho[c] = 1.f - o.class_accuracy[c];
  }
  return rho;
}

int score_predictions(const float* probs, const int32_t* labels, int n, int classes, int32_t* predictions) {
  int correct = 0;
  for (int i = 0; i < n; ++i) {
    const float* p = probs + static_cast<size_t>(i) * classes;
    const int best = static_cast<int>(std::max_element(p, p + classes) - p);
    if (predictions) predictions[i] = best;
    if (best == labels[i]) correct++;
  }
  return correct;
}

namespace {

double mib(size_t bytes) { return bytes / 1048576.0; }

// Lays buffers out in one block (each kBufferAlignment-aligned), by category
// for the out-of-memory message.
class Arena {
 public:
  enum Category { kActivations, kParameters, kWorkspace };
  template <typename T>
  void add(T** where, size_t count, Category c) {
    const size_t bytes = align_up(count * sizeof(T));
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

}  // namespace

Executor::Executor(ProgramDesc program, int max_batch, std::unique_ptr<Backend> backend)
    : p_(std::move(program)),
      max_batch_(max_batch),
      backend_(std::move(backend)),
      sh_(infer_shapes(p_)),
      flow_(gradient_flow(p_)) {
  if (max_batch < 1) throw std::invalid_argument("max_batch must be >= 1");
  plan_fusion();
  plan_memory();
  try {
    backend_->zero(block_, block_bytes_);
    backend_->synchronize();
  } catch (...) {
    backend_->release(block_);  // a constructor that throws gets no destructor call
    throw;
  }
  probs_h_.resize(static_cast<size_t>(max_batch_) * p_.classes);
  losses_h_.resize(max_batch_);
}

Executor::~Executor() { backend_->release(block_); }

void Executor::plan_fusion() {
  // Batch norm + ReLU in one pass forward and one backward, where nothing
  // but the ReLU reads the batch norm's output (Xception: after every
  // convolution of the entry flow, and between separable convolutions).
  const size_t ops = p_.ops.size();
  fused_relu_.assign(ops, -1);
  fused_into_.assign(ops, -1);
  std::vector<int> readers(p_.tensors, 0), reader(p_.tensors, -1);
  for (size_t j = 0; j < ops; ++j)
    for (int t : p_.ops[j].inputs) {
      readers[t]++;
      reader[t] = static_cast<int>(j);
    }
  for (size_t i = 0; i < ops; ++i) {
    const int y = p_.ops[i].output;
    if (p_.ops[i].kind != OpKind::BatchNorm || readers[y] != 1 || y == p_.logits || y == p_.embeddings) continue;
    const int j = reader[y];
    if (p_.ops[j].kind != OpKind::Relu) continue;
    fused_relu_[i] = j;
    fused_into_[j] = static_cast<int>(i);
  }
}

void Executor::plan_memory() {
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
    // a batch norm's channels from the shapes, as forward and backward take them (not op.out_c)
    if (op.kind == OpKind::BatchNorm)
      a.add(&saved_[i], 2 * static_cast<size_t>(sh_.c[op.inputs[0]]), Arena::kActivations);
    if (op.kind == OpKind::Dropout) a.add(&saved_[i], sh_.per_sample[op.output] * B, Arena::kActivations);
    if (op.kind == OpKind::MaxPool) a.add(&argmax_[i], sh_.per_sample[op.output] * B, Arena::kActivations);
    if (op.kind == OpKind::Conv)
      conv_scratch = std::max(conv_scratch, backend_->conv_scratch_floats(conv_shape(op, max_batch_)));
  }
  const int C = p_.classes;
  char* loss_ws = nullptr;
  a.add(&scratch_, conv_scratch, Arena::kWorkspace);
  a.add(&dx_, largest, Arena::kWorkspace);
  a.add(&labels_, B, Arena::kWorkspace);
  a.add(&zero_labels_, B, Arena::kWorkspace);
  a.add(&probs_, B * C, Arena::kWorkspace);
  a.add(&targets_, B * C, Arena::kWorkspace);
  a.add(&losses_, B, Arena::kWorkspace);
  a.add(&loss_ws, std::max<size_t>(1, backend_->loss_workspace_bytes(Shape{p_.k, max_batch_, p_.d, C, true})),
        Arena::kWorkspace);
  a.add(&parts_, 4, Arena::kWorkspace);
  a.add(&flags_, 1 + p_.ops.size(), Arena::kWorkspace);

  block_bytes_ = a.total();
  block_ = backend_->try_allocate(block_bytes_);
  if (!block_) {
    std::ostringstream msg;
    msg.setf(std::ios::fixed);
    msg.precision(1);
    msg << "Out of memory on " << backend_->name() << ": the training engine needs " << mib(block_bytes_)
        << " MiB for batches of " << max_batch_ << " (activations and their gradients "
        << mib(a.bytes(Arena::kActivations)) << " MiB, parameters, gradients and optimizer moments "
        << mib(a.bytes(Arena::kParameters)) << " MiB, workspace " << mib(a.bytes(Arena::kWorkspace)) << " MiB); "
        << backend_->memory_state() << ". Lower the batch size or the input size";
    throw BackendError(msg.str());
  }
  a.place(static_cast<char*>(block_));
  loss_ws_ = loss_ws;
  const size_t P = p_.param_sizes.size();
  params_.resize(P);
  grads_.resize(P);
  m_.resize(P);
  v_.resize(P);
  size_t at = 0;
  for (size_t i = 0; i < P; ++i) {
    params_[i] = params_all + at;
    grads_[i] = grads_all_ + at;
    m_[i] = m_all + at;
    v_[i] = v_all + at;
    at += p_.param_sizes[i];
  }
}

void Executor::upload(float* dst, const float* src, size_t count) {
  backend_->upload(dst, src, count * sizeof(float));
  backend_->synchronize();
}

void Executor::download(float* dst, const float* src, size_t count) {
  backend_->download(dst, src, count * sizeof(float));
  backend_->synchronize();
}

void Executor::read_moments(size_t i, float* m, float* v) {
  backend_->download(m, m_[i], p_.param_sizes[i] * sizeof(float));
  backend_->download(v, v_[i], p_.param_sizes[i] * sizeof(float));
  backend_->synchronize();
}

void Executor::write_moments(size_t i, const float* m, const float* v) {
  backend_->upload(m_[i], m, p_.param_sizes[i] * sizeof(float));
  backend_->upload(v_[i], v, p_.param_sizes[i] * sizeof(float));
  backend_->synchronize();
}

ConvShape Executor::conv_shape(const OpDesc& op, int n) const {
  const int x = op.inputs[0];
  return make_conv_shape(n, sh_.c[x], sh_.h[x], sh_.w[x], op.out_c, op.kernel, op.stride, op.same, op.depthwise);
}

void Executor::prepare_input(const float* images, int n) {
  const size_t per = sh_.per_sample[p_.input];
  backend_->upload(act_[p_.input], images, per * n * sizeof(float));
}

void Executor::forward(int n, bool train, uint32_t dropout_seed) {
  Backend& b = *backend_;
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    const int x = op.inputs[0];
    float* y = act_[op.output];
    const float* xa = act_[x];
    const int c = sh_.c[x], hw = sh_.h[x] * sh_.w[x];
    const size_t count = sh_.per_sample[x] * n;
    switch (op.kind) {
      case OpKind::Standardize:
        b.standardize(n, sh_.per_sample[x], xa, y, kInputEps);
        break;
      case OpKind::Conv:
        b.conv_forward(conv_shape(op, n), xa, params_[op.param], y, scratch_);
        break;
      case OpKind::BatchNorm: {
        const bool relu = fused_relu_[i] >= 0;  // then y is the ReLU's output
        if (relu) y = act_[written(i)];
        if (train)
          b.batchnorm_forward_train(n, c, hw, xa, params_[op.param], params_[op.param + 1], y, saved_[i], saved_[i] + c,
                                    kBnEps, relu);
        else
          b.batchnorm_forward_eval(n, c, hw, xa, params_[op.param], params_[op.param + 1], params_[op.param + 2],
                                   params_[op.param + 3], y, kBnEps, relu);
        break;
      }
      case OpKind::Relu:
        if (fused_into_[i] < 0) b.relu_forward(count, xa, y);
        break;
      case OpKind::MaxPool:
        b.maxpool_forward(n, c, sh_.h[x], sh_.w[x], xa, y, argmax_[i]);
        break;
      case OpKind::Add:
        b.add(count, xa, act_[op.inputs[1]], y);
        break;
      case OpKind::Gap:
        b.gap_forward(n, c, hw, xa, y);
        break;
      case OpKind::Dense:
        b.dense_forward(n, op.in_c, op.out_c, xa, params_[op.param], params_[op.param + 1], y);
        break;
      case OpKind::L2Norm:
        b.l2norm_forward(n, c, xa, y, kL2Eps);
        break;
      case OpKind::Concat: {
        const int total = sh_.c[op.output];
        int at = 0;
        for (int t : op.inputs) {
          b.copy_columns(n, sh_.c[t], act_[t], sh_.c[t], 0, y, total, at, false);
          at += sh_.c[t];
        }
        break;
      }
      case OpKind::Dropout:
        if (!train || op.rate <= 0) {
          b.copy(count, xa, y);
          if (train) b.fill(count, saved_[i], 1.f);  // the mask backward reads; no backward follows evaluation
        } else {
          // a mask per op and step, the same on every backend
          const uint64_t seed = static_cast<uint32_t>(dropout_seed ^ (0x9e3779b9u * static_cast<uint32_t>(i + 1)));
          b.dropout_forward(count, xa, y, saved_[i], seed, op.rate);
        }
        break;
      case OpKind::Softmax:
        break;  // the loss computes the probabilities from the logits
    }
  }
}

void Executor::backward(int n) {
  Backend& b = *backend_;
  // A tensor with several readers receives its gradient in parts: the first
  // part is written in place (no zero fill, no add), later ones are added.
  // The loss has written the logits' and embeddings' gradients already.
  std::vector<char>& started = gradient_started_;
  started.assign(p_.tensors, 0);
  started[p_.logits] = started[p_.embeddings] = 1;
  // Where an op's backward writes the gradient of tensor t: in place when t
  // is direct or gets its first part, else into dx_ and then added by `deliver`.
  auto target = [&](int t) -> float* {
    if (flow_[t] == GradientFlow::Skip) return nullptr;
    return flow_[t] == GradientFlow::Direct || !started[t] ? dact_[t] : dx_;
  };
  auto deliver = [&](int t, const float* g) {
    if (flow_[t] != GradientFlow::Accumulate) return;
    if (g != dact_[t]) b.add_into(sh_.per_sample[t] * n, g, dact_[t]);
    started[t] = 1;
  };
  // Add and Concat pass gradients through: a copy, or a sum once started.
  auto pass = [&](int t, int rows, int f, const float* src, int src_stride, int src_offset) {
    if (flow_[t] == GradientFlow::Skip) return;
    b.copy_columns(rows, f, src, src_stride, src_offset, dact_[t], f, 0, started[t] != 0);
    started[t] = 1;
  };
  for (size_t i = p_.ops.size(); i-- > 0;) {
    const OpDesc& op = p_.ops[i];
    // the probabilities come from the loss; the input pipeline needs no gradient
    if (op.kind == OpKind::Softmax || flow_[op.output] == GradientFlow::Skip) continue;
    if (!started[op.output] && flow_[op.output] == GradientFlow::Accumulate) {
      // no reader's backward ran (a branch the loss does not see): its gradient is zero
      b.zero(dact_[op.output], sh_.per_sample[op.output] * n * sizeof(float));
      started[op.output] = 1;
    }
    const int x = op.inputs[0];
    const float* dy = dact_[op.output];
    const float* xa = act_[x];
    const int c = sh_.c[x], hw = sh_.h[x] * sh_.w[x];
    const size_t xcount = sh_.per_sample[x] * n;
    float* dx = target(x);
    if (!dx && op.kind != OpKind::Conv && op.kind != OpKind::Add && op.kind != OpKind::Concat)
      throw std::logic_error("gradient flow: only a convolution may skip its input's gradient");
    switch (op.kind) {
      case OpKind::Conv:
        b.conv_backward(conv_shape(op, n), xa, params_[op.param], dy, dx, grads_[op.param], scratch_);
        break;
      case OpKind::BatchNorm: {
        // fused: the gradient at the ReLU's output, masked by it inside the batch norm's backward
        const bool fused = fused_relu_[i] >= 0;
        b.batchnorm_backward(n, c, hw, xa, params_[op.param], saved_[i], saved_[i] + c, fused ? dact_[written(i)] : dy,
                             dx, grads_[op.param], grads_[op.param + 1], fused ? act_[written(i)] : nullptr);
        break;
      }
      case OpKind::Relu:
        if (fused_into_[i] >= 0) continue;  // done by its batch norm
        b.relu_backward(xcount, act_[op.output], dy, dx);
        break;
      case OpKind::MaxPool:
        b.maxpool_backward(n, c, sh_.h[x], sh_.w[x], argmax_[i], dy, dx);
        break;
      case OpKind::Add: {
        const int f = static_cast<int>(sh_.per_sample[x]);  // n rows of f: one contiguous run
        pass(op.inputs[0], n, f, dy, f, 0);
        pass(op.inputs[1], n, f, dy, f, 0);
        continue;
      }
      case OpKind::Gap:
        b.gap_backward(n, c, hw, dy, dx);
        break;
      case OpKind::Dense:
        b.dense_backward(n, op.in_c, op.out_c, xa, params_[op.param], dy, dx, grads_[op.param], grads_[op.param + 1]);
        break;
      case OpKind::L2Norm:
        b.l2norm_backward(n, c, xa, act_[op.output], dy, dx, kL2Eps);
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
        b.multiply(xcount, dy, saved_[i], dx);
        break;
      case OpKind::Standardize:
      case OpKind::Softmax:
        continue;
    }
    if (dx) deliver(x, dx);
  }
}

std::string Executor::first_nonfinite_output(int n) {
  const size_t ops = p_.ops.size();
  backend_->zero(flags_ + 1, ops * sizeof(int32_t));
  for (size_t i = 0; i < ops; ++i) {
    const OpDesc& op = p_.ops[i];
    if (op.kind != OpKind::Softmax)
      backend_->flag_nonfinite(sh_.per_sample[op.output] * n, act_[written(i)], flags_ + 1 + i);
  }
  std::vector<int32_t> flags(ops);
  backend_->download(flags.data(), flags_ + 1, ops * sizeof(int32_t));
  backend_->synchronize();
  for (size_t i = 0; i < ops; ++i)
    if (flags[i]) return p_.ops[i].name;
  return "";
}

void check_step_input(const ProgramDesc& p, int max_batch, const int32_t* labels, const float* targets, int n) {
  if (n < 1 || n > max_batch)
    throw std::invalid_argument("batch size " + std::to_string(n) + " outside 1.." + std::to_string(max_batch));
  for (int i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= p.classes)
      throw std::invalid_argument("label out of range at " + std::to_string(i));
  if (!targets) return;
  for (int i = 0; i < n; ++i) {
    double mass = 0;
    for (int c = 0; c < p.classes; ++c) {
      const float t = targets[static_cast<size_t>(i) * p.classes + c];
      if (!std::isfinite(t) || t < 0)
        throw std::invalid_argument("target " + std::to_string(t) + " at sample " + std::to_string(i) + ", class " +
                                    std::to_string(c) + " is not a finite non-negative number");
      mass += t;
    }
    if (mass <= 0) throw std::invalid_argument("targets of sample " + std::to_string(i) + " sum to 0");
  }
}

void check_step_options(const StepOptions& o) {
  const std::pair<const char*, double> numbers[] = {{"lambda_ce", o.lambda_ce},
                                                    {"w_fd", o.w_fd},
                                                    {"w_md", o.w_md},
                                                    {"w_ed", o.w_ed},
                                                    {"lr", o.lr},
                                                    {"momentum", o.momentum},
                                                    {"weight_decay", o.weight_decay},
                                                    {"bn_momentum", o.bn_momentum},
                                                    {"beta1", o.beta1},
                                                    {"beta2", o.beta2},
                                                    {"adam_eps", o.adam_eps}};
  std::string bad;
  for (const auto& [name, value] : numbers)
    if (!std::isfinite(value)) bad += (bad.empty() ? "" : ", ") + std::string(name);
  if (!bad.empty()) throw std::invalid_argument("Expected finite step options but received unset or non-finite " + bad);
}

StepResult Executor::train_step(const float* images, const int32_t* labels, int n, const StepOptions& o,
                                int32_t* predictions) {
  check_step_options(o);
  check_step_input(p_, max_batch_, labels, o.targets, n);
  Backend& b = *backend_;
  const int C = p_.classes, k = p_.k, d = p_.d;
  StepResult r;
  prepare_input(images, n);
  b.upload(labels_, labels, n * sizeof(int32_t));
  if (o.targets) b.upload(targets_, o.targets, static_cast<size_t>(n) * C * sizeof(float));
  const float* targets = o.targets ? targets_ : nullptr;
  forward(n, true, o.dropout_seed);
  b.softmax_ce_forward(n, C, act_[p_.logits], labels_, targets, probs_, losses_);
  b.softmax_ce_backward(n, C, probs_, labels_, targets, o.lambda_ce, dact_[p_.logits]);

  // Ad-Corre on the embeddings in the engine's [n][k][d] layout, its gradient written in place.
  const bool with_adcorre = o.adcorre && (o.w_fd != 0 || o.w_md != 0 || o.w_ed != 0);
  const std::vector<float> rho = attention_rho(o, C);  // outlives the backend's asynchronous uploads
  if (with_adcorre) {
    AdcorreCall call{};
    call.embeddings = act_[p_.embeddings];
    call.labels = labels_;
    call.labels_host = labels;
    call.rho_host = rho.empty() ? nullptr : rho.data();
    call.shape = Shape{k, n, d, C, true};
    call.weights = Weights{o.w_fd, o.w_md, o.w_ed};
    call.grad = dact_[p_.embeddings];
    call.parts = parts_;
    call.workspace = loss_ws_;
    b.adcorre_loss(call);
  } else {
    b.zero(dact_[p_.embeddings], static_cast<size_t>(n) * k * d * sizeof(float));
  }

  b.zero(grads_all_, param_floats_ * sizeof(float));
  backward(n);
  b.zero(flags_, sizeof(int32_t));
  b.flag_nonfinite(param_floats_, grads_all_, flags_);
  int32_t grads_bad = 0;
  double parts[4] = {0, 0, 0, 0};
  b.download(&grads_bad, flags_, sizeof(int32_t));
  b.download(probs_h_.data(), probs_, static_cast<size_t>(n) * C * sizeof(float));
  b.download(losses_h_.data(), losses_, n * sizeof(double));
  if (with_adcorre) b.download(parts, parts_, sizeof(parts));
  b.synchronize();

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
    if (op.kind == OpKind::BatchNorm) {
      const int c = sh_.c[op.inputs[0]];
      b.batchnorm_commit(c, saved_[i], saved_[i] + c, params_[op.param + 2], params_[op.param + 3], o.bn_momentum,
                         kBnEps);
    }
  }
  ++steps_;
  const double b1t = 1 - std::pow(o.beta1, static_cast<double>(steps_)),
               b2t = 1 - std::pow(o.beta2, static_cast<double>(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!p_.trainable[i]) continue;
    const double wd = p_.decay[i] ? o.weight_decay : 0.0;
    const size_t size = p_.param_sizes[i];
    if (o.adam)
      b.adam_update(size, params_[i], grads_[i], m_[i], v_[i], o.lr * std::sqrt(b2t) / b1t, o.beta1, o.beta2,
                    o.adam_eps, wd);
    else
      b.sgd_update(size, params_[i], grads_[i], m_[i], o.lr, o.momentum, wd, o.nesterov);
  }
  b.synchronize();
  return r;
}

void Executor::predict(const float* images, int n, float* probs, float* embeddings) {
  Backend& b = *backend_;
  const size_t per = sh_.per_sample[p_.input];
  const int C = p_.classes;
  const size_t emb = static_cast<size_t>(p_.k) * p_.d;
  for (int start = 0; start < n; start += max_batch_) {
    const int batch = std::min(max_batch_, n - start);
    prepare_input(images + static_cast<size_t>(start) * per, batch);
    forward(batch, false, 0);
    if (probs) {
      b.softmax_ce_forward(batch, C, act_[p_.logits], zero_labels_, nullptr, probs_, losses_);
      b.download(probs + static_cast<size_t>(start) * C, probs_, static_cast<size_t>(batch) * C * sizeof(float));
    }
    if (embeddings)
      b.download(embeddings + static_cast<size_t>(start) * emb, act_[p_.embeddings], batch * emb * sizeof(float));
    b.synchronize();
  }
}

std::unique_ptr<Executor> make_engine(ProgramDesc program, int max_batch, int device, Precision precision) {
  if (device >= 0 && precision != Precision::Fp32)
    throw std::invalid_argument("Expected precision fp32 on cuda:" + std::to_string(device) + " but received " +
                                precision_name(precision) + " (bf16 runs on the CPU only for now)");
  std::unique_ptr<Backend> backend = device < 0 ? make_cpu_backend(precision) : make_cuda_backend(device);
  return std::make_unique<Executor>(std::move(program), max_batch, std::move(backend));
}

}  // namespace adcorre::engine
