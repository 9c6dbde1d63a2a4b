// Finite-difference checks of the convolutions (dense, depthwise, pointwise,
// strided, 'valid' and 'same', the small-plane kernels), the depthwise
// forward against its definition, and the float convolutions against the
// double ones.
#include "ops_test.h"

namespace adcorre::engine::ops_test {

namespace {

void conv_case(int n, int c, int h, int w, int o, int k, int stride, bool same, bool depthwise) {
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
void depthwise_forward_case(int n, int c, int h, int w) {
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

// The float convolutions (the SIMD GEMM reading NCHW directly) against the
// double ones (the portable path, itself checked by finite differences above)
// on the same inputs: forward, dx and dweight, relative to the largest value.
void conv_float_case(int n, int c, int h, int w, int o, int k, int stride, bool same) {
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

}  // namespace

void conv_float_cases() {
  conv_float_case(3, 5, 7, 6, 9, 1, 1, false);     // pointwise, planes smaller than a tile's columns
  conv_float_case(2, 13, 19, 21, 7, 1, 1, false);  // pointwise, planes of 399 (tiles inside and across samples)
  conv_float_case(5, 40, 6, 6, 70, 1, 1, false);   // pointwise, K and M past a panel, N past a column block
  conv_float_case(3, 7, 9, 8, 11, 1, 2, true);     // shortcut 1x1/2 same
  conv_float_case(2, 3, 15, 14, 10, 3, 2, false);  // entry conv1: 3x3/2 valid
  conv_float_case(2, 10, 11, 9, 17, 3, 1, false);  // entry conv2: 3x3 valid
}

void conv_gradient_cases() {
  conv_case(2, 3, 7, 6, 4, 3, 2, false, false);  // entry conv1: 3x3/2 valid
  conv_case(2, 2, 6, 7, 3, 3, 1, false, false);  // entry conv2: 3x3 valid
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
}

}  // namespace adcorre::engine::ops_test
