// Whole training steps of the CUDA engine against the CPU engine: the same
// hand-made program (every op kind of engine.h: standardize, convolutions
// dense / depthwise / pointwise / strided shortcut, batch norm with fused and
// plain ReLU, max pool, residual add, global average pool, dropout, dense,
// L2 norm, concatenation, softmax) and the same batches through one Executor
// per backend: Adam steps with hard and soft targets and class-accuracy
// attention, then an SGD step, then evaluation. Built under emulation
// (ADCORRE_CUDA_EMULATED; scripts/cuda-emulated.sh), it runs the CUDA kernels
// on the CPU; it runs unchanged on a GPU build.
// Tolerances (float kernels in different summation orders, compounded over the steps):
//   step loss and its parts: relative error <= 1e-4;
//   every parameter's gradient after each step: ||g - g_cpu|| / ||g_cpu|| <= 1e-3, and g_cpu != 0;
//   every parameter (weights, running statistics) after each step: relative norm error <= 1e-5;
//   predicted classes equal; evaluation probabilities and embeddings: relative norm error <= 1e-4.
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine.h"

using namespace adcorre;
using namespace adcorre::engine;

namespace {

int passed = 0, failed = 0;

void report(bool ok, const std::string& what, double err) {
  (ok ? passed : failed)++;
  std::printf("%s %s (relative error %.2e)\n", ok ? "ok  " : "FAIL", what.c_str(), err);
  std::fflush(stdout);
}

double norm_error(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
double rel(double v, double ref) { return ref == 0 ? std::fabs(v) : std::fabs(v - ref) / std::fabs(ref); }

OpDesc op(OpKind kind, const std::string& name, std::vector<int> inputs, int output, int param = -1) {
  OpDesc o;
  o.kind = kind;
  o.name = name;
  o.inputs = std::move(inputs);
  o.output = output;
  o.param = param;
  return o;
}
OpDesc conv(const std::string& name, int in, int out, int param, int in_c, int out_c, int k, int stride, bool same,
            bool depthwise) {
  OpDesc o = op(OpKind::Conv, name, {in}, out, param);
  o.in_c = in_c;
  o.out_c = out_c;
  o.kernel = k;
  o.stride = stride;
  o.same = same;
  o.depthwise = depthwise;
  return o;
}
// out_c: the input's channels (the executor sizes the saved mean and inverse
// deviation and commits the running statistics by it; the N-API binding
// refuses any other value).
OpDesc batchnorm(const std::string& name, int in, int out, int param, int channels) {
  OpDesc o = op(OpKind::BatchNorm, name, {in}, out, param);
  o.in_c = o.out_c = channels;
  return o;
}
OpDesc dense(const std::string& name, int in, int out, int param, int in_c, int out_c) {
  OpDesc o = op(OpKind::Dense, name, {in}, out, param);
  o.in_c = in_c;
  o.out_c = out_c;
  return o;
}

// 1 x 11 x 11 images, k = 3 heads of d = 5, 4 classes.
ProgramDesc program() {
  ProgramDesc p;
  p.channels = 1;
  p.size = 11;
  p.k = 3;
  p.d = 5;
  p.classes = 4;
  p.input = 0;
  p.ops.push_back(op(OpKind::Standardize, "standardize", {0}, 1));       // eps: the op table's kInputEps
  p.ops.push_back(conv("entry", 1, 2, 0, 1, 6, 3, 2, false, false));     // 11 -> 5, valid
  p.ops.push_back(batchnorm("entry_bn", 2, 3, 1, 6));                    // params 1..4
  p.ops.push_back(op(OpKind::Relu, "entry_relu", {3}, 4));               // fused into the batch norm
  p.ops.push_back(conv("dw", 4, 5, 5, 6, 6, 3, 1, true, true));          // depthwise 3x3 same
  p.ops.push_back(conv("pw", 5, 6, 6, 6, 8, 1, 1, false, false));        // pointwise
  p.ops.push_back(batchnorm("pw_bn", 6, 7, 7, 8));                       // params 7..10, no ReLU
  p.ops.push_back(op(OpKind::MaxPool, "pool", {7}, 8));                  // 5 -> 3
  p.ops.push_back(conv("shortcut", 4, 9, 11, 6, 8, 1, 2, true, false));  // 1x1 stride 2: 5 -> 3
  p.ops.push_back(op(OpKind::Add, "add", {8, 9}, 10));
  p.ops.push_back(op(OpKind::Relu, "add_relu", {10}, 11));  // after an add: a plain ReLU
  p.ops.push_back(op(OpKind::Gap, "gap", {11}, 12));
  OpDesc drop = op(OpKind::Dropout, "dropout", {12}, 13);
  drop.rate = 0.25;
  p.ops.push_back(drop);
  p.ops.push_back(dense("embed", 13, 14, 12, 8, 15));  // params 12, 13
  p.ops.push_back(op(OpKind::L2Norm, "l2", {14}, 15));
  p.ops.push_back(op(OpKind::Concat, "concat", {15, 12}, 16));  // 15 + 8
  p.ops.push_back(dense("logits", 16, 17, 14, 23, 4));          // params 14, 15
  p.ops.push_back(op(OpKind::Softmax, "softmax", {17}, 18));
  p.tensors = 19;
  p.embeddings = 15;
  p.logits = 17;
  p.probs = 18;
  p.param_sizes = {54, 6, 6, 6, 6, 54, 48, 8, 8, 8, 8, 48, 120, 15, 92, 4};
  p.trainable.assign(p.param_sizes.size(), true);
  p.decay.assign(p.param_sizes.size(), false);
  for (int i : {3, 4, 9, 10}) p.trainable[i] = false;  // running statistics
  for (int i : {0, 5, 6, 11, 12, 14}) p.decay[i] = true;
  return p;
}

struct Engines {
  Executor cpu, cuda;
};

void set_params(Executor& e, const ProgramDesc& p) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 0.4f);
  for (size_t i = 0; i < p.param_sizes.size(); ++i) {
    std::vector<float> v(p.param_sizes[i]);
    for (auto& x : v) x = nd(rng);
    if (i == 1 || i == 7 || i == 4 || i == 10)
      for (auto& x : v) x = 1.f + 0.1f * x;  // gamma and running variance near 1
    e.write_param(i, v.data());
  }
}

