// Convolutions of ops.h, forward and backward. Design note: convolutions
// are the cost of a step. In float, pointwise (1x1) convolutions are one GEMM
// over the whole batch that reads and writes NCHW in place (gemm_cpu.cpp's
// layouts); the two 3x3 entry convolutions go through im2col and the same
// GEMM; depthwise 3x3 runs as direct one-pass loops over padded planes
// (memory-bound), or as straight-line code on planes of at most 4 x 4. In
// double the batch is packed channel-major [c][n*P] for ops_cpu_gemm.cpp's
// portable GEMM.
#include "ops_cpu_internal.h"

#include <cstring>
#include <type_traits>

#include "../common/scratch.h"
#include "gemm_cpu.h"

namespace adcorre::engine {

int conv_out(int in, int k, int stride, bool same) { return same ? (in + stride - 1) / stride : (in - k) / stride + 1; }

int same_pad_before(int in, int k, int stride) {
  const int out = (in + stride - 1) / stride;
  const int total = std::max((out - 1) * stride + k - in, 0);
  return total / 2;
}

ConvShape make_conv_shape(int n, int c, int h, int w, int o, int k, int stride, bool same, bool depthwise) {
  ConvShape s{n, c, h, w, o, k, stride, 0, 0, 0, 0, depthwise};
  s.oh = conv_out(h, k, stride, same);
  s.ow = conv_out(w, k, stride, same);
  if (same) {
    s.pad_top = same_pad_before(h, k, stride);
    s.pad_left = same_pad_before(w, k, stride);
  }
  return s;
}

namespace {

// Columns of the whole batch: col[(c*k + ky)*k + kx][n*P + oy*ow + ox], P = oh*ow.
template <typename T>
void im2col(const ConvShape& s, const T* x, T* col) {
  const int k = s.k, P = s.oh * s.ow;
  const size_t NP = static_cast<size_t>(s.n) * P;
  pool().parallel_for(static_cast<size_t>(s.c) * k * k, 4, [&](size_t b, size_t e) {
    for (size_t row_i = b; row_i < e; ++row_i) {
      const int c = static_cast<int>(row_i / (k * k)), ky = static_cast<int>(row_i / k % k),
                kx = static_cast<int>(row_i % k);
      T* row = col + row_i * NP;
      const bool inside = s.pad_top == 0 && s.pad_left == 0 && (s.oh - 1) * s.stride + k <= s.h &&
                          (s.ow - 1) * s.stride + k <= s.w;  // 'valid': every tap in the image
      for (int n = 0; n < s.n; ++n) {
        const T* xp = x + (static_cast<size_t>(n) * s.c + c) * s.h * s.w;
        T* out = row + static_cast<size_t>(n) * P;
        if (inside) {
          for (int oy = 0; oy < s.oh; ++oy) {
            const T* src = xp + static_cast<size_t>(oy * s.stride + ky) * s.w + kx;
            T* dst = out + oy * s.ow;
            if (s.stride == 1)
              std::memcpy(dst, src, s.ow * sizeof(T));
            else
              for (int ox = 0; ox < s.ow; ++ox) dst[ox] = src[ox * s.stride];
          }
          continue;
        }
        for (int oy = 0; oy < s.oh; ++oy) {
          const int iy = oy * s.stride + ky - s.pad_top;
          for (int ox = 0; ox < s.ow; ++ox) {
            const int ix = ox * s.stride + kx - s.pad_left;
            out[oy * s.ow + ox] = (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) ? xp[iy * s.w + ix] : T(0);
          }
        }
      }
    }
  });
}

template <typename T>
void col2im(const ConvShape& s, const T* col, T* dx) {
  const int k = s.k, P = s.oh * s.ow;
  const size_t NP = static_cast<size_t>(s.n) * P;
  // Parallel over (n, c) planes: each owns its output plane.
  pool().parallel_for(static_cast<size_t>(s.n) * s.c, 4, [&](size_t b, size_t e) {
    for (size_t nc = b; nc < e; ++nc) {
      const int n = static_cast<int>(nc / s.c), c = static_cast<int>(nc % s.c);
      T* dp = dx + nc * s.h * s.w;
      std::fill(dp, dp + static_cast<size_t>(s.h) * s.w, T(0));
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          const T* row = col + static_cast<size_t>((c * k + ky) * k + kx) * NP + static_cast<size_t>(n) * P;
          for (int oy = 0; oy < s.oh; ++oy) {
            const int iy = oy * s.stride + ky - s.pad_top;
            if (iy < 0 || iy >= s.h) continue;
            for (int ox = 0; ox < s.ow; ++ox) {
              const int ix = ox * s.stride + kx - s.pad_left;
              if (ix >= 0 && ix < s.w) dp[iy * s.w + ix] += row[oy * s.ow + ox];
            }
          }
        }
    }
  });
}

// NCHW [n][c][P] <-> channel-major [c][n*P], so a batch is one GEMM.
template <typename T>
void pack(int n, int c, int P, const T* in, T* out) {
  parallel_elementwise(static_cast<size_t>(n), static_cast<size_t>(c) * P, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i)
      for (int ch = 0; ch < c; ++ch)
        std::memcpy(out + (static_cast<size_t>(ch) * n + i) * P, in + (i * c + ch) * P, P * sizeof(T));
  });
}

