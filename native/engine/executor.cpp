// The executor: one walk of the program for every backend (engine.h); its
// plan (shapes, gradient flow, fusion, the memory block) is executor_plan.cpp.
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
#include <stdexcept>

#include "engine.h"

namespace adcorre::engine {

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
        b.standardize(n, sh_.per_sample[x], xa, y, op.eps);
        break;
      case OpKind::Conv:
        b.conv_forward(conv_shape(op, n), xa, params_[op.param], y, scratch_);
        break;
      case OpKind::BatchNorm: {
        const bool relu = fused_relu_[i] >= 0;  // then y is the ReLU's output
        if (relu) y = act_[written(i)];
        if (train)
          b.batchnorm_forward_train(n, c, hw, xa, params_[op.param + bn_param::gamma],
                                    params_[op.param + bn_param::beta], y, saved_[i], saved_[i] + c, kBnEps, relu);
        else
          b.batchnorm_forward_eval(n, c, hw, xa, params_[op.param + bn_param::gamma],
                                   params_[op.param + bn_param::beta], params_[op.param + bn_param::mean],
                                   params_[op.param + bn_param::var], y, kBnEps, relu);
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
        b.dense_forward(n, op.in_c, op.out_c, xa, params_[op.param + dense_param::weight],
                        params_[op.param + dense_param::bias], y);
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
        b.batchnorm_backward(n, c, hw, xa, params_[op.param + bn_param::gamma], saved_[i], saved_[i] + c,
                             fused ? dact_[written(i)] : dy, dx, grads_[op.param + bn_param::gamma],
                             grads_[op.param + bn_param::beta], fused ? act_[written(i)] : nullptr);
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
        b.dense_backward(n, op.in_c, op.out_c, xa, params_[op.param + dense_param::weight], dy, dx,
                         grads_[op.param + dense_param::weight], grads_[op.param + dense_param::bias]);
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
      b.batchnorm_commit(c, saved_[i], saved_[i] + c, params_[op.param + bn_param::mean],
                         params_[op.param + bn_param::var], o.bn_momentum, kBnEps);
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