void compare_state(Engines& e, const ProgramDesc& p, const std::string& when) {
  for (size_t i = 0; i < p.param_sizes.size(); ++i) {
    std::vector<float> a(p.param_sizes[i]), b(p.param_sizes[i]);
    e.cpu.read_param(i, a.data());
    e.cuda.read_param(i, b.data());
    const double err = norm_error(b, a);
    report(err <= 1e-5, when + ": parameter " + std::to_string(i) + " = cpu", err);
    if (!p.trainable[i]) continue;
    e.cpu.read_grad(i, a.data());
    e.cuda.read_grad(i, b.data());
    // a zero reference compares nothing (norm_error then gives the absolute norm)
    double ref = 0;
    for (float g : a) ref += double(g) * g;
    if (ref == 0) {
      report(false, when + ": gradient of parameter " + std::to_string(i) + " is zero on the cpu", 0);
      continue;
    }
    const double gerr = norm_error(b, a);
    report(gerr <= 1e-3, when + ": gradient of parameter " + std::to_string(i) + " = cpu", gerr);
  }
}

}  // namespace

int main() {
  if (!cuda_usable()) {
    std::printf("FAIL no CUDA device (or emulator): %s\n", cuda_info().error.c_str());
    return 1;
  }
  try {
    const ProgramDesc p = program();
    const int max_batch = 8, n = 7;
    Engines e{Executor(p, max_batch, make_cpu_backend()), Executor(p, max_batch, make_cuda_backend(0))};
    std::printf("engines: %s, %s\n", e.cpu.backend().name().c_str(), e.cuda.backend().name().c_str());
    set_params(e.cpu, p);
    set_params(e.cuda, p);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::vector<float> images(static_cast<size_t>(n) * 121), targets(static_cast<size_t>(n) * 4);
    const std::vector<int32_t> labels = {0, 2, 1, 2, 0, 1, 2};  // class 3 absent
    const std::vector<float> accuracy = {0.5f, 0.25f, 0.75f, 0.f};
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < 4; ++c) targets[i * 4 + c] = (c == labels[i] ? 0.7f : 0.1f);
    for (int step = 0; step < 4; ++step) {
      for (auto& x : images) x = u(rng);
      StepOptions o;  // every number set: the engine has no defaults
      o.lambda_ce = o.w_fd = o.w_ed = 1;
      o.momentum = 0.9;
      o.bn_momentum = 0.99;
      o.lr = 1e-2;
      o.weight_decay = 1e-4;
      o.dropout_seed = 100 + step;
      o.w_md = 0.5;
      if (step == 1) o.class_accuracy = accuracy.data();
      if (step == 2) o.targets = targets.data();
      if (step == 3) {
        o.adam = false;  // SGD with momentum
        o.lr = 0.05;
      }
      std::vector<int32_t> pa(n), pb(n);
      const StepResult a = e.cpu.train_step(images.data(), labels.data(), n, o, pa.data());
      const StepResult b = e.cuda.train_step(images.data(), labels.data(), n, o, pb.data());
      const std::string when = "step " + std::to_string(step + 1) + (step == 3 ? " (sgd)" : " (adam)");
      report(a.finite && b.finite, when + ": finite on both", 0);
      const double err =
          std::max({rel(b.loss, a.loss), rel(b.ce, a.ce), rel(b.fd, a.fd), rel(b.md, a.md), rel(b.ed, a.ed)});
      report(err <= 1e-4, when + ": loss, ce, fd, md, ed = cpu", err);
      report(pa == pb && a.correct == b.correct, when + ": predictions = cpu", 0);
      compare_state(e, p, when);
    }
    std::vector<float> pa(n * 4), pb(n * 4), ea(n * 15), eb(n * 15);
    e.cpu.predict(images.data(), n, pa.data(), ea.data());
    e.cuda.predict(images.data(), n, pb.data(), eb.data());
    const double perr = norm_error(pb, pa), eerr = norm_error(eb, ea);
    report(perr <= 1e-4, "predict: probabilities = cpu", perr);
    report(eerr <= 1e-4, "predict: embeddings = cpu", eerr);
  } catch (const std::exception& ex) {
    std::printf("FAIL %s\n", ex.what());
    failed++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