template <typename T>
void unpack(int n, int c, int P, const T* in, T* out) {
  parallel_elementwise(static_cast<size_t>(n), static_cast<size_t>(c) * P, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i)
      for (int ch = 0; ch < c; ++ch)
        std::memcpy(out + (i * c + ch) * P, in + (static_cast<size_t>(ch) * n + i) * P, P * sizeof(T));
  });
}

bool is_plain_pointwise(const ConvShape& s) {
  return s.k == 1 && s.stride == 1 && s.pad_top == 0 && s.pad_left == 0 && !s.depthwise;
}

// Stride 1 with symmetric 'same' padding (every depthwise convolution of
// Xception): planes are copied into a zero border so that the tap loops have
// no bounds checks and vectorise along rows.
bool is_padded_stride1(const ConvShape& s) {
  const int p = (s.k - 1) / 2;
  return s.stride == 1 && s.k % 2 == 1 && s.pad_top == p && s.pad_left == p && s.oh == s.h && s.ow == s.w;
}

// Floats of a padded plane: (h + 2p) rows of (w + 2p), and 2p more so that
// the flat tap loops below may read past the last row's end.
inline size_t padded_size(int h, int w, int p) { return static_cast<size_t>(h + 2 * p) * (w + 2 * p) + 2 * p; }

// plane [h][w] into out (padded_size) with a zero border of p
template <typename T>
ENGINE_INLINE_LOOPS void pad_plane(const T* in, int h, int w, int p, T* out) {
  const int W = w + 2 * p;
  // only the border is zeroed (the plane is written once, not zeroed first)
  const int head = p * W + p;
  for (int j = 0; j < head; ++j) out[j] = T(0);
  for (int i = 0; i < h; ++i) {
    T* o = out + static_cast<size_t>(i + p) * W + p;
    const T* src = in + static_cast<size_t>(i) * w;
    for (int j = 0; j < w; ++j) o[j] = src[j];
    for (int j = w; j < w + 2 * p; ++j) o[j] = T(0);  // this row's right border and the next row's left
  }
  T* tail = out + static_cast<size_t>(h + p) * W + p;
  const T* end = out + padded_size(h, w, p);
  for (T* z = tail; z < end; ++z) *z = T(0);
}

