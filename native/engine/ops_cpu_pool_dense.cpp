// Pooling, dense layers and the classifier's loss of ops.h: 3x3 stride-2
// max pool (forward with its switches, backward through them), global
// average pool, dense forward and backward (on ops_cpu_gemm.cpp's GEMM) and
// softmax cross-entropy. Design note: the max pool's rows run as branch-free
// selects (its data-dependent branches mispredicted); the rest is small next
// to the convolutions and written plainly.
#include "op_table.h"  // kPoolKernel, kPoolStride
#include "ops_cpu_internal.h"

#include <cmath>

namespace adcorre::engine {

namespace {

// One output row of a 3x3 stride-2 max pool. rows: the plane rows of the
// window, clamped into the plane (a window hanging over the top repeats row
// 0, over the bottom the last row); columns likewise. A repeated row or
// column never wins over its first copy (strict >), so the result and the
// switch (the first largest tap in row-major order) are those of the window's
// in-plane taps alone. Outputs [lo, hi) need no column clamping: vectorised
// branch-free selects (data-dependent branches mispredicted about half the
// time); the few at the row's ends take the clamped columns. The two spell
// out the same nine taps: one shared inline helper for both measured 5-10 %
// slower on 21x21 and 29x29 planes (g++ 12).
template <typename T>
ENGINE_HOT void maxpool_row(const T* __restrict x, int w, int pl, int ow, int lo, int hi, const int rows[3],
                            T* __restrict y, int32_t* __restrict at_out) {
  const int b0 = rows[0] * w, b1 = rows[1] * w, b2 = rows[2] * w;
  const T* r0 = x + b0;
  const T* r1 = x + b1;
  const T* r2 = x + b2;
#define ADCORRE_MAXPOOL_TAP(v, index) \
  {                                   \
    const T tap = (v);                \
    const bool larger = tap > best;   \
    best = larger ? tap : best;       \
    at = larger ? (index) : at;       \
  }
#pragma omp simd
  for (int ox = lo; ox < hi; ++ox) {
    const int ix = 2 * ox - pl;
    T best = r0[ix];
    int32_t at = b0 + ix;
    ADCORRE_MAXPOOL_TAP(r0[ix + 1], b0 + ix + 1)
    ADCORRE_MAXPOOL_TAP(r0[ix + 2], b0 + ix + 2)
    ADCORRE_MAXPOOL_TAP(r1[ix], b1 + ix)
    ADCORRE_MAXPOOL_TAP(r1[ix + 1], b1 + ix + 1)
    ADCORRE_MAXPOOL_TAP(r1[ix + 2], b1 + ix + 2)
    ADCORRE_MAXPOOL_TAP(r2[ix], b2 + ix)
    ADCORRE_MAXPOOL_TAP(r2[ix + 1], b2 + ix + 1)
    ADCORRE_MAXPOOL_TAP(r2[ix + 2], b2 + ix + 2)
    y[ox] = best;
    at_out[ox] = at;
  }
  auto clamped = [&](int ox) {
    const int ix = 2 * ox - pl;
    const int c0 = std::max(ix, 0), c1 = std::min(std::max(ix + 1, 0), w - 1), c2 = std::min(ix + 2, w - 1);
    T best = r0[c0];
    int32_t at = b0 + c0;
    ADCORRE_MAXPOOL_TAP(r0[c1], b0 + c1)
    ADCORRE_MAXPOOL_TAP(r0[c2], b0 + c2)
    ADCORRE_MAXPOOL_TAP(r1[c0], b1 + c0)
    ADCORRE_MAXPOOL_TAP(r1[c1], b1 + c1)
    ADCORRE_MAXPOOL_TAP(r1[c2], b1 + c2)
    ADCORRE_MAXPOOL_TAP(r2[c0], b2 + c0)
    ADCORRE_MAXPOOL_TAP(r2[c1], b2 + c1)
    ADCORRE_MAXPOOL_TAP(r2[c2], b2 + c2)
    y[ox] = best;
    at_out[ox] = at;
  };
#undef ADCORRE_MAXPOOL_TAP
  for (int ox = 0; ox < std::min(lo, ow); ++ox) clamped(ox);
  for (int ox = std::max(hi, lo); ox < ow; ++ox) clamped(ox);
}

}  // namespace

// maxpool_row's three taps and the row arithmetic below are written for the op table's window.
static_assert(kPoolKernel == 3 && kPoolStride == 2, "the CPU maxpool kernels are written for 3x3 windows, stride 2");

template <typename T>
void maxpool_forward(int n, int c, int h, int w, const T* x, T* y, int32_t* argmax) {
  const int oh = conv_out(h, kPoolKernel, kPoolStride, true), ow = conv_out(w, kPoolKernel, kPoolStride, true);
  const int pt = same_pad_before(h, kPoolKernel, kPoolStride), pl = same_pad_before(w, kPoolKernel, kPoolStride);
  // outputs whose three columns are inside the plane: [lo, hi)
  const int lo = pl > 0 ? 1 : 0, hi = w >= 3 ? std::min(ow, (w - 3 + pl) / 2 + 1) : 0;
  parallel_elementwise(static_cast<size_t>(n) * c, static_cast<size_t>(h) * w * 2, [&](size_t b, size_t e) {
    for (size_t nc = b; nc < e; ++nc) {
      const T* xp = x + nc * h * w;
      for (int oy = 0; oy < oh; ++oy) {
        const int iy0 = oy * 2 - pt;
        const int rows[3] = {std::max(iy0, 0), std::min(std::max(iy0 + 1, 0), h - 1), std::min(iy0 + 2, h - 1)};
        maxpool_row(xp, w, pl, ow, lo, hi, rows, y + nc * oh * ow + oy * ow, argmax + nc * oh * ow + oy * ow);
      }
    }
  });
}

template <typename T>
void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const T* dy, T* dx) {
  const int oh = conv_out(h, kPoolKernel, kPoolStride, true), ow = conv_out(w, kPoolKernel, kPoolStride, true);
  parallel_elementwise(static_cast<size_t>(n) * c, static_cast<size_t>(h) * w, [&](size_t b, size_t e) {
    for (size_t nc = b; nc < e; ++nc) {
      std::fill(dx + nc * h * w, dx + (nc + 1) * h * w, T(0));
      for (int i = 0; i < oh * ow; ++i) dx[nc * h * w + argmax[nc * oh * ow + i]] += dy[nc * oh * ow + i];
    }
  });
}

