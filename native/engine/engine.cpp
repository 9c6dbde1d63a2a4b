#include "engine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "../common/rng.h"

namespace adcorre::engine {

TensorShapes infer_shapes(const ProgramDesc& p) {
  const int T = p.tensors;
  TensorShapes s;
  s.c.assign(T, 0);
  s.h.assign(T, 1);
  s.w.assign(T, 1);
  s.c[p.input] = p.channels;
  s.h[p.input] = s.w[p.input] = p.size;
  for (const OpDesc& op : p.ops) {
    const int in = op.inputs.at(0);
    int c = s.c[in], h = s.h[in], w = s.w[in];
    switch (op.kind) {
      case OpKind::Conv:
        c = op.out_c;
        h = conv_out(h, op.kernel, op.stride, op.same);
        w = conv_out(w, op.kernel, op.stride, op.same);
        break;
      case OpKind::MaxPool:
        h = conv_out(h, 3, 2, true);
        w = conv_out(w, 3, 2, true);
        break;
      case OpKind::Gap:
        h = w = 1;
        break;
      case OpKind::Dense:
        c = op.out_c;
        h = w = 1;
        break;
      case OpKind::Concat:
        c = 0;
        for (int i : op.inputs) c += s.c[i];
        h = w = 1;
        break;
      default:
        break;
    }
    if (h < 1 || w < 1) throw std::invalid_argument("input too small for the network at op " + op.name);
    s.c[op.output] = c;
    s.h[op.output] = h;
    s.w[op.output] = w;
  }
  s.per_sample.resize(T);
  for (int t = 0; t < T; ++t) s.per_sample[t] = static_cast<size_t>(s.c[t]) * s.h[t] * s.w[t];
  return s;
}

std::vector<GradientFlow> gradient_flow(const ProgramDesc& p) {
  std::vector<int> readers(p.tensors, 0);
  for (const OpDesc& op : p.ops)
    if (op.kind != OpKind::Softmax)  // skipped by backward
      for (int t : op.inputs) readers[t]++;
  std::vector<GradientFlow> flow(p.tensors, GradientFlow::Accumulate);
  for (int t = 0; t < p.tensors; ++t)
    if (readers[t] == 1 && t != p.logits && t != p.embeddings) flow[t] = GradientFlow::Direct;
  // the input is read by the first convolution only (Xception's entry); anything else keeps it computed
  bool conv_only = readers[p.input] == 1;
  for (const OpDesc& op : p.ops)
    for (int t : op.inputs)
      if (t == p.input && (op.kind != OpKind::Conv || op.depthwise)) conv_only = false;
  if (conv_only) flow[p.input] = GradientFlow::Skip;
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

Engine::Engine(ProgramDesc program, int max_batch) : p_(std::move(program)), max_batch_(max_batch) {
  if (max_batch < 1) throw std::invalid_argument("max_batch must be >= 1");
  const int T = p_.tensors;
  TensorShapes shapes = infer_shapes(p_);
  ch_ = std::move(shapes.c);
  hh_ = std::move(shapes.h);
  ww_ = std::move(shapes.w);
  per_sample_ = std::move(shapes.per_sample);
  flow_ = gradient_flow(p_);
  act_.resize(T);
  dact_.resize(T);
  for (int t = 0; t < T; ++t) {
    act_[t].assign(per_sample_[t] * max_batch, 0.f);
    dact_[t].assign(per_sample_[t] * max_batch, 0.f);
  }
  for (size_t s : p_.param_sizes) {
    params_.emplace_back(s, 0.f);
    grads_.emplace_back(s, 0.f);
    m_.emplace_back(s, 0.f);
    v_.emplace_back(s, 0.f);
  }
  saved_.resize(p_.ops.size());
  argmax_.resize(p_.ops.size());
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    if (op.kind == OpKind::BatchNorm) saved_[i].assign(2 * static_cast<size_t>(op.out_c), 0.f);
    if (op.kind == OpKind::Dropout) saved_[i].assign(per_sample_[op.output] * max_batch, 0.f);
    if (op.kind == OpKind::MaxPool) argmax_[i].assign(per_sample_[op.output] * max_batch, 0);
  }
  probs_ws_.assign(static_cast<size_t>(max_batch) * p_.classes, 0.f);
}

void Engine::forward(const float* images, int n, bool train, uint32_t dropout_seed) {
  // Per-image standardisation, as at the head of the ONNX graph (lib/model/onnx.ts NORMALIZATION).
  float* in = act_[p_.input].data();
  const size_t per = per_sample_[p_.input];
  for (int s = 0; s < n; ++s) {
    const float* img = images + s * per;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < per; ++i) sum += img[i];
    const double mean = sum / per;
    for (size_t i = 0; i < per; ++i) sq += (img[i] - mean) * (img[i] - mean);
    const double inv = 1.0 / std::sqrt(sq / per + kInputEps);
    for (size_t i = 0; i < per; ++i) in[s * per + i] = static_cast<float>((img[i] - mean) * inv);
  }
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    const int x = op.inputs[0];
    float* y = act_[op.output].data();
    const float* xa = act_[x].data();
    const int hw = hh_[x] * ww_[x];
    switch (op.kind) {
      case OpKind::Conv: {
        ConvShape s = make_conv_shape(n, ch_[x], hh_[x], ww_[x], op.out_c, op.kernel, op.stride, op.same, op.depthwise);
        conv_forward(s, xa, params_[op.param].data(), y, scratch_);
        break;
      }
      case OpKind::BatchNorm: {
        float* g = params_[op.param].data();
        float* b = params_[op.param + 1].data();
        float* rm = params_[op.param + 2].data();
        float* rv = params_[op.param + 3].data();
        // Running statistics are updated after the step proves finite (commit_running_stats).
        if (train)
          batchnorm_forward_train<float>(n, ch_[x], hw, xa, g, b, y, saved_[i].data(), saved_[i].data() + ch_[x],
                                         nullptr, nullptr, 0.0, kBnEps);
        else
          batchnorm_forward_eval(n, ch_[x], hw, xa, g, b, rm, rv, y, kBnEps);
        break;
      }
      case OpKind::Relu:
        relu_forward(per_sample_[x] * n, xa, y);
        break;
      case OpKind::MaxPool:
        maxpool_forward(n, ch_[x], hh_[x], ww_[x], xa, y, argmax_[i].data());
        break;
      case OpKind::Add: {
        add_forward(per_sample_[x] * n, xa, act_[op.inputs[1]].data(), y);
        break;
      }
      case OpKind::Gap:
        gap_forward(n, ch_[x], hw, xa, y);
        break;
      case OpKind::Dense:
        dense_forward(n, op.in_c, op.out_c, xa, params_[op.param].data(), params_[op.param + 1].data(), y);
        break;
      case OpKind::L2Norm:
        l2norm_forward(n, ch_[x], xa, y, kL2Eps);
        break;
      case OpKind::Concat: {
        const int total = ch_[op.output];
        int at = 0;
        for (int t : op.inputs) {
          const int f = ch_[t];
          for (int r = 0; r < n; ++r)
            std::memcpy(y + static_cast<size_t>(r) * total + at, act_[t].data() + static_cast<size_t>(r) * f,
                        f * sizeof(float));
          at += f;
        }
        break;
      }
      case OpKind::Dropout: {
        const size_t cnt = per_sample_[x] * n;
        if (!train || op.rate <= 0) {
          std::memcpy(y, xa, cnt * sizeof(float));
          std::fill(saved_[i].begin(), saved_[i].begin() + cnt, 1.f);
          break;
        }
        SplitMix rng(dropout_seed ^ (0x9e3779b9u * static_cast<uint32_t>(i + 1)));
        const float scale = static_cast<float>(1.0 / (1.0 - op.rate));
        for (size_t j = 0; j < cnt; ++j) {
          const float m = rng.uniform() < op.rate ? 0.f : scale;
          saved_[i][j] = m;
          y[j] = xa[j] * m;
        }
        break;
      }
      case OpKind::Softmax:
        break;  // the loss computes the probabilities from the logits
    }
  }
}

