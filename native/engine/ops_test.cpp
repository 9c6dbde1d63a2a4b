// Finite-difference checks of every engine operation's backward, in double,
// on small shapes (odd sizes, strides 1 and 2, 'valid' and 'same' padding,
// padding edges). Built with the addon (target adcorre_ops_test) and run by
// `npm test` (test/engine-ops.test.js). Tolerance: relative error of the
// whole gradient <= 1e-6 against central differences with h = 1e-6.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gemm_cpu.h"
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

// Depthwise 3x3 'same' stride 1 forward against the definition (the finite
// differences above check the backward against the forward, not the forward).
static void depthwise_forward_case(int n, int c, int h, int w) {
  const Vec x = randn(static_cast<size_t>(n) * c * h * w), wt = randn(static_cast<size_t>(c) * 9);
  const ConvShape s = make_conv_shape(n, c, h, w, c, 3, 1, true, true);
  Vec y(x.size()), ref(x.size(), 0.0);
  std::vector<double> scratch;
  conv_forward(s, x.data(), wt.data(), y.data(), scratch);
  for (int i = 0; i < n * c; ++i)
    for (int oy = 0; oy < h; ++oy)
      for (int ox = 0; ox < w; ++ox)
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            const int iy = oy + ky - 1, ix = ox + kx - 1;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
              ref[(static_cast<size_t>(i) * h + oy) * w + ox] +=
                  wt[(i % c) * 9 + ky * 3 + kx] * x[(static_cast<size_t>(i) * h + iy) * w + ix];
          }
  double err = 0;
  for (size_t i = 0; i < y.size(); ++i) err = std::max(err, std::abs(y[i] - ref[i]));
  report("depthwise 3x3 same forward = the definition, n" + std::to_string(n) + " c" + std::to_string(c) + " " +
             std::to_string(h) + "x" + std::to_string(w),
         err, 1e-12);
}

