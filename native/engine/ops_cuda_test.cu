// Every CUDA engine operation against the CPU one on the same fresh random
// inputs (odd sizes, strides, padding edges). Runs where a GPU is usable
// (test/engine-ops.test.js); elsewhere it says it skipped. Tolerance: the
// relative norm error of each output <= 1e-4.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "ops.h"
#include "ops_cuda.cuh"

using namespace adcorre::engine;
using Vec = std::vector<float>;

static std::mt19937 rng(11);
static Vec randn(size_t n) {
  std::normal_distribution<float> nd(0.f, 1.f);
  Vec v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

struct Dev {
  float* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(float));
    cudaMemset(p, 0, std::max<size_t>(count, 1) * sizeof(float));
  }
  Dev(const Vec& v) : Dev(v.size()) { cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice); }
  ~Dev() { cudaFree(p); }
  Vec get() const {
    Vec v(n);
    cudaMemcpy(v.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost);
    return v;
  }
};

static int passed = 0, failed = 0;
static void compare(const std::string& name, const Vec& gpu, const Vec& cpu) {
  double num = 0, den = 0;
  bool finite = true;
  for (size_t i = 0; i < cpu.size(); ++i) {
    num += (gpu[i] - cpu[i]) * static_cast<double>(gpu[i] - cpu[i]);
    den += static_cast<double>(cpu[i]) * cpu[i];
    finite = finite && std::isfinite(gpu[i]);
  }
  const double err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  const bool ok = finite && err <= 1e-4;
  (ok ? passed : failed)++;
  std::printf("%s %s (relative error %.2e)\n", ok ? "ok  " : "FAIL", name.c_str(), err);
}

static void conv_case(int n, int c, int h, int w, int o, int k, int stride, bool same, bool depthwise) {
  if (depthwise) o = c;
  const ConvShape s = make_conv_shape(n, c, h, w, o, k, stride, same, depthwise);
  Vec x = randn(static_cast<size_t>(n) * c * h * w), wt = randn(static_cast<size_t>(o) * (depthwise ? 1 : c) * k * k);
  Vec dy = randn(static_cast<size_t>(n) * o * s.oh * s.ow);
  Vec y(dy.size()), dx(x.size()), dw(wt.size(), 0.f);
  std::vector<float> scratch;
  conv_forward(s, x.data(), wt.data(), y.data(), scratch);
  conv_backward(s, x.data(), wt.data(), dy.data(), dx.data(), dw.data(), scratch);
  Dev gx(x), gw(wt), gdy(dy), gy(y.size()), gdx(x.size()), gdw(wt.size()), gs(cuda::conv_scratch_floats(s));
  cuda::conv_forward(s, gx.p, gw.p, gy.p, gs.p, 0);
  cuda::conv_backward(s, gx.p, gw.p, gdy.p, gdx.p, gdw.p, gs.p, 0);
  char name[128];
  std::snprintf(name, sizeof name, "conv %s k%d s%d %s n%d c%d %dx%d o%d", depthwise ? "depthwise" : "dense", k, stride,
                same ? "same" : "valid", n, c, h, w, o);
  compare(std::string(name) + " forward", gy.get(), y);
  compare(std::string(name) + " dx", gdx.get(), dx);
  compare(std::string(name) + " dw", gdw.get(), dw);
}