// y[h][w] = sum over taps of w[ky][kx] * xpad[oy + ky][ox + kx] (xpad from
// pad_plane with p = (k - 1) / 2); flip: the kernel rotated by 180 degrees.
// The taps run over the plane as one flat row of h x (w + 2p) values (the
// padded columns are computed and dropped), so that on Xception's small maps
// (3x3 to 21x21 at 48 px) the loop is long enough to vectorise.
template <typename T>
ENGINE_HOT ENGINE_INLINE_LOOPS void depthwise_padded(const T* xpad, int h, int w, int k, const T* wk, bool flip,
                                                     T* flat, T* y) {
  const int W = w + k - 1, L = h * W;
  if (k == 3) {
    // all nine taps per output in one pass: one store per output instead of nine read-modify-writes
    T t[9];
    for (int q = 0; q < 9; ++q) t[q] = flip ? wk[8 - q] : wk[q];
    const T* __restrict r0 = xpad;
    const T* __restrict r1 = xpad + W;
    const T* __restrict r2 = xpad + 2 * W;
    T* __restrict f = flat;
#pragma omp simd
    for (int i = 0; i < L; ++i)
      f[i] = t[0] * r0[i] + t[1] * r0[i + 1] + t[2] * r0[i + 2] + t[3] * r1[i] + t[4] * r1[i + 1] + t[5] * r1[i + 2] +
             t[6] * r2[i] + t[7] * r2[i + 1] + t[8] * r2[i + 2];
    for (int oy = 0; oy < h; ++oy)
      for (int ox = 0; ox < w; ++ox) y[static_cast<size_t>(oy) * w + ox] = flat[static_cast<size_t>(oy) * W + ox];
    return;
  }
  std::fill(flat, flat + L, T(0));
  for (int ky = 0; ky < k; ++ky)
    for (int kx = 0; kx < k; ++kx) {
      const T wv = flip ? wk[(k - 1 - ky) * k + (k - 1 - kx)] : wk[ky * k + kx];
      const T* xr = xpad + static_cast<size_t>(ky) * W + kx;
#pragma omp simd
      for (int i = 0; i < L; ++i) flat[i] += wv * xr[i];
    }
  for (int oy = 0; oy < h; ++oy)
    std::memcpy(y + static_cast<size_t>(oy) * w, flat + static_cast<size_t>(oy) * W, w * sizeof(T));
}

// Depthwise 3x3 ('same', stride 1) on planes of at most 4 x 4 (the middle
// and exit flows at 48 and 64 px): straight-line code per plane size with
// the borders resolved at compile time. At this size the padded copy and the
// padded columns of the flat loops above were most of the work.
template <int H, int W, typename T>
ENGINE_HOT void depthwise3_small(const T* __restrict x, const T* __restrict t, T* __restrict y) {
#pragma GCC unroll 4
  for (int oy = 0; oy < H; ++oy)
#pragma GCC unroll 4
    for (int ox = 0; ox < W; ++ox) {
      T acc = 0;
#pragma GCC unroll 3
      for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; ++kx) {
          const int iy = oy + ky - 1, ix = ox + kx - 1;
          if (iy >= 0 && iy < H && ix >= 0 && ix < W) acc += t[ky * 3 + kx] * x[iy * W + ix];
        }
      y[oy * W + ox] = acc;
    }
}

// dw[ky][kx] = sum over the outputs of g[oy][ox] * x[oy + ky - 1][ox + kx - 1] (inside the plane)
template <int H, int W, typename T>
ENGINE_HOT void depthwise3_small_weight_grad(const T* __restrict g, const T* __restrict x, T* __restrict dw) {
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky)
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx) {
      T acc = 0;
#pragma GCC unroll 4
      for (int oy = 0; oy < H; ++oy)
#pragma GCC unroll 4
        for (int ox = 0; ox < W; ++ox) {
          const int iy = oy + ky - 1, ix = ox + kx - 1;
          if (iy >= 0 && iy < H && ix >= 0 && ix < W) acc += g[oy * W + ox] * x[iy * W + ix];
        }
      dw[ky * 3 + kx] = acc;
    }
}

template <typename T>
struct SmallDepthwise3 {
  void (*apply)(const T*, const T*, T*);        // y from x and the nine taps
  void (*weight_grad)(const T*, const T*, T*);  // the nine taps' gradient from dy and x
};

// The kernels for an h x w plane, or null where the flat padded loops serve.
template <typename T>
const SmallDepthwise3<T>* small_depthwise3(int h, int w) {
  static const SmallDepthwise3<T> table[4] = {
      {depthwise3_small<1, 1, T>, depthwise3_small_weight_grad<1, 1, T>},
      {depthwise3_small<2, 2, T>, depthwise3_small_weight_grad<2, 2, T>},
      {depthwise3_small<3, 3, T>, depthwise3_small_weight_grad<3, 3, T>},
      {depthwise3_small<4, 4, T>, depthwise3_small_weight_grad<4, 4, T>},
  };
  return h == w && h >= 1 && h <= 4 ? &table[h - 1] : nullptr;
}

