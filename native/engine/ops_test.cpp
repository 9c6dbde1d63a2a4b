// Finite-difference checks of every engine operation's backward, in double,
// on small shapes (odd sizes, strides 1 and 2, 'valid' and 'same' padding,
// padding edges). Built with the addon (target adcorre_ops_test) and run by
// `npm test` (test/engine-ops.test.js). Tolerance: relative error of the
// whole gradient <= 1e-6 against central differences with h = 1e-6.
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "ops.h"

using namespace adcorre::engine;
using Vec = std::vector<double>;

static std::mt19937_64 rng(7);
static Vec randn(size_t n, double scale = 1) {
  std::normal_distribution<double> nd(0, scale);
  Vec v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
static double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

static int passed = 0, failed = 0;

// loss(inputs) = <forward(inputs), r>; analytic(inputs, r) returns the gradient of each input.
static void check(const std::string& name, std::vector<Vec*> inputs, const std::function<Vec()>& forward,
                  const std::function<std::vector<Vec>(const Vec& r)>& analytic) {
  const Vec y0 = forward();
  const Vec r = randn(y0.size());
  const std::vector<Vec> grads = analytic(r);
  double worst = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Vec& x = *inputs[k];
    Vec num(x.size());
    const double h = 1e-6;
    for (size_t i = 0; i < x.size(); ++i) {
      const double keep = x[i];
      x[i] = keep + h;
      const double up = dot(forward(), r);
      x[i] = keep - h;
      const double down = dot(forward(), r);
      x[i] = keep;
      num[i] = (up - down) / (2 * h);
    }
    double diff = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      diff += (grads[k][i] - num[i]) * (grads[k][i] - num[i]);
      ref += num[i] * num[i];
    }
    worst = std::max(worst, std::sqrt(diff / std::max(ref, 1e-300)));
  }
  const bool ok = worst <= 1e-6;
  (ok ? passed : failed)++;
  std::printf("%s %s (relative error %.2e)\n", ok ? "ok  " : "FAIL", name.c_str(), worst);
}

// A direct comparison: passes when error <= tolerance.
static void report(const std::string& name, double error, double tolerance) {
  const bool ok = error <= tolerance;
  (ok ? passed : failed)++;
  std::printf("%s %s (error %.2e, tolerance %.0e)\n", ok ? "ok  " : "FAIL", name.c_str(), error, tolerance);
}

static void conv_case(int n, int c, int h, int w, int o, int k, int stride, bool same, bool depthwise) {
  if (depthwise) o = c;
  Vec x = randn(static_cast<size_t>(n) * c * h * w), wt = randn(static_cast<size_t>(o) * (depthwise ? 1 : c) * k * k);
  const ConvShape s = make_conv_shape(n, c, h, w, o, k, stride, same, depthwise);
  std::vector<double> scratch;
  auto fwd = [&] {
    Vec y(static_cast<size_t>(n) * o * s.oh * s.ow);
    conv_forward(s, x.data(), wt.data(), y.data(), scratch);
    return y;
  };
  auto bwd = [&](const Vec& r) {
    Vec dx(x.size()), dw(wt.size(), 0.0);
    conv_backward(s, x.data(), wt.data(), r.data(), dx.data(), dw.data(), scratch);
    return std::vector<Vec>{dx, dw};
  };
  char name[160];
  std::snprintf(name, sizeof name, "conv %s k%d s%d %s n%d c%d %dx%d -> o%d", depthwise ? "depthwise" : "dense", k,
                stride, same ? "same" : "valid", n, c, h, w, o);
  check(name, {&x, &wt}, fwd, bwd);
}