int main() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("CUDA engine ops: skipped (no usable CUDA GPU)\n0 passed, 0 failed\n");
    return 0;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s\n", prop.name);
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, std::tuple{67, 129, 33}, std::tuple{128, 64, 300}})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        Vec A = randn(static_cast<size_t>(M) * K), B = randn(static_cast<size_t>(K) * N), C(static_cast<size_t>(M) * N);
        gemm<float>(ta, tb, M, N, K, A.data(), B.data(), C.data(), false);
        Dev a(A), b(B), c(C.size());
        cuda::gemm(ta, tb, M, N, K, a.p, b.p, c.p, false, 0);
        compare("gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " ta" +
                    std::to_string(ta) + " tb" + std::to_string(tb),
                c.get(), C);
      }
  conv_case(3, 3, 17, 15, 8, 3, 2, false, false);
  conv_case(2, 5, 9, 11, 7, 3, 1, false, false);
  conv_case(2, 6, 7, 9, 6, 3, 1, true, true);
  conv_case(3, 5, 8, 8, 9, 1, 1, false, false);
  conv_case(2, 5, 9, 7, 6, 1, 2, true, false);
  {
    const int n = 5, c = 7, hw = 13;
    Vec x = randn(n * c * hw), g = randn(c), b = randn(c), dy = randn(x.size());
    Vec y(x.size()), mean(c), inv(c), dx(x.size()), dg(c, 0.f), db(c, 0.f);
    batchnorm_forward_train<float>(n, c, hw, x.data(), g.data(), b.data(), y.data(), mean.data(), inv.data(), nullptr,
                                   nullptr, 0.9, 1e-3);
    batchnorm_backward<float>(n, c, hw, x.data(), g.data(), mean.data(), inv.data(), dy.data(), dx.data(), dg.data(),
                              db.data());
    Dev gx(x), gg(g), gb(b), gdy(dy), gy(y.size()), gm(c), gi(c), gdx(x.size()), gdg(c), gdb(c);
    cuda::batchnorm_forward_train(n, c, hw, gx.p, gg.p, gb.p, gy.p, gm.p, gi.p, 1e-3, 0);
    cuda::batchnorm_backward(n, c, hw, gx.p, gg.p, gm.p, gi.p, gdy.p, gdx.p, gdg.p, gdb.p, 0);
    compare("batchnorm forward", gy.get(), y);
    compare("batchnorm dx", gdx.get(), dx);
    compare("batchnorm dgamma", gdg.get(), dg);
    compare("batchnorm dbeta", gdb.get(), db);
    Vec rm = randn(c), rv(c, 0.7f), ye(x.size());
    batchnorm_forward_eval<float>(n, c, hw, x.data(), g.data(), b.data(), rm.data(), rv.data(), ye.data(), 1e-3);
    Dev grm(rm), grv(rv), gye(x.size());
    cuda::batchnorm_forward_eval(n, c, hw, gx.p, gg.p, gb.p, grm.p, grv.p, gye.p, 1e-3, 0);
    compare("batchnorm eval", gye.get(), ye);
  }
  for (auto [h, w] : {std::pair{7, 7}, std::pair{6, 5}, std::pair{2, 3}}) {
    const int n = 2, c = 3, oh = (h + 1) / 2, ow = (w + 1) / 2;
    Vec x = randn(static_cast<size_t>(n) * c * h * w), dy = randn(static_cast<size_t>(n) * c * oh * ow), y(dy.size()),
        dx(x.size());
    std::vector<int32_t> am(dy.size());
    maxpool_forward<float>(n, c, h, w, x.data(), y.data(), am.data());
    maxpool_backward<float>(n, c, h, w, am.data(), dy.data(), dx.data());
    Dev gx(x), gy(y.size()), gdy(dy), gdx(x.size());
    int32_t* gam;
    cudaMalloc(&gam, am.size() * sizeof(int32_t));
    cuda::maxpool_forward(n, c, h, w, gx.p, gy.p, gam, 0);
    cuda::maxpool_backward(n, c, h, w, gam, gdy.p, gdx.p, 0);
    compare("maxpool forward " + std::to_string(h) + "x" + std::to_string(w), gy.get(), y);
    compare("maxpool backward " + std::to_string(h) + "x" + std::to_string(w), gdx.get(), dx);
    cudaFree(gam);
  }
  {
    const int n = 3, in = 37, out = 11;
    Vec x = randn(n * in), w = randn(out * in), b = randn(out), dy = randn(n * out), y(n * out), dx(x.size()),
        dw(w.size(), 0.f), db(out, 0.f);
    dense_forward<float>(n, in, out, x.data(), w.data(), b.data(), y.data());
    dense_backward<float>(n, in, out, x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data());
    Dev gx(x), gw(w), gb(b), gdy(dy), gy(y.size()), gdx(x.size()), gdw(w.size()), gdb(out);
    cuda::dense_forward(n, in, out, gx.p, gw.p, gb.p, gy.p, 0);
    cuda::dense_backward(n, in, out, gx.p, gw.p, gdy.p, gdx.p, gdw.p, gdb.p, 0);
    compare("dense forward", gy.get(), y);
    compare("dense dx", gdx.get(), dx);
    compare("dense dw", gdw.get(), dw);
    compare("dense db", gdb.get(), db);
  }
  {
    const int rows = 9, dim = 45;
    Vec x = randn(rows * dim), dy = randn(x.size()), y(x.size()), dx(x.size());
    l2norm_forward<float>(rows, dim, x.data(), y.data(), 1e-12);
    l2norm_backward<float>(rows, dim, x.data(), y.data(), dy.data(), dx.data(), 1e-12);
    Dev gx(x), gdy(dy), gy(x.size()), gdx(x.size());
    cuda::l2norm_forward(rows, dim, gx.p, gy.p, 1e-12, 0);
    cuda::l2norm_backward(rows, dim, gx.p, gy.p, gdy.p, gdx.p, 1e-12, 0);
    compare("l2norm forward", gy.get(), y);
    compare("l2norm backward", gdx.get(), dx);
  }
  {
    const int n = 4, c = 5, hw = 9;
    Vec x = randn(n * c * hw), dy = randn(n * c), y(n * c), dx(x.size()), r = randn(x.size()), rr(x.size());
    gap_forward<float>(n, c, hw, x.data(), y.data());
    gap_backward<float>(n, c, hw, dy.data(), dx.data());
    relu_forward<float>(r.size(), r.data(), rr.data());
    Dev gx(x), gdy(dy), gy(y.size()), gdx(x.size()), gr(r), grr(r.size());
    cuda::gap_forward(n, c, hw, gx.p, gy.p, 0);
    cuda::gap_backward(n, c, hw, gdy.p, gdx.p, 0);
    cuda::relu_forward(r.size(), gr.p, grr.p, 0);
    compare("gap forward", gy.get(), y);
    compare("gap backward", gdx.get(), dx);
    compare("relu forward", grr.get(), rr);
  }
  {
    const int n = 6, classes = 7;
    Vec z = randn(n * classes), p(z.size()), dz(z.size()), dz_soft(z.size());
    std::vector<int32_t> labels = {0, 6, 3, 3, 1, 5};
    // soft targets: vote distributions over 7 classes (one row of another mass)
    Vec t(z.size(), 0.f);
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < classes; ++c)
        t[i * classes + c] = (c == labels[i] ? 0.6f : 0.f) + ((c + i) % 3 == 0 ? 0.1f : 0.f);
    const float loss =
        static_cast<float>(softmax_ce_forward<float>(n, classes, z.data(), labels.data(), nullptr, p.data()));
    softmax_ce_backward<float>(n, classes, p.data(), labels.data(), nullptr, 50.0, dz.data());
    const float loss_soft =
        static_cast<float>(softmax_ce_forward<float>(n, classes, z.data(), labels.data(), t.data(), p.data()));
    softmax_ce_backward<float>(n, classes, p.data(), labels.data(), t.data(), 50.0, dz_soft.data());
    Dev gz(z), gp(z.size()), gdz(z.size()), gl(n), gt(t), gdz_soft(z.size());
    int32_t* glab;
    cudaMalloc(&glab, n * sizeof(int32_t));
    cudaMemcpy(glab, labels.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice);
    cuda::softmax_ce_forward(n, classes, gz.p, glab, nullptr, gp.p, gl.p, 0);
    cuda::softmax_ce_backward(n, classes, gp.p, glab, nullptr, 50.0, gdz.p, 0);
    compare("softmax probabilities", gp.get(), p);
    compare("softmax cross-entropy gradient", gdz.get(), dz);
    Vec losses = gl.get();
    double mean = 0;
    for (float v : losses) mean += v;
    compare("softmax cross-entropy", Vec{static_cast<float>(mean / n)}, Vec{loss});
    cuda::softmax_ce_forward(n, classes, gz.p, glab, gt.p, gp.p, gl.p, 0);
    cuda::softmax_ce_backward(n, classes, gp.p, glab, gt.p, 50.0, gdz_soft.p, 0);
    losses = gl.get();
    mean = 0;
    for (float v : losses) mean += v;
    compare("softmax cross-entropy, soft targets", Vec{static_cast<float>(mean / n)}, Vec{loss_soft});
    compare("softmax cross-entropy gradient, soft targets", gdz_soft.get(), dz_soft);
    cudaFree(glab);
  }
  cudaError_t err = cudaDeviceSynchronize();
  if (err != cudaSuccess) {
    std::printf("FAIL CUDA error: %s\n", cudaGetErrorString(err));
    failed++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
