// Backend conformance: data movement and elementwise ops (add, concat,
// dropout and the copies, products and fills its backward and evaluation
// run), the finiteness flags, the losses (softmax cross-entropy, Ad-Corre on
// the engine's layout) and the optimizers.
#include "backend_test.h"

namespace adcorre::engine::conformance {

// add's forward, and add_into: how the executor sums a tensor's gradient parts
void add_cases() {
  const size_t count = 1001;
  const Vec a = randn(count), c = randn(count), y0 = randn(count);
  check(
      "add, add_into (1001)",
      [&](Backend& b) {
        Mem m(b);
        float *ga = m.put(a), *gc = m.put(c), *sum = m.zeros<float>(count), *acc = m.put(y0);
        b.add(count, ga, gc, sum);
        b.add_into(count, ga, acc);
        Outputs out;
        out.add("add", m.get(sum, count));
        out.add("add_into", m.get(acc, count));
        return out;
      },
      [&] {
        Dbl sum(count), acc(count);
        for (size_t i = 0; i < count; ++i) {
          sum[i] = static_cast<double>(a[i]) + c[i];
          acc[i] = static_cast<double>(y0[i]) + a[i];
        }
        Outputs out;
        out.add("add", narrow(sum));
        out.add("add_into", narrow(acc));
        return out;
      });
}

// concat's forward (a strided destination) and its gradient (a strided source, accumulated)
void concat_cases() {
  const int rows = 5, f = 7, total = 19, at = 4;
  const Vec src = randn(rows * f), wide = randn(rows * total), dst0 = randn(rows * f);
  check(
      "copy_columns 5 rows x 7 of 19 at 4",
      [&](Backend& b) {
        Mem m(b);
        float *gs = m.put(src), *gw = m.put(wide), *into = m.put(wide), *acc = m.put(dst0);
        b.copy_columns(rows, f, gs, f, 0, into, total, at, false);
        b.copy_columns(rows, f, gw, total, at, acc, f, 0, true);
        Outputs out;
        out.add("exact write", m.get(into, wide.size()));
        out.add("accumulate", m.get(acc, dst0.size()));
        return out;
      },
      [&] {
        Vec into = wide;
        Dbl acc = widen(dst0);
        for (int r = 0; r < rows; ++r)
          for (int j = 0; j < f; ++j) {
            into[r * total + at + j] = src[r * f + j];
            acc[r * f + j] += wide[r * total + at + j];
          }
        Outputs out;
        out.add("exact write", into);
        out.add("accumulate", narrow(acc));
        return out;
      });
}

void dropout_cases() {
  const size_t count = 4099;
  const Vec x = randn(count);
  const uint64_t seed = 0x1234567u;
  const double rate = 0.3;
  check(
      "dropout rate 0.3 (4099)",
      [&](Backend& b) {
        Mem m(b);
        float *gx = m.put(x), *gy = m.zeros<float>(count), *mask = m.zeros<float>(count);
        b.dropout_forward(count, gx, gy, mask, seed, rate);
        Outputs out;
        out.add("exact mask", m.get(mask, count));
        out.add("exact output", m.get(gy, count));
        return out;
      },
      [&] {
        Vec mask(count), y(count);
        const float scale = static_cast<float>(1.0 / (1.0 - rate));
        for (size_t j = 0; j < count; ++j) {
          mask[j] = splitmix_uniform(splitmix_value(seed, j + 1)) < rate ? 0.f : scale;
          y[j] = x[j] * mask[j];
        }
        Outputs out;
        out.add("exact mask", mask);
        out.add("exact output", y);
        return out;
      });
  // its backward (the mask times the gradient) and evaluation (a copy; the mask filled with ones)
  const Vec dy = randn(count);
  check(
      "dropout backward and evaluation: multiply, copy, fill (4099)",
      [&](Backend& b) {
        Mem m(b);
        float *ga = m.put(x), *gdy = m.put(dy), *prod = m.zeros<float>(count), *cp = m.zeros<float>(count);
        float* fl = m.zeros<float>(count);
        b.multiply(count, gdy, ga, prod);
        b.copy(count, ga, cp);
        b.fill(count, fl, 0.25f);
        Outputs out;
        out.add("multiply", m.get(prod, count));
        out.add("exact copy", m.get(cp, count));
        out.add("exact fill", m.get(fl, count));
        return out;
      },
      [&] {
        Dbl prod(count), fl(count, 0.25);
        for (size_t i = 0; i < count; ++i) prod[i] = static_cast<double>(dy[i]) * x[i];
        Outputs out;
        out.add("multiply", narrow(prod));
        out.add("exact copy", x);
        out.add("exact fill", narrow(fl));
        return out;
      });
}

void nonfinite_cases() {
  const size_t count = 777;
  Vec x = randn(count), bad = randn(count);
  bad[613] = NAN;
  Vec inf = randn(count);
  inf[5] = -INFINITY;
  check(
      "flag_nonfinite (777)",
      [&](Backend& b) {
        Mem m(b);
        int32_t* flags = m.zeros<int32_t>(3);
        b.flag_nonfinite(count, m.put(x), flags);
        b.flag_nonfinite(count, m.put(bad), flags + 1);
        b.flag_nonfinite(count, m.put(inf), flags + 2);
        Outputs out;
        out.add("exact flags", as_floats(m.get(flags, 3)));
        return out;
      },
      [&] {
        Outputs out;
        out.add("exact flags", Vec{0.f, 1.f, 1.f});
        return out;
      });
}

// the softmax's probabilities come from the cross-entropy (the executor's loss), forward and backward
void softmax_cases() {
  for (bool soft : {false, true}) {
    const int n = 6, classes = 7;
    const Vec z = randn(n * classes, 2.f);
    const Ints labels = {0, 6, 3, 3, 1, 5};
    Vec t(z.size(), 0.f);  // vote distributions (a row of another mass too)
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < classes; ++c)
        t[i * classes + c] = (c == labels[i] ? 0.6f : 0.f) + ((c + i) % 3 == 0 ? 0.1f : 0.f);
    check(
        std::string("softmax cross-entropy") + (soft ? ", soft targets" : ""),
        [&](Backend& b) {
          Mem m(b);
          float *gz = m.put(z), *gp = m.zeros<float>(z.size()), *gdz = m.zeros<float>(z.size());
          float* gt = soft ? m.put(t) : nullptr;
          int32_t* gl = m.put(labels);
          double* losses = m.zeros<double>(n);
          b.softmax_ce_forward(n, classes, gz, gl, gt, gp, losses);
          b.softmax_ce_backward(n, classes, gp, gl, gt, 50.0, gdz);
          const Dbl l = m.get(losses, n);
          Outputs out;
          out.add("probabilities", m.get(gp, z.size()));
          out.add("per-sample losses", narrow(l));
          out.add("dlogits", m.get(gdz, z.size()));
          return out;
        },
        [&] {
          const Dbl zd = widen(z), td = widen(t);
          Dbl p(z.size()), dz(z.size()), losses(n);
          softmax_ce_forward<double>(n, classes, zd.data(), labels.data(), soft ? td.data() : nullptr, p.data(),
                                     losses.data());
          softmax_ce_backward<double>(n, classes, p.data(), labels.data(), soft ? td.data() : nullptr, 50.0, dz.data());
          Outputs out;
          out.add("probabilities", narrow(p));
          out.add("per-sample losses", narrow(losses));
          out.add("dlogits", narrow(dz));
          return out;
        });
  }
}