template <typename T>
void gap_forward(int n, int c, int hw, const T* x, T* y) {
  for (size_t nc = 0; nc < static_cast<size_t>(n) * c; ++nc) {
    double s = 0;
    for (int j = 0; j < hw; ++j) s += x[nc * hw + j];
    y[nc] = static_cast<T>(s / hw);
  }
}

template <typename T>
void gap_backward(int n, int c, int hw, const T* dy, T* dx) {
  for (size_t nc = 0; nc < static_cast<size_t>(n) * c; ++nc)
    for (int j = 0; j < hw; ++j) dx[nc * hw + j] = dy[nc] / static_cast<T>(hw);
}

template <typename T>
void dense_forward(int n, int in, int out, const T* x, const T* weight, const T* bias, T* y) {
  gemm(false, true, n, out, in, x, weight, y, false);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) y[static_cast<size_t>(i) * out + o] += bias[o];
}

template <typename T>
void dense_backward(int n, int in, int out, const T* x, const T* weight, const T* dy, T* dx, T* dweight, T* dbias) {
  gemm(true, false, out, in, n, dy, x, dweight, true);  // dW[out][in] += dy^T x
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) dbias[o] += dy[static_cast<size_t>(i) * out + o];
  if (dx) gemm(false, false, n, in, out, dy, weight, dx, false);  // dx = dy W
}

template <typename T>
double softmax_ce_forward(int n, int classes, const T* logits, const int32_t* labels, const T* targets, T* probs,
                          double* losses) {
  double loss = 0;
  for (int i = 0; i < n; ++i) {
    const T* z = logits + static_cast<size_t>(i) * classes;
    T* p = probs + static_cast<size_t>(i) * classes;
    double mx = z[0];
    for (int c = 1; c < classes; ++c) mx = std::max(mx, static_cast<double>(z[c]));
    double s = 0;
    for (int c = 0; c < classes; ++c) s += std::exp(z[c] - mx);
    for (int c = 0; c < classes; ++c) p[c] = static_cast<T>(std::exp(z[c] - mx) / s);
    const double log_norm = mx + std::log(s);  // log p_c = z_c - log_norm
    double sample = 0;
    if (!targets) {
      sample = log_norm - z[labels[i]];
    } else {
      const T* t = targets + static_cast<size_t>(i) * classes;
      for (int c = 0; c < classes; ++c)
        if (t[c] != 0) sample += t[c] * (log_norm - z[c]);
    }
    if (losses) losses[i] = sample;
    loss += sample;
  }
  return loss / n;
}

template <typename T>
void softmax_ce_backward(int n, int classes, const T* probs, const int32_t* labels, const T* targets, double scale,
                         T* dlogits) {
  for (int i = 0; i < n; ++i) {
    const size_t row = static_cast<size_t>(i) * classes;
    if (!targets) {
      for (int c = 0; c < classes; ++c)
        dlogits[row + c] = static_cast<T>(scale * (probs[row + c] - (c == labels[i] ? 1.0 : 0.0)) / n);
      continue;
    }
    double mass = 0;  // 1 for a distribution; kept general so the gradient is exact for any weights
    for (int c = 0; c < classes; ++c) mass += targets[row + c];
    for (int c = 0; c < classes; ++c)
      dlogits[row + c] = static_cast<T>(scale * (probs[row + c] * mass - targets[row + c]) / n);
  }
}

#define INSTANTIATE(T)                                                                              \
  template void maxpool_forward<T>(int, int, int, int, const T*, T*, int32_t*);                     \
  template void maxpool_backward<T>(int, int, int, int, const int32_t*, const T*, T*);              \
  template void gap_forward<T>(int, int, int, const T*, T*);                                        \
  template void gap_backward<T>(int, int, int, const T*, T*);                                       \
  template void dense_forward<T>(int, int, int, const T*, const T*, const T*, T*);                  \
  template void dense_backward<T>(int, int, int, const T*, const T*, const T*, T*, T*, T*);         \
  template double softmax_ce_forward<T>(int, int, const T*, const int32_t*, const T*, T*, double*); \
  template void softmax_ce_backward<T>(int, int, const T*, const int32_t*, const T*, double, T*);

INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace adcorre::engine
