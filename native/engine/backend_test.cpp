// Backend conformance (ggml's test-backend-ops): every op of the Backend
// interface (backend.h) on fresh random inputs with odd sizes, run through
// the interface exactly as the executor calls it:
//   - the CPU backend (float) against the float64 reference, the double
//     instantiation of ops.h (whose backward passes are checked against
//     finite differences by ops_test.cpp) or a plain double loop for the
//     plumbing ops; tolerance: relative norm error <= 1e-5;
//   - every other backend present (CUDA devices) against the CPU backend on
//     the same inputs; tolerance <= 1e-4 (different summation orders).
// Integer outputs (max-pool switches, finiteness flags) and dropout masks must
// match exactly. Prints one line per check and "N passed, M failed".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "../common/rng.h"
#include "backend.h"
#include "engine.h"  // the program's constants (kBnEps, kL2Eps)

using namespace adcorre;
using namespace adcorre::engine;
using Vec = std::vector<float>;
using Ints = std::vector<int32_t>;
using Dbl = std::vector<double>;

namespace {

std::mt19937 rng(20261201);
Vec randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> nd(0.f, scale);
  Vec v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
Dbl widen(const Vec& v) { return Dbl(v.begin(), v.end()); }
Vec narrow(const Dbl& v) { return Vec(v.begin(), v.end()); }

int passed = 0, failed = 0;

void report(bool ok, const std::string& what, double err) {
  (ok ? passed : failed)++;
  std::printf("%s %s (relative error %.2e)\n", ok ? "ok  " : "FAIL", what.c_str(), err);
}

// relative norm error of got against want
double norm_error(const Vec& got, const Vec& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Buffers in one backend's memory, released at the end of a case.
class Mem {
 public:
  explicit Mem(Backend& b) : b_(b) {}
  ~Mem() {
    for (void* p : blocks_) b_.release(p);
  }
  template <typename T>
  T* put(const std::vector<T>& v) {
    T* p = alloc<T>(v.size());
    b_.upload(p, v.data(), v.size() * sizeof(T));
    return p;
  }
  template <typename T>
  T* zeros(size_t n) {
    T* p = alloc<T>(n);
    b_.zero(p, std::max<size_t>(n, 1) * sizeof(T));
    return p;
  }
  template <typename T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> v(n);
    b_.download(v.data(), p, n * sizeof(T));
    b_.synchronize();
    return v;
  }

 private:
  template <typename T>
  T* alloc(size_t n) {
    void* p = b_.try_allocate(std::max<size_t>(n, 1) * sizeof(T) + 256);
    if (!p) throw std::bad_alloc();
    blocks_.push_back(p);
    return static_cast<T*>(p);
  }
  Backend& b_;
  std::vector<void*> blocks_;
};

// One case: `run` computes named float outputs on a backend; `reference`
// computes the same outputs in float64 (null: the CPU backend is the reference
// of itself, as for ops whose float and double code differ only in type).
struct Outputs {
  std::vector<std::string> names;
  std::vector<Vec> values;
  void add(const std::string& name, Vec v) {
    names.push_back(name);
    values.push_back(std::move(v));
  }
};
using Run = std::function<Outputs(Backend&)>;

// Outputs named "exact ..." (integers, masks, copies) must match bit for bit.
bool exact(const std::string& output) { return output.rfind("exact", 0) == 0; }

std::vector<std::unique_ptr<Backend>> others;  // the backends compared with the CPU

void check(const std::string& name, const Run& run, const std::function<Outputs()>& reference,
           double cpu_tolerance = 1e-5, double backend_tolerance = 1e-4) {
  static std::unique_ptr<Backend> cpu = make_cpu_backend();
  const Outputs want = run(*cpu);
  if (reference) {
    const Outputs ref = reference();
    for (size_t i = 0; i < ref.values.size(); ++i) {
      const double err = norm_error(want.values[i], ref.values[i]);
      const double tol = exact(want.names[i]) ? 0.0 : cpu_tolerance;
      report(err <= tol, "cpu " + name + " " + want.names[i] + " = float64", err);
    }
  }
  for (auto& b : others) {
    const Outputs got = run(*b);
    for (size_t i = 0; i < want.values.size(); ++i) {
      const double err = norm_error(got.values[i], want.values[i]);
      const double tol = exact(want.names[i]) ? 0.0 : backend_tolerance;
      report(err <= tol, b->name() + " " + name + " " + want.names[i] + " = cpu", err);
    }
  }
}

Vec as_floats(const Ints& v) { return Vec(v.begin(), v.end()); }

void conv_case(int n, int c, int h, int w, int o, int k, int stride, bool same, bool depthwise, bool want_dx = true) {
  if (depthwise) o = c;
  const ConvShape s = make_conv_shape(n, c, h, w, o, k, stride, same, depthwise);
  const Vec x = randn(static_cast<size_t>(n) * c * h * w);
  const Vec wt = randn(static_cast<size_t>(o) * (depthwise ? 1 : c) * k * k, 0.3f);
  const Vec dy = randn(static_cast<size_t>(n) * o * s.oh * s.ow);
  const Vec dw0 = randn(wt.size());  // weight gradients accumulate (+=)
  const size_t ycount = dy.size();
  char name[128];
  std::snprintf(name, sizeof name, "conv %s k%d s%d %s n%d c%d %dx%d o%d%s", depthwise ? "depthwise" : "dense", k,
                stride, same ? "same" : "valid", n, c, h, w, o, want_dx ? "" : " (no dx)");
  check(
      name,
      [&](Backend& b) {
        Mem m(b);
        float* scratch = m.zeros<float>(b.conv_scratch_floats(s));
        float *gx = m.put(x), *gw = m.put(wt), *gdy = m.put(dy), *gy = m.zeros<float>(ycount);
        float *gdx = want_dx ? m.zeros<float>(x.size()) : nullptr, *gdw = m.put(dw0);
        b.conv_forward(s, gx, gw, gy, scratch);
        b.conv_backward(s, gx, gw, gdy, gdx, gdw, scratch);
        Outputs out;
        out.add("forward", m.get(gy, ycount));
        if (want_dx) out.add("dx", m.get(gdx, x.size()));
        out.add("dweight", m.get(gdw, wt.size()));
        return out;
      },
      [&] {
        Dbl y(ycount), dx(x.size()), dwd = widen(dw0);
        std::vector<double> scratch;
        const Dbl xd = widen(x), wd = widen(wt), dyd = widen(dy);
        conv_forward<double>(s, xd.data(), wd.data(), y.data(), scratch);
        conv_backward<double>(s, xd.data(), wd.data(), dyd.data(), dx.data(), dwd.data(), scratch);
        Outputs out;
        out.add("forward", narrow(y));
        if (want_dx) out.add("dx", narrow(dx));
        out.add("dweight", narrow(dwd));
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

void layer_cases() {
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
  {
    const int rows = 9, dim = 45;
    const Vec x = randn(rows * dim), dy = randn(x.size());
    check(
        "l2norm 9x45",
        [&](Backend& b) {
          Mem m(b);
          float *gx = m.put(x), *gdy = m.put(dy), *gy = m.zeros<float>(x.size()), *gdx = m.zeros<float>(x.size());
          b.l2norm_forward(rows, dim, gx, gy, kL2Eps);
          b.l2norm_backward(rows, dim, gx, gy, gdy, gdx, kL2Eps);
          Outputs out;
          out.add("forward", m.get(gy, x.size()));
          out.add("backward", m.get(gdx, x.size()));
          return out;
        },
        [&] {
          const Dbl xd = widen(x), dyd = widen(dy);
          Dbl y(x.size()), dx(x.size());
          l2norm_forward<double>(rows, dim, xd.data(), y.data(), kL2Eps);
          l2norm_backward<double>(rows, dim, xd.data(), y.data(), dyd.data(), dx.data(), kL2Eps);
          Outputs out;
          out.add("forward", narrow(y));
          out.add("backward", narrow(dx));
          return out;
        });
  }
  {
    const int n = 4, c = 5, hw = 9;
    const Vec x = randn(n * c * hw), dy = randn(n * c), dyr = randn(x.size());
    check(
        "gap and relu n4 c5 hw9",
        [&](Backend& b) {
          Mem m(b);
          float *gx = m.put(x), *gdy = m.put(dy), *gy = m.zeros<float>(dy.size()), *gdx = m.zeros<float>(x.size());
          float *gr = m.zeros<float>(x.size()), *gdyr = m.put(dyr), *gdr = m.zeros<float>(x.size());
          b.gap_forward(n, c, hw, gx, gy);
          b.gap_backward(n, c, hw, gdy, gdx);
          b.relu_forward(x.size(), gx, gr);
          b.relu_backward(x.size(), gr, gdyr, gdr);
          Outputs out;
          out.add("gap forward", m.get(gy, dy.size()));
          out.add("gap backward", m.get(gdx, x.size()));
          out.add("relu forward", m.get(gr, x.size()));
          out.add("relu backward", m.get(gdr, x.size()));
          return out;
        },
        [&] {
          const Dbl xd = widen(x), dyd = widen(dy), dyrd = widen(dyr);
          Dbl y(dy.size()), dx(x.size()), r(x.size()), dr(x.size());
          gap_forward<double>(n, c, hw, xd.data(), y.data());
          gap_backward<double>(n, c, hw, dyd.data(), dx.data());
          relu_forward<double>(x.size(), xd.data(), r.data());
          relu_backward<double>(x.size(), r.data(), dyrd.data(), dr.data());
          Outputs out;
          out.add("gap forward", narrow(y));
          out.add("gap backward", narrow(dx));
          out.add("relu forward", narrow(r));
          out.add("relu backward", narrow(dr));
          return out;
        });
  }
}

void plumbing_cases() {
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
  {
    const size_t count = 1001;
    const Vec a = randn(count), c = randn(count), y0 = randn(count);
    check(
        "add, add_into, multiply, copy, fill (1001)",
        [&](Backend& b) {
          Mem m(b);
          float *ga = m.put(a), *gc = m.put(c), *sum = m.zeros<float>(count), *acc = m.put(y0);
          float *prod = m.zeros<float>(count), *cp = m.zeros<float>(count), *fl = m.zeros<float>(count);
          b.add(count, ga, gc, sum);
          b.add_into(count, ga, acc);
          b.multiply(count, ga, gc, prod);
          b.copy(count, gc, cp);
          b.fill(count, fl, 0.25f);
          Outputs out;
          out.add("add", m.get(sum, count));
          out.add("add_into", m.get(acc, count));
          out.add("multiply", m.get(prod, count));
          out.add("exact copy", m.get(cp, count));
          out.add("exact fill", m.get(fl, count));
          return out;
        },
        [&] {
          Dbl sum(count), acc(count), prod(count), fl(count, 0.25);
          for (size_t i = 0; i < count; ++i) {
            sum[i] = static_cast<double>(a[i]) + c[i];
            acc[i] = static_cast<double>(y0[i]) + a[i];
            prod[i] = static_cast<double>(a[i]) * c[i];
          }
          Outputs out;
          out.add("add", narrow(sum));
          out.add("add_into", narrow(acc));
          out.add("multiply", narrow(prod));
          out.add("exact copy", c);
          out.add("exact fill", narrow(fl));
          return out;
        });
  }
  {
    // Concat's forward (strided destination) and its gradient (strided source, accumulated)
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
  {
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
  {
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
  }
}

void loss_cases() {
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

}  // namespace

int main() {
  const CudaInfo cuda = cuda_info();
  for (size_t i = 0; i < cuda.devices.size(); ++i) {
    try {
      others.push_back(make_cuda_backend(static_cast<int>(i)));
    } catch (const std::exception& e) {
      std::printf("FAIL cuda:%zu could not start: %s\n", i, e.what());
      failed++;
    }
  }
  std::string names = "cpu";
  for (auto& b : others) names += ", " + b->name();
  if (others.empty()) names += " (no other backend here: " + (cuda.error.empty() ? "no CUDA device" : cuda.error) + ")";
  std::printf("backends: %s\n", names.c_str());
  try {
    conv_case(3, 3, 17, 15, 8, 3, 2, false, false);  // the entry convolution's shape
    conv_case(1, 1, 13, 11, 5, 3, 2, false, false, false);
    conv_case(2, 5, 9, 11, 7, 3, 1, false, false);
    conv_case(2, 5, 9, 11, 7, 3, 1, true, false);
    conv_case(2, 6, 7, 9, 6, 3, 1, true, true);  // separable convolutions' depthwise half
    conv_case(3, 5, 8, 7, 5, 3, 2, true, true);
    conv_case(3, 5, 8, 8, 9, 1, 1, false, false);   // pointwise
    conv_case(2, 5, 9, 7, 6, 1, 2, true, false);    // the residual shortcut
    conv_case(2, 5, 9, 7, 70, 1, 1, false, false);  // 70 outputs: two CUDA GEMM row tiles
    conv_case(2, 3, 9, 7, 70, 3, 1, true, false);
    for (bool relu : {false, true}) {
      batchnorm_case(5, 7, 13, relu);
      batchnorm_case(3, 3, 1, relu);    // batch norm over features (n x c x 1 x 1)
      batchnorm_case(4, 3, 300, relu);  // 1,200 values per channel: several passes per CUDA block
    }
    layer_cases();
    plumbing_cases();
    loss_cases();
    optimizer_cases();
    for (auto& b : others) b->synchronize();
  } catch (const std::exception& e) {
    std::printf("FAIL %s\n", e.what());
    failed++;
  }
  // Backends go before main returns, not among the static destructors: the HIP CPU Runtime
  // (the emulated build) is torn down by then and destroying a stream then never returns.
  others.clear();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