int main() {
  conv_case(2, 3, 7, 6, 4, 3, 2, false, false);  // entry conv1: 3x3/2 valid
  conv_case(2, 2, 6, 7, 3, 3, 1, false, false);  // entry conv2: 3x3 valid
  conv_case(2, 3, 5, 5, 4, 3, 1, true, false);
  conv_case(2, 3, 5, 6, 3, 3, 1, true, true);    // depthwise 3x3 same
  conv_case(1, 4, 4, 4, 4, 3, 2, true, true);    // depthwise stride 2, even size
  conv_case(2, 3, 4, 5, 5, 1, 1, false, false);  // pointwise
  conv_case(2, 3, 7, 6, 4, 1, 2, true, false);   // shortcut 1x1/2 same, odd
  conv_case(1, 2, 6, 6, 3, 1, 2, true, false);   // shortcut, even

  {  // batch norm, training statistics
    const int n = 3, c = 2, hw = 5;
    Vec x = randn(n * c * hw, 2), g = randn(c), b = randn(c);
    Vec mean(c), inv(c);
    auto fwd = [&] {
      Vec y(x.size());
      batchnorm_forward_train<double>(n, c, hw, x.data(), g.data(), b.data(), y.data(), mean.data(), inv.data(),
                                      nullptr, nullptr, 0.99, 1e-3);
      return y;
    };
    auto bwd = [&](const Vec& r) {
      fwd();
      Vec dx(x.size()), dg(c, 0.0), db(c, 0.0);
      batchnorm_backward<double>(n, c, hw, x.data(), g.data(), mean.data(), inv.data(), r.data(), dx.data(), dg.data(),
                                 db.data());
      return std::vector<Vec>{dx, dg, db};
    };
    check("batchnorm (training statistics)", {&x, &g, &b}, fwd, bwd);
  }
  {  // relu (away from 0)
    Vec x = randn(40);
    for (auto& v : x) v += v > 0 ? 0.1 : -0.1;
    auto fwd = [&] {
      Vec y(x.size());
      relu_forward<double>(x.size(), x.data(), y.data());
      return y;
    };
    auto bwd = [&](const Vec& r) {
      Vec y = fwd(), dx(x.size());
      relu_backward<double>(x.size(), y.data(), r.data(), dx.data());
      return std::vector<Vec>{dx};
    };
    check("relu", {&x}, fwd, bwd);
  }
  for (auto [h, w] : {std::pair{7, 7}, std::pair{6, 5}, std::pair{2, 3}}) {  // max pool 3x3/2 same, odd/even/tiny
    const int n = 2, c = 2;
    Vec x = randn(static_cast<size_t>(n) * c * h * w);
    const int oh = conv_out(h, 3, 2, true), ow = conv_out(w, 3, 2, true);
    std::vector<int32_t> am(static_cast<size_t>(n) * c * oh * ow);
    auto fwd = [&] {
      Vec y(am.size());
      maxpool_forward<double>(n, c, h, w, x.data(), y.data(), am.data());
      return y;
    };
    auto bwd = [&](const Vec& r) {
      fwd();
      Vec dx(x.size());
      maxpool_backward<double>(n, c, h, w, am.data(), r.data(), dx.data());
      return std::vector<Vec>{dx};
    };
    check("maxpool 3x3/2 same " + std::to_string(h) + "x" + std::to_string(w), {&x}, fwd, bwd);
  }
  {
    const int n = 2, c = 3, hw = 6;
    Vec x = randn(n * c * hw);
    auto fwd = [&] {
      Vec y(n * c);
      gap_forward<double>(n, c, hw, x.data(), y.data());
      return y;
    };
    auto bwd = [&](const Vec& r) {
      Vec dx(x.size());
      gap_backward<double>(n, c, hw, r.data(), dx.data());
      return std::vector<Vec>{dx};
    };
    check("global average pool", {&x}, fwd, bwd);
  }
  {
    const int n = 3, in = 5, out = 4;
    Vec x = randn(n * in), w = randn(out * in), b = randn(out);
    auto fwd = [&] {
      Vec y(n * out);
      dense_forward<double>(n, in, out, x.data(), w.data(), b.data(), y.data());
      return y;
    };
    auto bwd = [&](const Vec& r) {
      Vec dx(x.size()), dw(w.size(), 0.0), db(b.size(), 0.0);
      dense_backward<double>(n, in, out, x.data(), w.data(), r.data(), dx.data(), dw.data(), db.data());
      return std::vector<Vec>{dx, dw, db};
    };
    check("dense", {&x, &w, &b}, fwd, bwd);
  }
  {
    const int rows = 3, dim = 5;
    Vec x = randn(rows * dim);
    auto fwd = [&] {
      Vec y(x.size());
      l2norm_forward<double>(rows, dim, x.data(), y.data(), 1e-12);
      return y;
    };
    auto bwd = [&](const Vec& r) {
      Vec y = fwd(), dx(x.size());
      l2norm_backward<double>(rows, dim, x.data(), y.data(), r.data(), dx.data(), 1e-12);
      return std::vector<Vec>{dx};
    };
    check("l2 normalisation", {&x}, fwd, bwd);
  }
  {
    const int n = 4, classes = 5;
    Vec z = randn(n * classes, 2);
    std::vector<int32_t> labels = {0, 3, 4, 3};
    Vec probs(z.size());
    auto fwd = [&] {
      return Vec{softmax_ce_forward<double>(n, classes, z.data(), labels.data(), nullptr, probs.data())};
    };
    auto bwd = [&](const Vec& r) {
      fwd();
      Vec dz(z.size());
      softmax_ce_backward<double>(n, classes, probs.data(), labels.data(), nullptr, r[0], dz.data());
      return std::vector<Vec>{dz};
    };
    check("softmax cross-entropy", {&z}, fwd, bwd);

    // Soft targets (FER+ vote distributions): rows summing to 1 with zeros, and
    // one row of another mass, so the gradient's general form is exercised.
    Vec t = {0.5, 0, 0.3, 0.2, 0, 0, 0, 0, 1, 0, 0.1, 0.2, 0.3, 0.25, 0.15, 0.2, 0, 0.4, 0.1, 0.5};
    auto fwd_soft = [&] {
      return Vec{softmax_ce_forward<double>(n, classes, z.data(), labels.data(), t.data(), probs.data())};
    };
    auto bwd_soft = [&](const Vec& r) {
      fwd_soft();
      Vec dz(z.size());
      softmax_ce_backward<double>(n, classes, probs.data(), labels.data(), t.data(), r[0], dz.data());
      return std::vector<Vec>{dz};
    };
    check("softmax cross-entropy, soft targets", {&z}, fwd_soft, bwd_soft);

    // One-hot targets give the labels' loss and gradient.
    Vec onehot(z.size(), 0.0), dz_hard(z.size()), dz_soft(z.size());
    for (int i = 0; i < n; ++i) onehot[static_cast<size_t>(i) * classes + labels[i]] = 1;
    const double hard = softmax_ce_forward<double>(n, classes, z.data(), labels.data(), nullptr, probs.data());
    softmax_ce_backward<double>(n, classes, probs.data(), labels.data(), nullptr, 3.0, dz_hard.data());
    const double soft = softmax_ce_forward<double>(n, classes, z.data(), labels.data(), onehot.data(), probs.data());
    softmax_ce_backward<double>(n, classes, probs.data(), labels.data(), onehot.data(), 3.0, dz_soft.data());
    double worst = std::fabs(hard - soft);
    for (size_t i = 0; i < z.size(); ++i) worst = std::max(worst, std::fabs(dz_hard[i] - dz_soft[i]));
    report("softmax cross-entropy, one-hot targets = labels", worst, 1e-12);
  }
  {  // gemm against a naive product, all transposes, accumulating or not; shapes that
     // exercise the 4 x 16 register tiles, their row and column leftovers, and
     // the K (256) and N (256) blocks with remainders
    const int shapes[][3] = {{5, 7, 3}, {9, 37, 300}, {8, 300, 20}, {4, 16, 1}, {13, 275, 263}};
    for (const auto& sh : shapes)
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int acc = 0; acc < 2; ++acc) {
            const int M = sh[0], N = sh[1], K = sh[2];
            Vec A = randn(M * K), B = randn(K * N), C = randn(M * N), C0 = C;
            gemm<double>(ta, tb, M, N, K, A.data(), B.data(), C.data(), acc);
            double err = 0;
            for (int i = 0; i < M; ++i)
              for (int j = 0; j < N; ++j) {
                double sum = acc ? C0[i * N + j] : 0;
                for (int k = 0; k < K; ++k)
                  sum += (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * N + j]);
                err = std::max(err, std::abs(sum - C[i * N + j]));
              }
            const bool ok = err < 1e-11;
            (ok ? passed : failed)++;
            std::printf("%s gemm %dx%dx%d trans_a=%d trans_b=%d accumulate=%d (max error %.1e)\n", ok ? "ok  " : "FAIL",
                        M, N, K, ta, tb, acc, err);
          }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
