// Backend conformance: convolutions (dense, depthwise, pointwise, strided,
// 'valid' and 'same'), forward, input and weight gradients, against the
// float64 instantiation of ops.h.
#include "backend_test.h"

namespace adcorre::engine::conformance {

namespace {

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

}  // namespace

void conv_cases() {
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
}

}  // namespace adcorre::engine::conformance