// dw[ky][kx] = sum_i g[i] * xpad[i + ky * W + kx] over a flat padded plane
// of L values: the nine dot products in one pass.
template <typename T>
ENGINE_HOT void depthwise3_weight_grad(int L, int W, const T* __restrict g, const T* __restrict xpad, T* dw) {
  T a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0;
  const T* __restrict r0 = xpad;
  const T* __restrict r1 = xpad + W;
  const T* __restrict r2 = xpad + 2 * W;
#pragma omp simd reduction(+ : a0, a1, a2, a3, a4, a5, a6, a7, a8)
  for (int i = 0; i < L; ++i) {
    const T gi = g[i];
    a0 += gi * r0[i];
    a1 += gi * r0[i + 1];
    a2 += gi * r0[i + 2];
    a3 += gi * r1[i];
    a4 += gi * r1[i + 1];
    a5 += gi * r1[i + 2];
    a6 += gi * r2[i];
    a7 += gi * r2[i + 1];
    a8 += gi * r2[i + 2];
  }
  dw[0] = a0, dw[1] = a1, dw[2] = a2, dw[3] = a3, dw[4] = a4, dw[5] = a5, dw[6] = a6, dw[7] = a7, dw[8] = a8;
}

}  // namespace

template <typename T>
void conv_forward(const ConvShape& s, const T* x, const T* weight, T* y, std::vector<T>& scratch) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w, out_plane = static_cast<size_t>(s.oh) * s.ow;
  if (s.depthwise && is_padded_stride1(s)) {
    if (const auto* small = s.k == 3 ? small_depthwise3<T>(s.h, s.w) : nullptr) {
      pool().parallel_for(static_cast<size_t>(s.n) * s.c, 64, [&](size_t b, size_t e) {
        for (size_t nc = b; nc < e; ++nc) small->apply(x + nc * in_plane, weight + (nc % s.c) * 9, y + nc * out_plane);
      });
      return;
    }
    const int p = (s.k - 1) / 2;
    pool().parallel_for(static_cast<size_t>(s.n) * s.c, 8, [&](size_t b, size_t e) {
      thread_local std::vector<T> xpad, flat;
      ensure_size(xpad, padded_size(s.h, s.w, p));
      ensure_size(flat, xpad.size());
      for (size_t nc = b; nc < e; ++nc) {
        pad_plane(x + nc * in_plane, s.h, s.w, p, xpad.data());
        depthwise_padded(xpad.data(), s.h, s.w, s.k, weight + static_cast<size_t>(nc % s.c) * s.k * s.k, false,
                         flat.data(), y + nc * out_plane);
      }
    });
    return;
  }
  if (s.depthwise) {
    pool().parallel_for(static_cast<size_t>(s.n) * s.c, 8, [&](size_t b, size_t e) {
      for (size_t nc = b; nc < e; ++nc) {
        const int c = static_cast<int>(nc % s.c);
        const T* xp = x + nc * in_plane;
        const T* wk = weight + static_cast<size_t>(c) * s.k * s.k;
        T* yp = y + nc * out_plane;
        for (int oy = 0; oy < s.oh; ++oy)
          for (int ox = 0; ox < s.ow; ++ox) {
            T acc = 0;
            for (int ky = 0; ky < s.k; ++ky) {
              const int iy = oy * s.stride + ky - s.pad_top;
              if (iy < 0 || iy >= s.h) continue;
              for (int kx = 0; kx < s.k; ++kx) {
                const int ix = ox * s.stride + kx - s.pad_left;
                if (ix >= 0 && ix < s.w) acc += xp[iy * s.w + ix] * wk[ky * s.k + kx];
              }
            }
            yp[oy * s.ow + ox] = acc;
          }
      }
    });
    return;
  }
  // The whole batch as one GEMM: Y'[o][n*P] = W[o][K] * cols[K][n*P].
  const int K = s.c * s.k * s.k;
  const int NP = static_cast<int>(s.n * out_plane);
  if constexpr (std::is_same_v<T, float>) {
    // The SIMD GEMM reads and writes NCHW in place of the channel-major copies.
    if (chosen_gemm_is_simd()) {
      const auto y_layout = MatrixLayout::nchw_channels_by_pixels(s.o, static_cast<int>(out_plane));
      if (is_plain_pointwise(s)) {
        gemm_f32_layout(s.o, NP, K, MatrixLayout::row_major(s.o, K), weight,
                        MatrixLayout::nchw_channels_by_pixels(s.c, static_cast<int>(in_plane)), x, y_layout, y, false);
        return;
      }
      ensure_size(scratch, static_cast<size_t>(K) * NP);
      im2col(s, x, scratch.data());
      gemm_f32_layout(s.o, NP, K, MatrixLayout::row_major(s.o, K), weight, MatrixLayout::row_major(K, NP),
                      scratch.data(), y_layout, y, false);
      return;
    }
  }
  ensure_size(scratch, static_cast<size_t>(K) * NP);
  if (is_plain_pointwise(s))
    pack(s.n, s.c, static_cast<int>(in_plane), x, scratch.data());
  else
    im2col(s, x, scratch.data());
  auto& yp = scratch_buffer<T>(2);
  ensure_size(yp, static_cast<size_t>(s.o) * NP);
  gemm(false, false, s.o, NP, K, weight, scratch.data(), yp.data(), false);
  unpack(s.n, s.o, static_cast<int>(out_plane), yp.data(), y);
}

