// Finite-difference checks of every layer but the convolutions (batch norm,
// ReLU, max pool, global average pool, dense, L2 normalisation) and of the
// softmax cross-entropy, and the max-pool forward against its definition.
#include "ops_test.h"

namespace adcorre::engine::ops_test {

namespace {

// Max pool 3x3 stride 2 'same' forward against the definition: the largest
// in-plane tap and the first one in row-major order (the switch), exactly.
// few_values: inputs from {0, 1, 2} so that most windows hold ties.
void maxpool_forward_case(int n, int c, int h, int w, bool few_values) {
  Vec x = randn(static_cast<size_t>(n) * c * h * w);
  if (few_values)
    for (auto& v : x) v = std::floor(std::abs(v) * 1.5) > 2 ? 2 : std::floor(std::abs(v) * 1.5);
  const int oh = conv_out(h, 3, 2, true), ow = conv_out(w, 3, 2, true);
  const int pt = same_pad_before(h, 3, 2), pl = same_pad_before(w, 3, 2);
  Vec y(static_cast<size_t>(n) * c * oh * ow);
  std::vector<int32_t> at(y.size());
  maxpool_forward<double>(n, c, h, w, x.data(), y.data(), at.data());
  bool same = true;
  for (int i = 0; i < n * c; ++i)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox) {
        double best = 0;
        int best_at = -1;
        for (int iy = oy * 2 - pt; iy < oy * 2 - pt + 3; ++iy)
          for (int ix = ox * 2 - pl; ix < ox * 2 - pl + 3; ++ix)
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
              const double v = x[(static_cast<size_t>(i) * h + iy) * w + ix];
              if (best_at < 0 || v > best) best = v, best_at = iy * w + ix;
            }
        const size_t o = (static_cast<size_t>(i) * oh + oy) * ow + ox;
        same = same && y[o] == best && at[o] == best_at;
      }
  report("maxpool 3x3/2 same forward = the definition (values and switches" + std::string(few_values ? ", ties" : "") +
             "), " + std::to_string(h) + "x" + std::to_string(w),
         same ? 0.0 : 1.0, 0.0);
}

}  // namespace

void layer_gradient_cases() {
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
  for (int h = 1; h <= 9; ++h)  // every edge case of the clamped windows, square and not, with and without ties
    for (int w : {h, h + 3}) {
      maxpool_forward_case(2, 3, h, w, false);
      maxpool_forward_case(2, 3, h, w, true);
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
}

}  // namespace adcorre::engine::ops_test