// Max pool 3x3 stride 2 'same' forward against the definition: the largest
// in-plane tap and the first one in row-major order (the switch), exactly.
// few_values: inputs from {0, 1, 2} so that most windows hold ties.
static void maxpool_forward_case(int n, int c, int h, int w, bool few_values) {
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

using FVec = std::vector<float>;
static FVec to_float(const Vec& v) { return FVec(v.begin(), v.end()); }

// max |ref - got| / max |ref| over several outputs
static double relative_error(std::initializer_list<std::pair<const Vec*, const FVec*>> outputs) {
  double worst = 0;
  for (const auto& [ref, got] : outputs) {
    double scale = 1e-30, err = 0;
    for (size_t i = 0; i < ref->size(); ++i) scale = std::max(scale, std::fabs((*ref)[i]));
    for (size_t i = 0; i < ref->size(); ++i) err = std::max(err, std::fabs((*ref)[i] - (*got)[i]));
    worst = std::max(worst, err / scale);
  }
  return worst;
}

// The float convolutions (the SIMD GEMM reading NCHW directly) against the
// double ones (the portable path, itself checked by finite differences above)
// on the same inputs: forward, dx and dweight, relative to the largest value.
static void conv_float_case(int n, int c, int h, int w, int o, int k, int stride, bool same) {
  Vec x = randn(static_cast<size_t>(n) * c * h * w), wt = randn(static_cast<size_t>(o) * c * k * k);
  const ConvShape s = make_conv_shape(n, c, h, w, o, k, stride, same, false);
  const size_t ny = static_cast<size_t>(n) * o * s.oh * s.ow;
  Vec dy = randn(ny), y(ny), dx(x.size()), dw(wt.size(), 0.5);
  std::vector<double> scratch;
  conv_forward(s, x.data(), wt.data(), y.data(), scratch);
  conv_backward(s, x.data(), wt.data(), dy.data(), dx.data(), dw.data(), scratch);
  FVec xf = to_float(x), wf = to_float(wt), dyf = to_float(dy), yf(ny), dxf(x.size()), dwf(wt.size(), 0.5f), sf;
  conv_forward(s, xf.data(), wf.data(), yf.data(), sf);
  conv_backward(s, xf.data(), wf.data(), dyf.data(), dxf.data(), dwf.data(), sf);
  const double worst = relative_error({{&y, &yf}, {&dx, &dxf}, {&dw, &dwf}});
  char name[160];
  std::snprintf(name, sizeof name, "float conv = double conv, k%d s%d %s n%d c%d %dx%d -> o%d [%s]", k, stride,
                same ? "same" : "valid", n, c, h, w, o, gemm_f32_isa());
  report(name, worst, 1e-5);
}

// Every other operation in float (the training precision: SIMD loops, splits
// over threads) against the same operation in double (checked by finite
// differences below), on odd shapes, one of them past the threading grain
// (32K values).
static void float_ops_against_double() {
  for (auto [n, c, h, w] : {std::array<int, 4>{3, 5, 7, 9}, std::array<int, 4>{4, 37, 17, 19}}) {
    const int hw = h * w;
    const size_t count = static_cast<size_t>(n) * c * hw;
    const std::string shape =
        " n" + std::to_string(n) + " c" + std::to_string(c) + " " + std::to_string(h) + "x" + std::to_string(w);
    Vec x = randn(count, 2), dy = randn(count), g = randn(c), b = randn(c);
    for (auto& v : x) v += 0.5;  // a mean away from zero
    FVec xf = to_float(x), dyf = to_float(dy), gf = to_float(g), bf = to_float(b);
    {  // batch norm forward (training) and backward
      Vec y(count), mean(c), inv(c), rm(c, 0.1), rv(c, 1.2), dx(count), dg(c, 0.0), db(c, 0.0);
      batchnorm_forward_train<double>(n, c, hw, x.data(), g.data(), b.data(), y.data(), mean.data(), inv.data(),
                                      rm.data(), rv.data(), 0.9, 1e-3);
      batchnorm_backward<double>(n, c, hw, x.data(), g.data(), mean.data(), inv.data(), dy.data(), dx.data(), dg.data(),
                                 db.data());
      FVec yf(count), meanf(c), invf(c), rmf(c, 0.1f), rvf(c, 1.2f), dxf(count), dgf(c, 0.f), dbf(c, 0.f);
      batchnorm_forward_train<float>(n, c, hw, xf.data(), gf.data(), bf.data(), yf.data(), meanf.data(), invf.data(),
                                     rmf.data(), rvf.data(), 0.9, 1e-3);
      batchnorm_backward<float>(n, c, hw, xf.data(), gf.data(), meanf.data(), invf.data(), dyf.data(), dxf.data(),
                                dgf.data(), dbf.data());
      report("float = double: batchnorm forward (train), running statistics, backward" + shape,
             relative_error({{&y, &yf},
                             {&mean, &meanf},
                             {&inv, &invf},
                             {&rm, &rmf},
                             {&rv, &rvf},
                             {&dx, &dxf},
                             {&dg, &dgf},
                             {&db, &dbf}}),
             1e-5);
      Vec ye(count);
      FVec yef(count);
      batchnorm_forward_eval<double>(n, c, hw, x.data(), g.data(), b.data(), rm.data(), rv.data(), ye.data(), 1e-3);
      batchnorm_forward_eval<float>(n, c, hw, xf.data(), gf.data(), bf.data(), rmf.data(), rvf.data(), yef.data(),
                                    1e-3);
      report("float = double: batchnorm forward (eval)" + shape, relative_error({{&ye, &yef}}), 1e-5);
    }
    {  // relu, residual add and gradient accumulation
      Vec y(count), dx(count), sum(count), acc = dy;
      relu_forward<double>(count, x.data(), y.data());
      relu_backward<double>(count, y.data(), dy.data(), dx.data());
      add_forward<double>(count, x.data(), dy.data(), sum.data());
      add_into<double>(count, x.data(), acc.data());
      FVec yf(count), dxf(count), sumf(count), accf = dyf;
      relu_forward<float>(count, xf.data(), yf.data());
      relu_backward<float>(count, yf.data(), dyf.data(), dxf.data());
      add_forward<float>(count, xf.data(), dyf.data(), sumf.data());
      add_into<float>(count, xf.data(), accf.data());
      report("float = double: relu forward/backward, add, add_into" + shape,
             relative_error({{&y, &yf}, {&dx, &dxf}, {&sum, &sumf}, {&acc, &accf}}), 1e-6);
    }
    {  // max pool and global average pool
      const int oh = conv_out(h, 3, 2, true), ow = conv_out(w, 3, 2, true);
      const size_t pooled = static_cast<size_t>(n) * c * oh * ow;
      Vec y(pooled), dp = randn(pooled), dx(count), gy(static_cast<size_t>(n) * c), gdx(count);
      std::vector<int32_t> am(pooled), amf(pooled);
      maxpool_forward<double>(n, c, h, w, x.data(), y.data(), am.data());
      maxpool_backward<double>(n, c, h, w, am.data(), dp.data(), dx.data());
      gap_forward<double>(n, c, hw, x.data(), gy.data());
      gap_backward<double>(n, c, hw, gy.data(), gdx.data());
      FVec yf(pooled), dpf = to_float(dp), dxf(count), gyf(gy.size()), gdxf(count);
      maxpool_forward<float>(n, c, h, w, xf.data(), yf.data(), amf.data());
      maxpool_backward<float>(n, c, h, w, amf.data(), dpf.data(), dxf.data());
      gap_forward<float>(n, c, hw, xf.data(), gyf.data());
      gap_backward<float>(n, c, hw, gyf.data(), gdxf.data());
      report("float = double: maxpool forward/backward (same argmax), gap forward/backward" + shape,
             am == amf ? relative_error({{&y, &yf}, {&dx, &dxf}, {&gy, &gyf}, {&gdx, &gdxf}}) : 1.0, 1e-5);
    }
    {  // depthwise 3x3, stride 1 (the padded one-pass path) and stride 2
      for (int stride : {1, 2}) {
        const ConvShape sh = make_conv_shape(n, c, h, w, c, 3, stride, true, true);
        const size_t ny = static_cast<size_t>(n) * c * sh.oh * sh.ow;
        Vec wt = randn(static_cast<size_t>(c) * 9), y(ny), r = randn(ny), dx(count), dw(wt.size(), 0.0);
        std::vector<double> scratch;
        conv_forward(sh, x.data(), wt.data(), y.data(), scratch);
        conv_backward(sh, x.data(), wt.data(), r.data(), dx.data(), dw.data(), scratch);
        FVec wf = to_float(wt), yf(ny), rf = to_float(r), dxf(count), dwf(wt.size(), 0.f), sf;
        conv_forward(sh, xf.data(), wf.data(), yf.data(), sf);
        conv_backward(sh, xf.data(), wf.data(), rf.data(), dxf.data(), dwf.data(), sf);
        report("float = double: depthwise 3x3/" + std::to_string(stride) + " forward, dx, dweight" + shape,
               relative_error({{&y, &yf}, {&dx, &dxf}, {&dw, &dwf}}), 1e-5);
      }
    }
  }
  {  // dense, L2 norm, softmax cross-entropy (labels and soft targets)
    const int n = 13, in = 37, out = 11;
    Vec x = randn(static_cast<size_t>(n) * in), wt = randn(static_cast<size_t>(out) * in), bias = randn(out);
    Vec y(static_cast<size_t>(n) * out), dy = randn(y.size()), dx(x.size()), dw(wt.size(), 0.0), db(out, 0.0);
    dense_forward<double>(n, in, out, x.data(), wt.data(), bias.data(), y.data());
    dense_backward<double>(n, in, out, x.data(), wt.data(), dy.data(), dx.data(), dw.data(), db.data());
    FVec xf = to_float(x), wf = to_float(wt), bf = to_float(bias), yf(y.size()), dyf = to_float(dy), dxf(x.size()),
         dwf(wt.size(), 0.f), dbf(out, 0.f);
    dense_forward<float>(n, in, out, xf.data(), wf.data(), bf.data(), yf.data());
    dense_backward<float>(n, in, out, xf.data(), wf.data(), dyf.data(), dxf.data(), dwf.data(), dbf.data());
    report("float = double: dense forward/backward n13 in37 out11",
           relative_error({{&y, &yf}, {&dx, &dxf}, {&dw, &dwf}, {&db, &dbf}}), 1e-5);

    Vec ny(x.size()), ndx(x.size()), ndy = randn(x.size());  // dy not along y: no cancellation to zero
    l2norm_forward<double>(n, in, x.data(), ny.data(), 1e-12);
    l2norm_backward<double>(n, in, x.data(), ny.data(), ndy.data(), ndx.data(), 1e-12);
    FVec nyf(x.size()), ndxf(x.size()), ndyf = to_float(ndy);
    l2norm_forward<float>(n, in, xf.data(), nyf.data(), 1e-12);
    l2norm_backward<float>(n, in, xf.data(), nyf.data(), ndyf.data(), ndxf.data(), 1e-12);
    report("float = double: l2norm forward/backward 13 x 37", relative_error({{&ny, &nyf}, {&ndx, &ndxf}}), 1e-5);

    const int classes = 7;
    Vec z = randn(static_cast<size_t>(n) * classes, 2), t(z.size()), p(z.size()), dz(z.size()), pt(z.size()),
        dzt(z.size());
    std::vector<int32_t> labels(n);
    for (int i = 0; i < n; ++i) labels[i] = (i * 5) % classes;
    for (size_t i = 0; i < t.size(); ++i) t[i] = (i * 7) % 3;  // unnormalised votes, some zero
    const double l = softmax_ce_forward<double>(n, classes, z.data(), labels.data(), nullptr, p.data());
    softmax_ce_backward<double>(n, classes, p.data(), labels.data(), nullptr, 50.0, dz.data());
    const double lt = softmax_ce_forward<double>(n, classes, z.data(), labels.data(), t.data(), pt.data());
    softmax_ce_backward<double>(n, classes, pt.data(), labels.data(), t.data(), 50.0, dzt.data());
    FVec zf = to_float(z), tf = to_float(t), pf(z.size()), dzf(z.size()), ptf(z.size()), dztf(z.size());
    const double lf = softmax_ce_forward<float>(n, classes, zf.data(), labels.data(), nullptr, pf.data());
    softmax_ce_backward<float>(n, classes, pf.data(), labels.data(), nullptr, 50.0, dzf.data());
    const double ltf = softmax_ce_forward<float>(n, classes, zf.data(), labels.data(), tf.data(), ptf.data());
    softmax_ce_backward<float>(n, classes, ptf.data(), labels.data(), tf.data(), 50.0, dztf.data());
    report("float = double: softmax cross-entropy (labels, soft targets) 13 x 7",
           std::max({std::fabs(l - lf) / std::fabs(l), std::fabs(lt - ltf) / std::fabs(lt),
                     relative_error({{&p, &pf}, {&dz, &dzf}, {&pt, &ptf}, {&dzt, &dztf}})}),
           1e-5);
  }
  {                              // Adam and SGD with momentum (float only) against the update written out in double
    const size_t count = 50001;  // past the threading grain, odd
    Vec w = randn(count), g = randn(count), m = randn(count, 0.1), v = randn(count, 0.1);
    for (auto& x : v) x = std::fabs(x);
    FVec wf = to_float(w), gf = to_float(g), mf = to_float(m), vf = to_float(v), ws = wf, ms = mf;
    const double step = 1e-3 * std::sqrt(1 - std::pow(0.999, 3)) / (1 - std::pow(0.9, 3)), wd = 1e-4;
    adam_update(count, wf.data(), gf.data(), mf.data(), vf.data(), step, 0.9, 0.999, 1e-7, wd);
    sgd_momentum_update(count, ws.data(), gf.data(), ms.data(), 1e-2, 0.9, wd);
    Vec wa = w, ma = m, va = v, wsr = w, msr = m;
    for (size_t j = 0; j < count; ++j) {
      const double gj = static_cast<float>(g[j]) + wd * static_cast<float>(w[j]);
      ma[j] = 0.9 * static_cast<float>(m[j]) + 0.1 * gj;
      va[j] = 0.999 * static_cast<float>(v[j]) + 0.001 * gj * gj;
      wa[j] = static_cast<float>(w[j]) - step * ma[j] / (std::sqrt(va[j]) + 1e-7);
      msr[j] = 0.9 * static_cast<float>(m[j]) + gj;
      wsr[j] = static_cast<float>(w[j]) - 1e-2 * msr[j];
    }
    report("float Adam and SGD = the update in double (50001 values)",
           relative_error({{&wa, &wf}, {&ma, &mf}, {&va, &vf}, {&wsr, &ws}, {&msr, &ms}}), 1e-6);
    Vec bad = randn(count);
    FVec badf = to_float(bad);
    const bool finite_ok = all_finite(count, badf.data());
    badf[count - 3] = std::nanf("");
    const bool nan_found = !all_finite(count, badf.data());
    FVec zeros(count, 1.f);
    fill_zero(count, zeros.data());
    const bool zeroed = std::all_of(zeros.begin(), zeros.end(), [](float z) { return z == 0.f; });
    report("all_finite (a NaN near the end of 50001 values), fill_zero", finite_ok && nan_found && zeroed ? 0 : 1, 0);
  }
}

int main() {
  float_ops_against_double();
  conv_float_case(3, 5, 7, 6, 9, 1, 1, false);     // pointwise, planes smaller than a tile's columns
  conv_float_case(2, 13, 19, 21, 7, 1, 1, false);  // pointwise, planes of 399 (tiles inside and across samples)
  conv_float_case(5, 40, 6, 6, 70, 1, 1, false);   // pointwise, K and M past a panel, N past a column block
  conv_float_case(3, 7, 9, 8, 11, 1, 2, true);     // shortcut 1x1/2 same
  conv_float_case(2, 3, 15, 14, 10, 3, 2, false);  // entry conv1: 3x3/2 valid
  conv_float_case(2, 10, 11, 9, 17, 3, 1, false);  // entry conv2: 3x3 valid
  conv_case(2, 3, 7, 6, 4, 3, 2, false, false);    // entry conv1: 3x3/2 valid
  conv_case(2, 2, 6, 7, 3, 3, 1, false, false);    // entry conv2: 3x3 valid
  conv_case(2, 3, 5, 5, 4, 3, 1, true, false);
  conv_case(2, 3, 5, 6, 3, 3, 1, true, true);  // depthwise 3x3 same
  for (int side = 1; side <= 5; ++side) {      // the small-plane kernels (1x1 to 4x4) and the flat loops (5x5)
    conv_case(2, 3, side, side, 3, 3, 1, true, true);
    depthwise_forward_case(2, 3, side, side);
  }
  depthwise_forward_case(2, 3, 4, 6);            // not square: the flat loops
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
  {  // the float GEMM (SIMD micro-kernels where the CPU has them) against a double product:
     // tile edges (6-row panels, 16/32-column strips), K blocks of 256, the column
     // blocks of 512 and the split over threads, every transpose
    std::printf("float gemm kernel: %s\n", gemm_f32_isa());
    const int shapes[][3] = {{1, 1, 1},      {5, 70, 0},     {5, 7, 3},     {6, 16, 256},  {7, 33, 257},
                             {13, 275, 263}, {96, 1030, 96}, {24, 9, 5000}, {3, 2000, 17}, {40, 31, 600}};
    std::mt19937 gen(7);
    std::normal_distribution<float> normal;
    for (const auto& sh : shapes)
      for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb)
          for (int acc = 0; acc < 2; ++acc) {
            const int M = sh[0], N = sh[1], K = sh[2];
            std::vector<float> A(static_cast<size_t>(M) * K), B(static_cast<size_t>(K) * N),
                C(static_cast<size_t>(M) * N);
            for (auto* v : {&A, &B, &C})
              for (auto& x : *v) x = normal(gen);
            const std::vector<float> C0 = C;
            gemm<float>(ta, tb, M, N, K, A.data(), B.data(), C.data(), acc);
            double worst = 0;  // error relative to sum |a||b| (+ |c0|): float rounding is O(K eps) of it
            for (int i = 0; i < M; ++i)
              for (int j = 0; j < N; ++j) {
                double sum = acc ? C0[static_cast<size_t>(i) * N + j] : 0, mag = std::fabs(sum);
                for (int k = 0; k < K; ++k) {
                  const double p =
                      static_cast<double>(ta ? A[static_cast<size_t>(k) * M + i] : A[static_cast<size_t>(i) * K + k]) *
                      (tb ? B[static_cast<size_t>(j) * K + k] : B[static_cast<size_t>(k) * N + j]);
                  sum += p;
                  mag += std::fabs(p);
                }
                worst = std::max(worst, std::fabs(sum - C[static_cast<size_t>(i) * N + j]) / mag);
              }
            const bool ok = worst < 1e-6;
            (ok ? passed : failed)++;
            std::printf("%s float gemm %dx%dx%d trans_a=%d trans_b=%d accumulate=%d (max relative error %.1e)\n",
                        ok ? "ok  " : "FAIL", M, N, K, ta, tb, acc, worst);
          }
  }
  {  // the weight-gradient product straight from NCHW (K contiguous in both operands, in runs of one
     // plane: the dot-product path), odd plane and channel counts, against a double product
    const int n = 50, o = 13, c = 11, plane = 23, K = n * plane;
    std::mt19937 gen(11);
    std::normal_distribution<float> normal;
    std::vector<float> dy(static_cast<size_t>(n) * o * plane), x(static_cast<size_t>(n) * c * plane), dw(o * c);
    for (auto* v : {&dy, &x, &dw})
      for (auto& e : *v) e = normal(gen);
    for (int acc = 0; acc < 2 && chosen_gemm_is_simd(); ++acc) {  // (the portable GEMM has no layouts)
      std::vector<float> out = dw;
      gemm_f32_layout(o, c, K, MatrixLayout::nchw_channels_by_pixels(o, plane), dy.data(),
                      MatrixLayout::nchw_pixels_by_channels(c, plane), x.data(), MatrixLayout::row_major(o, c),
                      out.data(), acc);
      double worst = 0;
      for (int i = 0; i < o; ++i)
        for (int j = 0; j < c; ++j) {
          double sum = acc ? dw[i * c + j] : 0, mag = std::fabs(sum);
          for (int s = 0; s < n; ++s)
            for (int p = 0; p < plane; ++p) {
              const double v = static_cast<double>(dy[(static_cast<size_t>(s) * o + i) * plane + p]) *
                               x[(static_cast<size_t>(s) * c + j) * plane + p];
              sum += v;
              mag += std::fabs(v);
            }
          worst = std::max(worst, std::fabs(sum - out[i * c + j]) / mag);
        }
      const bool ok = worst < 1e-6;
      (ok ? passed : failed)++;
      std::printf("%s float gemm from NCHW, dW shape %dx%dx%d accumulate=%d (max relative error %.1e)\n",
                  ok ? "ok  " : "FAIL", o, c, K, acc, worst);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