std::string Engine::first_nonfinite_output(int n) const {
  for (const OpDesc& op : p_.ops)
    if (op.kind != OpKind::Softmax && !all_finite(per_sample_[op.output] * n, act_[op.output].data())) return op.name;
  return "";
}

void Engine::backward(int n) {
  for (int t = 0; t < p_.tensors; ++t)
    if (flow_[t] == GradientFlow::Accumulate && t != p_.logits && t != p_.embeddings)
      fill_zero(per_sample_[t] * n, dact_[t].data());
  // Where an op's backward writes the gradient of tensor t: in place when t
  // is direct, else into scratch and then added by `deliver`.
  auto target = [&](int t) -> float* {
    if (flow_[t] == GradientFlow::Skip) return nullptr;
    if (flow_[t] == GradientFlow::Direct) return dact_[t].data();
    scratch2_.resize(std::max(scratch2_.size(), per_sample_[t] * n));
    return scratch2_.data();
  };
  auto deliver = [&](int t, const float* g) {
    if (flow_[t] != GradientFlow::Accumulate) return;
    add_into(per_sample_[t] * n, g, dact_[t].data());
  };
  // Add and Concat pass gradients through: a copy where direct, else a sum.
  auto pass = [&](int t, const float* g, size_t count, size_t dst_offset) {
    if (flow_[t] == GradientFlow::Skip) return;
    float* d = dact_[t].data() + dst_offset;
    if (flow_[t] == GradientFlow::Direct)
      std::memcpy(d, g, count * sizeof(float));
    else
      add_into(count, g, d);
  };
  for (size_t i = p_.ops.size(); i-- > 0;) {
    const OpDesc& op = p_.ops[i];
    if (op.kind == OpKind::Softmax) continue;
    const int x = op.inputs[0];
    const float* dy = dact_[op.output].data();
    const float* xa = act_[x].data();
    const int hw = hh_[x] * ww_[x];
    const size_t xcount = per_sample_[x] * n;
    float* dx = target(x);
    if (!dx && op.kind != OpKind::Conv && op.kind != OpKind::Add && op.kind != OpKind::Concat)
      throw std::logic_error("gradient flow: only a convolution may skip its input's gradient");
    switch (op.kind) {
      case OpKind::Conv: {
        ConvShape s = make_conv_shape(n, ch_[x], hh_[x], ww_[x], op.out_c, op.kernel, op.stride, op.same, op.depthwise);
        conv_backward(s, xa, params_[op.param].data(), dy, dx, grads_[op.param].data(), scratch_);
        break;
      }
      case OpKind::BatchNorm:
        batchnorm_backward(n, ch_[x], hw, xa, params_[op.param].data(), saved_[i].data(), saved_[i].data() + ch_[x], dy,
                           dx, grads_[op.param].data(), grads_[op.param + 1].data());
        break;
      case OpKind::Relu:
        relu_backward(xcount, act_[op.output].data(), dy, dx);
        break;
      case OpKind::MaxPool:
        maxpool_backward(n, ch_[x], hh_[x], ww_[x], argmax_[i].data(), dy, dx);
        break;
      case OpKind::Add:
        pass(op.inputs[0], dy, xcount, 0);
        pass(op.inputs[1], dy, xcount, 0);
        continue;
      case OpKind::Gap:
        gap_backward(n, ch_[x], hw, dy, dx);
        break;
      case OpKind::Dense:
        dense_backward(n, op.in_c, op.out_c, xa, params_[op.param].data(), dy, dx, grads_[op.param].data(),
                       grads_[op.param + 1].data());
        break;
      case OpKind::L2Norm:
        l2norm_backward(n, ch_[x], xa, act_[op.output].data(), dy, dx, kL2Eps);
        break;
      case OpKind::Concat: {
        const int total = ch_[op.output];
        int at = 0;
        for (int t : op.inputs) {
          const int f = ch_[t];
          for (int r = 0; r < n; ++r) pass(t, dy + static_cast<size_t>(r) * total + at, f, static_cast<size_t>(r) * f);
          at += f;
        }
        continue;
      }
      case OpKind::Dropout:
        for (size_t j = 0; j < xcount; ++j) dx[j] = dy[j] * saved_[i][j];
        break;
      case OpKind::Softmax:
        continue;
    }
    if (dx) deliver(x, dx);
  }
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

StepResult Engine::train_step(const float* images, const int32_t* labels, int n, const StepOptions& o,
                              int32_t* predictions) {
  check_step_input(p_, max_batch_, labels, o.targets, n);
  StepResult r;
  forward(images, n, true, o.dropout_seed);
  const int C = p_.classes;
  r.ce = softmax_ce_forward(n, C, act_[p_.logits].data(), labels, o.targets, probs_ws_.data());
  r.correct = score_predictions(probs_ws_.data(), labels, n, C, predictions);
  softmax_ce_backward(n, C, probs_ws_.data(), labels, o.targets, o.lambda_ce, dact_[p_.logits].data());

  // Ad-Corre on the embeddings: [n][k][d] here, [k][n][d] in the loss.
  float* demb = dact_[p_.embeddings].data();
  const int k = p_.k, d = p_.d;
  std::fill(demb, demb + static_cast<size_t>(n) * k * d, 0.f);
  if (o.adcorre && (o.w_fd != 0 || o.w_md != 0 || o.w_ed != 0)) {
    std::vector<float> e(static_cast<size_t>(k) * n * d), g(e.size());
    const float* emb = act_[p_.embeddings].data();
    for (int a = 0; a < n; ++a)
      for (int j = 0; j < k; ++j)
        std::memcpy(&e[(static_cast<size_t>(j) * n + a) * d], emb + (static_cast<size_t>(a) * k + j) * d,
                    d * sizeof(float));
    const std::vector<float> rho = attention_rho(o, C);
    Weights w{o.w_fd, o.w_md, o.w_ed};
    LossParts parts = adcorre_.forward(e.data(), labels, rho.empty() ? nullptr : rho.data(), Shape{k, n, d, C}, w);
    adcorre_.backward(g.data());
    for (int a = 0; a < n; ++a)
      for (int j = 0; j < k; ++j)
        std::memcpy(demb + (static_cast<size_t>(a) * k + j) * d, &g[(static_cast<size_t>(j) * n + a) * d],
                    d * sizeof(float));
    r.fd = parts.fd;
    r.md = parts.md;
    r.ed = parts.ed;
    r.loss = parts.loss;
  }
  r.loss += o.lambda_ce * r.ce;

  for (auto& g : grads_) fill_zero(g.size(), g.data());
  backward(n);

  r.finite = std::isfinite(r.loss);
  for (size_t i = 0; r.finite && i < grads_.size(); ++i) r.finite = all_finite(grads_[i].size(), grads_[i].data());
  if (!r.finite) {
    r.bad_layer = first_nonfinite_output(n);
    if (r.bad_layer.empty()) r.bad_layer = "gradients";
    return r;  // the update is skipped
  }

  commit_running_stats(o.bn_momentum);
  ++steps_;
  const double b1t = 1 - std::pow(o.beta1, static_cast<double>(steps_)),
               b2t = 1 - std::pow(o.beta2, static_cast<double>(steps_));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!p_.trainable[i]) continue;
    float* w = params_[i].data();
    const float* g = grads_[i].data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const double wd = p_.decay[i] ? o.weight_decay : 0.0;
    const size_t size = params_[i].size();
    if (o.adam)
      adam_update(size, w, g, m, v, o.lr * std::sqrt(b2t) / b1t, o.beta1, o.beta2, o.adam_eps, wd);
    else
      sgd_momentum_update(size, w, g, m, o.lr, o.momentum, wd);
  }
  return r;
}