template <typename T>
void conv_backward(const ConvShape& s, const T* x, const T* weight, const T* dy, T* dx, T* dweight,
                   std::vector<T>& scratch) {
  const size_t in_plane = static_cast<size_t>(s.h) * s.w, out_plane = static_cast<size_t>(s.oh) * s.ow;
  if (s.depthwise && is_padded_stride1(s)) {
    // dx = the padded dy convolved with the rotated kernel; dweight[ky][kx] =
    // sum of dy * the padded x shifted by the tap: per plane in parallel, then
    // summed over n in a fixed order.
    const int p = (s.k - 1) / 2, kk = s.k * s.k;
    auto& dw_partial = scratch_buffer<T>(3);
    ensure_size(dw_partial, static_cast<size_t>(s.n) * s.c * kk);
    const auto* small = s.k == 3 ? small_depthwise3<T>(s.h, s.w) : nullptr;
    pool().parallel_for(static_cast<size_t>(s.n) * s.c, small ? 64 : 8, [&](size_t b, size_t e) {
      if (small) {
        for (size_t nc = b; nc < e; ++nc) {
          const T* wk = weight + (nc % s.c) * 9;
          const T rotated[9] = {wk[8], wk[7], wk[6], wk[5], wk[4], wk[3], wk[2], wk[1], wk[0]};
          small->apply(dy + nc * out_plane, rotated, dx + nc * in_plane);
          small->weight_grad(dy + nc * out_plane, x + nc * in_plane, dw_partial.data() + nc * kk);
        }
        return;
      }
      thread_local std::vector<T> xpad, dypad, flat;
      ensure_size(xpad, padded_size(s.h, s.w, p));
      ensure_size(dypad, xpad.size());
      ensure_size(flat, xpad.size());
      const int W = s.w + 2 * p;
      for (size_t nc = b; nc < e; ++nc) {
        const T* dyp = dy + nc * out_plane;
        pad_plane(dyp, s.h, s.w, p, dypad.data());
        depthwise_padded(dypad.data(), s.h, s.w, s.k, weight + static_cast<size_t>(nc % s.c) * kk, true, flat.data(),
                         dx + nc * in_plane);
        pad_plane(x + nc * in_plane, s.h, s.w, p, xpad.data());
        // flat over h x W: dy's padded columns are the zero border, so the
        // products with the x values beside the plane add nothing
        T* dwp = dw_partial.data() + nc * kk;
        const T* g = dypad.data() + static_cast<size_t>(p) * W + p;
        const int L = s.h * W;
        if (s.k == 3) {
          depthwise3_weight_grad(L, W, g, xpad.data(), dwp);
          continue;
        }
        for (int ky = 0; ky < s.k; ++ky)
          for (int kx = 0; kx < s.k; ++kx) {
            const T* xr = xpad.data() + static_cast<size_t>(ky) * W + kx;
            T acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int i = 0; i < L; ++i) acc += g[i] * xr[i];
            dwp[ky * s.k + kx] = acc;
          }
      }
    });
    for (int n = 0; n < s.n; ++n)
      for (size_t i = 0; i < static_cast<size_t>(s.c) * kk; ++i)
        dweight[i] += dw_partial[static_cast<size_t>(n) * s.c * kk + i];
    return;
  }
  if (s.depthwise) {
    // dx per (n, c) plane in parallel; dweight per channel summed over n afterwards (fixed order).
    auto& dw_partial = scratch_buffer<T>(3);
    dw_partial.assign(static_cast<size_t>(s.n) * s.c * s.k * s.k, T(0));
    pool().parallel_for(static_cast<size_t>(s.n) * s.c, 8, [&](size_t b, size_t e) {
      for (size_t nc = b; nc < e; ++nc) {
        const int c = static_cast<int>(nc % s.c);
        const T* xp = x + nc * in_plane;
        const T* wk = weight + static_cast<size_t>(c) * s.k * s.k;
        const T* dyp = dy + nc * out_plane;
        T* dxp = dx + nc * in_plane;
        T* dwp = dw_partial.data() + nc * s.k * s.k;
        std::fill(dxp, dxp + in_plane, T(0));
        for (int oy = 0; oy < s.oh; ++oy)
          for (int ox = 0; ox < s.ow; ++ox) {
            const T g = dyp[oy * s.ow + ox];
            for (int ky = 0; ky < s.k; ++ky) {
              const int iy = oy * s.stride + ky - s.pad_top;
              if (iy < 0 || iy >= s.h) continue;
              for (int kx = 0; kx < s.k; ++kx) {
                const int ix = ox * s.stride + kx - s.pad_left;
                if (ix < 0 || ix >= s.w) continue;
                dxp[iy * s.w + ix] += g * wk[ky * s.k + kx];
                dwp[ky * s.k + kx] += g * xp[iy * s.w + ix];
              }
            }
          }
      }
    });
    for (int n = 0; n < s.n; ++n)
      for (size_t i = 0; i < static_cast<size_t>(s.c) * s.k * s.k; ++i)
        dweight[i] += dw_partial[static_cast<size_t>(n) * s.c * s.k * s.k + i];
    return;
  }
  const int K = s.c * s.k * s.k;
  const int NP = static_cast<int>(s.n * out_plane);
  const bool plain = is_plain_pointwise(s);
  if constexpr (std::is_same_v<T, float>) {
    if (chosen_gemm_is_simd()) {
      // dW[o][K] += dY[o][NP] * cols[K][NP]^T and dcols[K][NP] = W^T dY, with
      // dY (and, pointwise, x and dx) read and written in NCHW directly.
      using L = MatrixLayout;
      const auto dy_layout = L::nchw_channels_by_pixels(s.o, static_cast<int>(out_plane));
      if (plain) {
        gemm_f32_layout(s.o, K, NP, dy_layout, dy, L::nchw_pixels_by_channels(s.c, static_cast<int>(in_plane)), x,
                        L::row_major(s.o, K), dweight, true);
        if (dx)
          gemm_f32_layout(K, NP, s.o, L::column_major(K, s.o), weight, dy_layout, dy,
                          L::nchw_channels_by_pixels(s.c, static_cast<int>(in_plane)), dx, false);
        return;
      }
      ensure_size(scratch, static_cast<size_t>(K) * NP);
      im2col(s, x, scratch.data());
      gemm_f32_layout(s.o, K, NP, dy_layout, dy, L::column_major(NP, K), scratch.data(), L::row_major(s.o, K), dweight,
                      true);
      if (!dx) return;
      gemm_f32_layout(K, NP, s.o, L::column_major(K, s.o), weight, dy_layout, dy, L::row_major(K, NP), scratch.data(),
                      false);
      col2im(s, scratch.data(), dx);
      return;
    }
  }
  ensure_size(scratch, static_cast<size_t>(K) * NP);
  if (plain)
    pack(s.n, s.c, static_cast<int>(in_plane), x, scratch.data());
  else
    im2col(s, x, scratch.data());
  auto& dyp = scratch_buffer<T>(2);
  ensure_size(dyp, static_cast<size_t>(s.o) * NP);
  pack(s.n, s.o, static_cast<int>(out_plane), dy, dyp.data());
  // dW[o][K] += dY'[o][NP] * cols[K][NP]^T
  gemm(false, true, s.o, K, NP, dyp.data(), scratch.data(), dweight, true);
  if (!dx) return;  // the network's input: no gradient wanted
  // dcols[K][NP] = W^T * dY' (reusing the columns' buffer), then back to NCHW
  gemm(true, false, K, NP, s.o, weight, dyp.data(), scratch.data(), false);
  if (plain)
    unpack(s.n, s.c, static_cast<int>(in_plane), scratch.data(), dx);
  else
    col2im(s, scratch.data(), dx);
}

#define INSTANTIATE(T)                                                                      \
  template void conv_forward<T>(const ConvShape&, const T*, const T*, T*, std::vector<T>&); \
  template void conv_backward<T>(const ConvShape&, const T*, const T*, const T*, T*, T*, std::vector<T>&);

INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace adcorre::engine