void adcorre_cases() {
  // Ad-Corre on the engine's [n][k][d] layout; the reference is the CPU loss
  // on the transposed [k][n][d] batch (the public layout, checked against the
  // independent float64 golden cases by test/golden.test.js), transposed back.
  for (auto [kk, nn, dd, cc, attention] :
       {std::tuple{3, 11, 17, 5, true}, std::tuple{7, 64, 64, 7, false}, std::tuple{1, 5, 9, 3, true},
        std::tuple{7, 300, 256, 7, true}}) {  // the last: the paper's size, several passes per CUDA block
    const int k = kk, n = nn, d = dd, C = cc;
    const bool with_rho = attention;
    const Vec e = randn(static_cast<size_t>(n) * k * d);
    Ints labels(n);
    for (int a = 0; a < n; ++a) labels[a] = (a * 7 + a / 3) % (C - 1);  // class C - 1 absent
    Vec rho(C);
    for (int c = 0; c < C; ++c) rho[c] = 0.1f * c;
    const Weights w{1.0, 0.7, 0.4};
    check(
        "adcorre k" + std::to_string(k) + " n" + std::to_string(n) + " d" + std::to_string(d) + " C" +
            std::to_string(C) + (with_rho ? "" : " uniform attention"),
        [&](Backend& b) {
          Mem m(b);
          const Shape s{k, n, d, C, true};
          AdcorreCall call{};
          call.embeddings = m.put(e);
          call.labels = m.put(labels);
          call.labels_host = labels.data();
          call.rho_host = with_rho ? rho.data() : nullptr;
          call.shape = s;
          call.weights = w;
          call.grad = m.zeros<float>(e.size());
          call.parts = m.zeros<double>(4);
          call.workspace = m.zeros<char>(b.loss_workspace_bytes(s));
          b.adcorre_loss(call);
          const Dbl parts = m.get(call.parts, 4);
          Outputs out;
          out.add("loss, fd, md, ed", narrow(parts));
          out.add("gradient", m.get(call.grad, e.size()));
          return out;
        },
        [&] {
          Vec heads(e.size()), g(e.size()), back(e.size());
          for (int a = 0; a < n; ++a)
            for (int j = 0; j < k; ++j)
              std::memcpy(&heads[(static_cast<size_t>(j) * n + a) * d], &e[(static_cast<size_t>(a) * k + j) * d],
                          d * sizeof(float));
          CpuLoss loss;
          const LossParts p =
              loss.forward(heads.data(), labels.data(), with_rho ? rho.data() : nullptr, Shape{k, n, d, C}, w);
          loss.backward(g.data());
          for (int a = 0; a < n; ++a)
            for (int j = 0; j < k; ++j)
              std::memcpy(&back[(static_cast<size_t>(a) * k + j) * d], &g[(static_cast<size_t>(j) * n + a) * d],
                          d * sizeof(float));
          Outputs out;
          out.add("loss, fd, md, ed", Vec{static_cast<float>(p.loss), static_cast<float>(p.fd),
                                          static_cast<float>(p.md), static_cast<float>(p.ed)});
          out.add("gradient", back);
          return out;
        },
        1e-6);  // the same arithmetic in another layout
  }
}