void Engine::commit_running_stats(double momentum) {
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    if (op.kind != OpKind::BatchNorm) continue;
    float* rm = params_[op.param + 2].data();
    float* rv = params_[op.param + 3].data();
    const int c = op.out_c;
    for (int ch = 0; ch < c; ++ch) {
      const double mean = saved_[i][ch], invstd = saved_[i][c + ch];
      const double var = 1.0 / (invstd * invstd) - kBnEps;
      rm[ch] = static_cast<float>(momentum * rm[ch] + (1 - momentum) * mean);
      rv[ch] = static_cast<float>(momentum * rv[ch] + (1 - momentum) * var);
    }
  }
}

void Engine::predict(const float* images, int n, float* probs, float* embeddings) {
  for (int start = 0; start < n; start += max_batch_) {
    const int b = std::min(max_batch_, n - start);
    forward(images + static_cast<size_t>(start) * per_sample_[p_.input], b, false, 0);
    if (probs) {
      std::vector<int32_t> zeros(b, 0);
      softmax_ce_forward<float>(b, p_.classes, act_[p_.logits].data(), zeros.data(), nullptr,
                                probs + static_cast<size_t>(start) * p_.classes);
    }
    if (embeddings) {
      const size_t per = static_cast<size_t>(p_.k) * p_.d;
      std::memcpy(embeddings + start * per, act_[p_.embeddings].data(), b * per * sizeof(float));
    }
  }
}

}  // namespace adcorre::engine
