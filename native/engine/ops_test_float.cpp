// The float operations (the training precision: SIMD loops, splits over
// threads) against the same operations in double, and the GEMMs (double,
// float micro-kernels, the NCHW weight-gradient product) against naive
// products.
#include "ops_test.h"

namespace adcorre::engine::ops_test {

// Every other operation in float (the training precision: SIMD loops, splits
// over threads) against the same operation in double (checked by finite
// differences below), on odd shapes, one of them past the threading grain
// (32K values).
void float_ops_against_double() {
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

void gemm_cases() {
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
}

}  // namespace adcorre::engine::ops_test