void optimizer_cases() {
  const size_t count = 513;
  const Vec w0 = randn(count), g = randn(count), m0 = randn(count, 0.1f);
  Vec v0 = randn(count, 0.1f);
  for (auto& v : v0) v = v * v;
  const double step = 1e-3 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9), wd = 1e-4;
  check(
      "adam and sgd (513)",
      [&](Backend& b) {
        Mem m(b);
        float *w = m.put(w0), *gg = m.put(g), *gm = m.put(m0), *gv = m.put(v0);
        float *ws = m.put(w0), *ms = m.put(m0);
        b.adam_update(count, w, gg, gm, gv, step, 0.9, 0.999, 1e-7, wd);
        b.sgd_update(count, ws, gg, ms, 0.01, 0.9, wd);
        Outputs out;
        out.add("adam weights", m.get(w, count));
        out.add("adam m", m.get(gm, count));
        out.add("adam v", m.get(gv, count));
        out.add("sgd weights", m.get(ws, count));
        out.add("sgd momentum", m.get(ms, count));
        return out;
      },
      [&] {
        Dbl w(count), mm(count), vv(count), ws(count), ms(count);
        for (size_t i = 0; i < count; ++i) {
          const double gi = g[i] + wd * w0[i];
          mm[i] = 0.9 * m0[i] + 0.1 * gi;
          vv[i] = 0.999 * v0[i] + 0.001 * gi * gi;
          w[i] = w0[i] - step * mm[i] / (std::sqrt(vv[i]) + 1e-7);
          ms[i] = 0.9 * m0[i] + gi;
          ws[i] = w0[i] - 0.01 * ms[i];
        }
        Outputs out;
        out.add("adam weights", narrow(w));
        out.add("adam m", narrow(mm));
        out.add("adam v", narrow(vv));
        out.add("sgd weights", narrow(ws));
        out.add("sgd momentum", narrow(ms));
        return out;
      });
}

}  // namespace adcorre::engine::conformance
