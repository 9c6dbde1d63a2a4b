// Backend conformance: the layers other than convolution (the input
// standardisation, batch norm with and without its fused ReLU and the
// statistics commit, ReLU, max pool, global average pool, dense, L2
// normalisation), each forward and backward against float64.
#include "backend_test.h"

namespace adcorre::engine::conformance {

namespace {

// A layer of one input and one output of ycount values: forward, then backward
// from a random gradient dy, on each backend (run(b, x, y, dy, dx)) and in
// float64 (reference(x, y, dy, dx)).
template <typename Run, typename Reference>
void layer_case(const std::string& name, const Vec& x, size_t ycount, Run run, Reference reference) {
  const Vec dy = randn(ycount);
  check(
      name,
      [&](Backend& b) {
        Mem m(b);
        float *gx = m.put(x), *gdy = m.put(dy), *gy = m.zeros<float>(ycount), *gdx = m.zeros<float>(x.size());
        run(b, gx, gy, gdy, gdx);
        Outputs out;
        out.add("forward", m.get(gy, ycount));
        out.add("backward", m.get(gdx, x.size()));
        return out;
      },
      [&] {
        const Dbl xd = widen(x), dyd = widen(dy);
        Dbl y(ycount), dx(x.size());
        reference(xd.data(), y.data(), dyd.data(), dx.data());
        Outputs out;
        out.add("forward", narrow(y));
        out.add("backward", narrow(dx));
        return out;
      });
}

void batchnorm_case(int n, int c, int hw, bool relu) {
  const Vec x = randn(static_cast<size_t>(n) * c * hw, 2.f), g = randn(c), be = randn(c), dy = randn(x.size());
  const Vec dg0 = randn(c), db0 = randn(c), rm0 = randn(c), rv0 = Vec(c, 0.7f);
  const double eps = kBnEps, momentum = 0.9;
  check(
      std::string(relu ? "batchnorm + relu" : "batchnorm") + " n" + std::to_string(n) + " c" + std::to_string(c) +
          " hw" + std::to_string(hw),
      [&](Backend& b) {
        Mem m(b);
        float *gx = m.put(x), *gg = m.put(g), *gb = m.put(be), *gdy = m.put(dy), *gy = m.zeros<float>(x.size());
        float *mean = m.zeros<float>(c), *inv = m.zeros<float>(c), *gdx = m.zeros<float>(x.size());
        float *gdg = m.put(dg0), *gdb = m.put(db0), *rm = m.put(rm0), *rv = m.put(rv0), *ye = m.zeros<float>(x.size());
        b.batchnorm_forward_train(n, c, hw, gx, gg, gb, gy, mean, inv, eps, relu);
        b.batchnorm_backward(n, c, hw, gx, gg, mean, inv, gdy, gdx, gdg, gdb, relu ? gy : nullptr);
        b.batchnorm_forward_eval(n, c, hw, gx, gg, gb, rm, rv, ye, eps, relu);
        b.batchnorm_commit(c, mean, inv, rm, rv, momentum, eps);
        Outputs out;
        out.add("train forward", m.get(gy, x.size()));
        out.add("batch mean", m.get(mean, c));
        out.add("batch invstd", m.get(inv, c));
        out.add("dx", m.get(gdx, x.size()));
        out.add("dgamma", m.get(gdg, c));
        out.add("dbeta", m.get(gdb, c));
        out.add("eval forward", m.get(ye, x.size()));
        out.add("committed running mean", m.get(rm, c));
        out.add("committed running var", m.get(rv, c));
        return out;
      },
      [&] {
        const Dbl xd = widen(x), gd = widen(g), bd = widen(be), dyd = widen(dy);
        Dbl y(x.size()), mean(c), inv(c), dx(x.size()), dg = widen(dg0), db = widen(db0), rm = widen(rm0),
                                                        rv = widen(rv0), ye(x.size());
        // the fused pair written out: a plain batch norm, then the ReLU and its backward
        Dbl z(x.size()), dz = dyd;
        batchnorm_forward_train<double>(n, c, hw, xd.data(), gd.data(), bd.data(), z.data(), mean.data(), inv.data(),
                                        nullptr, nullptr, 0.0, eps);
        y = z;
        if (relu) {
          relu_forward<double>(z.size(), z.data(), y.data());
          relu_backward<double>(z.size(), y.data(), dyd.data(), dz.data());
        }
        batchnorm_backward<double>(n, c, hw, xd.data(), gd.data(), mean.data(), inv.data(), dz.data(), dx.data(),
                                   dg.data(), db.data());
        batchnorm_forward_eval<double>(n, c, hw, xd.data(), gd.data(), bd.data(), rm.data(), rv.data(), ye.data(), eps);
        if (relu) {
          const Dbl plain = ye;
          relu_forward<double>(ye.size(), plain.data(), ye.data());
        }
        for (int ch = 0; ch < c; ++ch) {  // the commit, written out
          const double var = 1.0 / (inv[ch] * inv[ch]) - eps;
          rm[ch] = momentum * rm[ch] + (1 - momentum) * mean[ch];
          rv[ch] = momentum * rv[ch] + (1 - momentum) * var;
        }
        Outputs out;
        out.add("train forward", narrow(y));
        out.add("batch mean", narrow(mean));
        out.add("batch invstd", narrow(inv));
        out.add("dx", narrow(dx));
        out.add("dgamma", narrow(dg));
        out.add("dbeta", narrow(db));
        out.add("eval forward", narrow(ye));
        out.add("committed running mean", narrow(rm));
        out.add("committed running var", narrow(rv));
        return out;
      });
}

}  // namespace

void standardize_cases() {
  // 48x48: more values per image than one CUDA block's threads, each thread several passes
  for (size_t per : {size_t{7 * 5}, size_t{48 * 48}}) {
    const int n = 3;
    const double eps = 1e-3;
    Vec x = randn(n * per, 0.3f);
    for (auto& v : x) v += 0.5f;  // images in [0, 1]-ish, with an offset to remove
    check(
        "standardize 3 x " + std::to_string(per),
        [&](Backend& b) {
          Mem m(b);
          float *gx = m.put(x), *gy = m.zeros<float>(x.size());
          b.standardize(n, per, gx, gy, eps);
          Outputs out;
          out.add("output", m.get(gy, x.size()));
          return out;
        },
        [&] {
          Dbl y(x.size());
          for (int s = 0; s < n; ++s) {
            double mean = 0, var = 0;
            for (size_t i = 0; i < per; ++i) mean += x[s * per + i];
            mean /= per;
            for (size_t i = 0; i < per; ++i) var += (x[s * per + i] - mean) * (x[s * per + i] - mean);
            const double inv = 1.0 / std::sqrt(var / per + eps);
            for (size_t i = 0; i < per; ++i) y[s * per + i] = (x[s * per + i] - mean) * inv;
          }
          Outputs out;
          out.add("output", narrow(y));
          return out;
        });
  }
}

void batchnorm_cases() {
  for (bool relu : {false, true}) {
    batchnorm_case(5, 7, 13, relu);
    batchnorm_case(3, 3, 1, relu);    // batch norm over features (n x c x 1 x 1)
    batchnorm_case(4, 3, 300, relu);  // 1,200 values per channel: several passes per CUDA block
  }
}

void relu_cases() {
  const size_t count = 4 * 5 * 9;
  layer_case(
      "relu 180", randn(count), count,
      [&](Backend& b, const float* x, float* y, const float* dy, float* dx) {
        b.relu_forward(count, x, y);
        b.relu_backward(count, y, dy, dx);
      },
      [&](const double* x, double* y, const double* dy, double* dx) {
        relu_forward<double>(count, x, y);
        relu_backward<double>(count, y, dy, dx);
      });
}

void maxpool_cases() {
  for (auto [hh, ww] : {std::pair{7, 7}, std::pair{6, 5}, std::pair{2, 3}, std::pair{1, 1}, std::pair{17, 16}}) {
    const int h = hh, w = ww;  // lambdas cannot capture structured bindings in C++17
    const int n = 2, c = 3, oh = conv_out(h, 3, 2, true), ow = conv_out(w, 3, 2, true);
    const Vec x = randn(static_cast<size_t>(n) * c * h * w), dy = randn(static_cast<size_t>(n) * c * oh * ow);
    check(
        "maxpool " + std::to_string(h) + "x" + std::to_string(w),
        [&](Backend& b) {
          Mem m(b);
          float *gx = m.put(x), *gy = m.zeros<float>(dy.size()), *gdy = m.put(dy), *gdx = m.zeros<float>(x.size());
          int32_t* am = m.zeros<int32_t>(dy.size());
          b.maxpool_forward(n, c, h, w, gx, gy, am);
          b.maxpool_backward(n, c, h, w, am, gdy, gdx);
          Outputs out;
          out.add("exact forward", m.get(gy, dy.size()));
          out.add("exact switches", as_floats(m.get(am, dy.size())));
          out.add("backward", m.get(gdx, x.size()));
          return out;
        },
        [&] {
          const Dbl xd = widen(x), dyd = widen(dy);
          Dbl y(dy.size()), dx(x.size());
          Ints am(dy.size());
          // written out: 3x3 windows, stride 2, TensorFlow 'same' padding, the first largest tap in row-major order
          const int pt = same_pad_before(h, 3, 2), pl = same_pad_before(w, 3, 2);
          for (int p = 0; p < n * c; ++p)
            for (int oy = 0; oy < oh; ++oy)
              for (int ox = 0; ox < ow; ++ox) {
                int at = -1;
                for (int ky = 0; ky < 3; ++ky)
                  for (int kx = 0; kx < 3; ++kx) {
                    const int iy = oy * 2 - pt + ky, ix = ox * 2 - pl + kx;
                    if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                    if (at < 0 || xd[p * h * w + iy * w + ix] > xd[p * h * w + at]) at = iy * w + ix;
                  }
                const size_t o = (static_cast<size_t>(p) * oh + oy) * ow + ox;
                am[o] = at;
                y[o] = xd[p * h * w + at];
                dx[p * h * w + at] += dyd[o];
              }
          Outputs out;
          out.add("exact forward", narrow(y));
          out.add("exact switches", as_floats(am));
          out.add("backward", narrow(dx));
          return out;
        });
  }
}

void gap_cases() {
  const int n = 4, c = 5, hw = 9;
  layer_case(
      "gap n4 c5 hw9", randn(n * c * hw), n * c,
      [&](Backend& b, const float* x, float* y, const float* dy, float* dx) {
        b.gap_forward(n, c, hw, x, y);
        b.gap_backward(n, c, hw, dy, dx);
      },
      [&](const double* x, double* y, const double* dy, double* dx) {
        gap_forward<double>(n, c, hw, x, y);
        gap_backward<double>(n, c, hw, dy, dx);
      });
}

void dense_cases() {
  // the second shape gives CUDA's GEMMs two row tiles (more than 64 rows) in each product
  for (auto [nn, ii, oo] : {std::tuple{3, 37, 11}, std::tuple{130, 70, 67}}) {
    const int n = nn, in = ii, out_f = oo;
    const Vec x = randn(n * in), w = randn(out_f * in), bias = randn(out_f), dy = randn(n * out_f);
    const Vec dw0 = randn(w.size()), db0 = randn(out_f);
    check(
        "dense " + std::to_string(n) + "x" + std::to_string(in) + " -> " + std::to_string(out_f),
        [&](Backend& b) {
          Mem m(b);
          float *gx = m.put(x), *gw = m.put(w), *gb = m.put(bias), *gdy = m.put(dy), *gy = m.zeros<float>(dy.size());
          float *gdx = m.zeros<float>(x.size()), *gdw = m.put(dw0), *gdb = m.put(db0);
          b.dense_forward(n, in, out_f, gx, gw, gb, gy);
          b.dense_backward(n, in, out_f, gx, gw, gdy, gdx, gdw, gdb);
          Outputs out;
          out.add("forward", m.get(gy, dy.size()));
          out.add("dx", m.get(gdx, x.size()));
          out.add("dweight", m.get(gdw, w.size()));
          out.add("dbias", m.get(gdb, out_f));
          return out;
        },
        [&] {
          const Dbl xd = widen(x), wd = widen(w), bd = widen(bias), dyd = widen(dy);
          Dbl y(dy.size()), dx(x.size()), dw = widen(dw0), db = widen(db0);
          dense_forward<double>(n, in, out_f, xd.data(), wd.data(), bd.data(), y.data());
          dense_backward<double>(n, in, out_f, xd.data(), wd.data(), dyd.data(), dx.data(), dw.data(), db.data());
          Outputs out;
          out.add("forward", narrow(y));
          out.add("dx", narrow(dx));
          out.add("dweight", narrow(dw));
          out.add("dbias", narrow(db));
          return out;
        });
  }
}

void l2norm_cases() {
  const int rows = 9, dim = 45;
  layer_case(
      "l2norm 9x45", randn(rows * dim), rows * dim,
      [&](Backend& b, const float* x, float* y, const float* dy, float* dx) {
        b.l2norm_forward(rows, dim, x, y, kL2Eps);
        b.l2norm_backward(rows, dim, x, y, dy, dx, kL2Eps);
      },
      [&](const double* x, double* y, const double* dy, double* dx) {
        l2norm_forward<double>(rows, dim, x, y, kL2Eps);
        l2norm_backward<double>(rows, dim, x, y, dy, dx, kL2Eps);
      });
}

}  // namespace adcorre::engine::conformance
