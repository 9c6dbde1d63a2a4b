// CPU kernels of the training engine (declared in ops.h). Design note:
// convolutions are the cost. In float, pointwise (1x1) convolutions are one
// GEMM over the whole batch that reads and writes NCHW in place (gemm_cpu.cpp,
// SIMD micro-kernels); the two 3x3 entry convolutions go through im2col and
// the same GEMM; depthwise 3x3 runs as direct one-pass loops over padded
// planes (memory-bound). The memory-bound elementwise loops are restrict-
// pointer functions (vectorised) split over the thread pool. Everything is a
// template so the finite-difference tests run the same code in double, where
// the portable GEMM below (4 x 16 register tiles) and the channel-major
// packing serve instead of the SIMD path.
#include "ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../common/scratch.h"
#include "../common/thread_pool.h"
#include "gemm_cpu.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define ENGINE_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ENGINE_HOT
#endif
// Loops over a few dozen floats stay inline: GCC would turn them into memset
// and memcpy calls, whose call overhead is the cost at that length.
#if defined(__GNUC__) && !defined(__clang__)
#define ENGINE_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define ENGINE_INLINE_LOOPS
#endif

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

ThreadPool& pool() { return ThreadPool::global(); }

// Memory-bound loops over `count` items of `per_item` values each: split over
// the pool once there is enough to share (waking a thread costs about as much
// as touching 32K floats).
template <typename F>
void parallel_elementwise(size_t count, size_t per_item, F&& fn) {
  const size_t grain = std::max<size_t>(1, (size_t(1) << 15) / std::max<size_t>(per_item, 1));
  pool().parallel_for(count, grain, fn);
}

// A 4 x 16 tile of C += A[4 rows][K] * B[K][16 columns], accumulated in
// registers (8 AVX2 or 4 AVX-512 registers for float): C is read and written
// once per K block instead of once per k.
template <typename T>
inline void gemm_tile_4x16(int K, const T* A, int lda, const T* B, int ldb, T* C, int ldc) {
  constexpr int MR = 4, NR = 16;
  T acc[MR][NR] = {};
  for (int k = 0; k < K; ++k) {
    const T* b = B + static_cast<size_t>(k) * ldb;
    for (int r = 0; r < MR; ++r) {
      const T a = A[static_cast<size_t>(r) * lda + k];
#pragma omp simd
      for (int j = 0; j < NR; ++j) acc[r][j] += a * b[j];
    }
  }
  for (int r = 0; r < MR; ++r) {
    T* c = C + static_cast<size_t>(r) * ldc;
#pragma omp simd
    for (int j = 0; j < NR; ++j) c[j] += acc[r][j];
  }
}

// Rows [m0, m1) of C += A * B (no transposes), blocked over N (NB columns)
// and K (the KB x NB block of B stays in L2): 4 x 16 register tiles, and
// rank-1 row updates for the rows and columns left over.
template <typename T>
ENGINE_HOT void gemm_nn_rows(int m0, int m1, int N, int K, const T* A, const T* B, T* C) {
  constexpr int NB = 256, KB = 256, MR = 4, NR = 16;
  for (int j0 = 0; j0 < N; j0 += NB) {
    const int j1 = std::min(N, j0 + NB);
    const int jt = j0 + (j1 - j0) / NR * NR;  // end of the full tiles
    for (int k0 = 0; k0 < K; k0 += KB) {
      const int kb = std::min(K, k0 + KB) - k0;
      int i = m0;
      for (; i + MR <= m1; i += MR)
        for (int j = j0; j < jt; j += NR)
          gemm_tile_4x16(kb, A + static_cast<size_t>(i) * K + k0, K, B + static_cast<size_t>(k0) * N + j, N,
                         C + static_cast<size_t>(i) * N + j, N);
      // leftovers: rows below the last full tile over every column, and the
      // columns right of the full tiles for the tiled rows
      for (int r = m0; r < m1; ++r) {
        const int from = r < i ? jt : j0;
        if (from >= j1) continue;
        T* c = C + static_cast<size_t>(r) * N;
        for (int k = k0; k < k0 + kb; ++k) {
          const T a = A[static_cast<size_t>(r) * K + k];
          const T* b = B + static_cast<size_t>(k) * N;
#pragma omp simd
          for (int j = from; j < j1; ++j) c[j] += a * b[j];
        }
      }
    }
  }
}

// out[cols][rows] = in[rows][cols], in 32x32 tiles.
template <typename T>
void transpose(int rows, int cols, const T* in, T* out) {
  constexpr int TB = 32;
  for (int r0 = 0; r0 < rows; r0 += TB)
    for (int c0 = 0; c0 < cols; c0 += TB)
      for (int r = r0; r < std::min(rows, r0 + TB); ++r)
        for (int c = c0; c < std::min(cols, c0 + TB); ++c)
          out[static_cast<size_t>(c) * rows + r] = in[static_cast<size_t>(r) * cols + c];
}

template <typename T>
std::vector<T>& scratch_buffer(int which) {
  // Reused across calls: fresh vectors cost page faults on every step.
  thread_local std::vector<T> buffers[4];
  return buffers[which];
}

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, const T* A, const T* B, T* C, bool accumulate) {
  if constexpr (std::is_same_v<T, float>)
    if (gemm_f32_packed(trans_a, trans_b, M, N, K, A, B, C, accumulate)) return;
  // The portable path (double for the finite-difference tests, and CPUs without AVX2):
  // Transposed operands are copied into row-major form first: simple, and the
  // copies are small next to the O(MNK) product.
  if (trans_a) {
    auto& at = scratch_buffer<T>(0);
    ensure_size(at, static_cast<size_t>(M) * K);
    transpose(K, M, A, at.data());
    A = at.data();
  }
  if (trans_b) {
    auto& bt = scratch_buffer<T>(1);
    ensure_size(bt, static_cast<size_t>(K) * N);
    transpose(N, K, B, bt.data());
    B = bt.data();
  }
  if (!accumulate) std::fill(C, C + static_cast<size_t>(M) * N, T(0));
  const size_t work = static_cast<size_t>(N) * K;
  pool().parallel_for(
      static_cast<size_t>(M), std::max<size_t>(1, (size_t(1) << 16) / std::max<size_t>(work, 1)),
      [&](size_t b, size_t e) { gemm_nn_rows(static_cast<int>(b), static_cast<int>(e), N, K, A, B, C); });
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

namespace {

// Sums over one plane in T with SIMD lanes (a few hundred to a few thousand
// values), returned in double for the sum over planes.
template <typename T>
ENGINE_HOT double plane_sum(int count, const T* __restrict p) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < count; ++j) s += p[j];
  return s;
}

template <typename T>
ENGINE_HOT double plane_centered_squares(int count, const T* __restrict p, T mu) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < count; ++j) s += (p[j] - mu) * (p[j] - mu);
  return s;
}

template <typename T>
ENGINE_HOT void plane_affine(int count, const T* __restrict p, T g, T b, T* __restrict q) {
  for (int j = 0; j < count; ++j) q[j] = p[j] * g + b;
}

template <typename T>
ENGINE_HOT void plane_affine_relu(int count, const T* __restrict p, T g, T b, T* __restrict q) {
  for (int j = 0; j < count; ++j) {
    const T v = p[j] * g + b;
    q[j] = v > T(0) ? v : T(0);
  }
}

template <typename T>
void plane_affine_maybe_relu(bool relu, int count, const T* p, T g, T b, T* q) {
  if (relu)
    plane_affine_relu(count, p, g, b, q);
  else
    plane_affine(count, p, g, b, q);
}

// sum dy and sum dy * (x - mu) over a plane
template <typename T>
ENGINE_HOT void plane_dy_sums(int count, const T* __restrict dy, const T* __restrict x, T mu, double* sdy,
                              double* sdyx) {
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int j = 0; j < count; ++j) {
    a += dy[j];
    b += dy[j] * (x[j] - mu);
  }
  *sdy += a;
  *sdyx += b;
}

// The same through a fused ReLU: dy counts where its output y > 0 (else 0)
template <typename T>
ENGINE_HOT void plane_dy_sums_relu(int count, const T* __restrict dy, const T* __restrict y, const T* __restrict x,
                                   T mu, double* sdy, double* sdyx) {
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int j = 0; j < count; ++j) {
    const T g = y[j] > T(0) ? dy[j] : T(0);
    a += g;
    b += g * (x[j] - mu);
  }
  *sdy += a;
  *sdyx += b;
}

// dx = k * (m dy - sdy - xhat sdyx), xhat = (x - mu) inv
template <typename T>
ENGINE_HOT void plane_bn_dx(int count, const T* __restrict dy, const T* __restrict x, T mu, T inv, T km, T ks, T kx,
                            T* __restrict dx) {
  for (int j = 0; j < count; ++j) dx[j] = km * dy[j] - ks - kx * ((x[j] - mu) * inv);
}

template <typename T>
ENGINE_HOT void plane_bn_dx_relu(int count, const T* __restrict dy, const T* __restrict y, const T* __restrict x, T mu,
                                 T inv, T km, T ks, T kx, T* __restrict dx) {
  for (int j = 0; j < count; ++j) dx[j] = km * (y[j] > T(0) ? dy[j] : T(0)) - ks - kx * ((x[j] - mu) * inv);
}

}  // namespace

template <typename T>
void batchnorm_forward_train(int n, int c, int hw, const T* x, const T* gamma, const T* beta, T* y, T* mean, T* invstd,
                             T* running_mean, T* running_var, double momentum, double eps, bool relu) {
  const double m = static_cast<double>(n) * hw;
  pool().parallel_for(static_cast<size_t>(c), 1, [&](size_t b, size_t e) {
    for (size_t ch = b; ch < e; ++ch) {
      double sum = 0, sq = 0;
      for (int i = 0; i < n; ++i) sum += plane_sum(hw, x + (static_cast<size_t>(i) * c + ch) * hw);
      const double mu = sum / m;
      // centred in T at mu rounded to T: exact enough (the shift only has to be near the mean)
      const T mu_t = static_cast<T>(mu);
      for (int i = 0; i < n; ++i) sq += plane_centered_squares(hw, x + (static_cast<size_t>(i) * c + ch) * hw, mu_t);
      const double shift = mu - static_cast<double>(mu_t);
      const double var = std::max(0.0, sq / m - shift * shift);
      const double inv = 1.0 / std::sqrt(var + eps);
      mean[ch] = static_cast<T>(mu);
      invstd[ch] = static_cast<T>(inv);
      if (running_mean) {
        running_mean[ch] = static_cast<T>(momentum * running_mean[ch] + (1 - momentum) * mu);
        running_var[ch] = static_cast<T>(momentum * running_var[ch] + (1 - momentum) * var);
      }
      const T g = static_cast<T>(gamma[ch] * inv), bb = static_cast<T>(beta[ch] - mu * inv * gamma[ch]);
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        plane_affine_maybe_relu(relu, hw, x + at, g, bb, y + at);
      }
    }
  });
}

template <typename T>
void batchnorm_forward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T* y, double eps, bool relu) {
  parallel_elementwise(static_cast<size_t>(c), static_cast<size_t>(n) * hw, [&](size_t b, size_t e) {
    for (size_t ch = b; ch < e; ++ch) {
      const double inv = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
      const T g = static_cast<T>(gamma[ch] * inv), bb = static_cast<T>(beta[ch] - running_mean[ch] * inv * gamma[ch]);
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        plane_affine_maybe_relu(relu, hw, x + at, g, bb, y + at);
      }
    }
  });
}

template <typename T>
void batchnorm_backward(int n, int c, int hw, const T* x, const T* gamma, const T* mean, const T* invstd, const T* dy,
                        T* dx, T* dgamma, T* dbeta, const T* relu_output) {
  const double m = static_cast<double>(n) * hw;
  pool().parallel_for(static_cast<size_t>(c), 1, [&](size_t b, size_t e) {
    for (size_t ch = b; ch < e; ++ch) {
      const T mu = mean[ch];
      const double inv = invstd[ch];
      double sdy = 0, sdyx = 0;
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        if (relu_output)
          plane_dy_sums_relu(hw, dy + at, relu_output + at, x + at, mu, &sdy, &sdyx);
        else
          plane_dy_sums(hw, dy + at, x + at, mu, &sdy, &sdyx);
      }
      sdyx *= inv;  // sum dy * xhat
      dbeta[ch] += static_cast<T>(sdy);
      dgamma[ch] += static_cast<T>(sdyx);
      const double k = gamma[ch] * inv / m;
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        const T km = static_cast<T>(k * m), ks = static_cast<T>(k * sdy), kx = static_cast<T>(k * sdyx);
        if (relu_output)
          plane_bn_dx_relu(hw, dy + at, relu_output + at, x + at, mu, static_cast<T>(inv), km, ks, kx, dx + at);
        else
          plane_bn_dx(hw, dy + at, x + at, mu, static_cast<T>(inv), km, ks, kx, dx + at);
      }
    }
  });
}

namespace {

// Loops on restrict pointers of their own: inside a lambda the compiler must
// reload captured pointers after every store and does not vectorise.
template <typename T>
ENGINE_HOT void relu_span(size_t count, const T* __restrict x, T* __restrict y) {
  for (size_t i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T>
ENGINE_HOT void relu_backward_span(size_t count, const T* __restrict y, const T* __restrict dy, T* __restrict dx) {
  for (size_t i = 0; i < count; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

}  // namespace

namespace {

template <typename T>
ENGINE_HOT void add_span(size_t count, const T* __restrict a, const T* __restrict b, T* __restrict y) {
  for (size_t i = 0; i < count; ++i) y[i] = a[i] + b[i];
}

template <typename T>
ENGINE_HOT void add_into_span(size_t count, const T* __restrict x, T* __restrict y) {
  for (size_t i = 0; i < count; ++i) y[i] += x[i];
}

}  // namespace

template <typename T>
void add_forward(size_t count, const T* a, const T* b, T* y) {
  parallel_elementwise(count, 1, [a, b, y](size_t s, size_t e) { add_span(e - s, a + s, b + s, y + s); });
}

template <typename T>
void add_into(size_t count, const T* x, T* y) {
  parallel_elementwise(count, 1, [x, y](size_t s, size_t e) { add_into_span(e - s, x + s, y + s); });
}

template <typename T>
void relu_forward(size_t count, const T* x, T* y) {
  parallel_elementwise(count, 1, [x, y](size_t b, size_t e) { relu_span(e - b, x + b, y + b); });
}

template <typename T>
void relu_backward(size_t count, const T* y, const T* dy, T* dx) {
  parallel_elementwise(count, 1, [y, dy, dx](size_t b, size_t e) { relu_backward_span(e - b, y + b, dy + b, dx + b); });
}

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

template <typename T>
void maxpool_forward(int n, int c, int h, int w, const T* x, T* y, int32_t* argmax) {
  const int oh = conv_out(h, 3, 2, true), ow = conv_out(w, 3, 2, true);
  const int pt = same_pad_before(h, 3, 2), pl = same_pad_before(w, 3, 2);
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
  const int oh = conv_out(h, 3, 2, true), ow = conv_out(w, 3, 2, true);
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
void l2norm_forward(int rows, int dim, const T* x, T* y, double eps) {
  for (int r = 0; r < rows; ++r) {
    double s = 0;
    for (int j = 0; j < dim; ++j)
      s += static_cast<double>(x[static_cast<size_t>(r) * dim + j]) * x[static_cast<size_t>(r) * dim + j];
    const double inv = 1.0 / std::sqrt(std::max(s, eps));
    for (int j = 0; j < dim; ++j)
      y[static_cast<size_t>(r) * dim + j] = static_cast<T>(x[static_cast<size_t>(r) * dim + j] * inv);
  }
}

template <typename T>
void l2norm_backward(int rows, int dim, const T* x, const T* y, const T* dy, T* dx, double eps) {
  for (int r = 0; r < rows; ++r) {
    const size_t at = static_cast<size_t>(r) * dim;
    double s = 0, yd = 0;
    for (int j = 0; j < dim; ++j) {
      s += static_cast<double>(x[at + j]) * x[at + j];
      yd += static_cast<double>(y[at + j]) * dy[at + j];
    }
    const double inv = 1.0 / std::sqrt(std::max(s, eps));
    const bool clamped = s < eps;  // the norm is the constant sqrt(eps): no projection term
    for (int j = 0; j < dim; ++j)
      dx[at + j] = static_cast<T>(clamped ? dy[at + j] * inv : (dy[at + j] - y[at + j] * yd) * inv);
  }
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

namespace {

// In double per element (as before, so a resumed run continues bit-exactly
// across versions), vectorised: restrict pointers of their own.
ENGINE_HOT void adam_span(size_t count, float* __restrict w, const float* __restrict g, float* __restrict m,
                          float* __restrict v, double step, double beta1, double beta2, double eps, double wd) {
  for (size_t j = 0; j < count; ++j) {
    const double gj = g[j] + wd * w[j];
    m[j] = static_cast<float>(beta1 * m[j] + (1 - beta1) * gj);
    v[j] = static_cast<float>(beta2 * v[j] + (1 - beta2) * gj * gj);
    w[j] = static_cast<float>(w[j] - step * m[j] / (std::sqrt(static_cast<double>(v[j])) + eps));
  }
}

ENGINE_HOT void sgd_span(size_t count, float* __restrict w, const float* __restrict g, float* __restrict m, double lr,
                         double momentum, double wd, bool nesterov) {
  for (size_t j = 0; j < count; ++j) {
    const double gj = g[j] + wd * w[j];
    m[j] = static_cast<float>(momentum * m[j] + gj);
    w[j] = static_cast<float>(w[j] - lr * (nesterov ? gj + momentum * m[j] : m[j]));
  }
}

}  // namespace

namespace {

// x - x is 0 for finite x and NaN otherwise; the lanes keep their own sums.
ENGINE_HOT bool finite_span(size_t count, const float* __restrict x) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (size_t i = 0; i < count; ++i) acc += x[i] - x[i];
  return acc == 0.f;
}

}  // namespace

void fill_zero(size_t count, float* y) {
  parallel_elementwise(count, 1, [y](size_t b, size_t e) { std::memset(y + b, 0, (e - b) * sizeof(float)); });
}

bool all_finite(size_t count, const float* x) {
  std::atomic<bool> ok{true};
  parallel_elementwise(count, 1, [x, &ok](size_t b, size_t e) {
    if (!finite_span(e - b, x + b)) ok = false;
  });
  return ok;
}

void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                 double eps, double weight_decay) {
  parallel_elementwise(count, 4, [=](size_t b, size_t e) {
    adam_span(e - b, w + b, g + b, m + b, v + b, step, beta1, beta2, eps, weight_decay);
  });
}

void sgd_momentum_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                         double weight_decay, bool nesterov) {
  parallel_elementwise(count, 3, [=](size_t b, size_t e) {
    sgd_span(e - b, w + b, g + b, m + b, lr, momentum, weight_decay, nesterov);
  });
}

#define INSTANTIATE(T)                                                                                                 \
  template void gemm<T>(bool, bool, int, int, int, const T*, const T*, T*, bool);                                      \
  template void conv_forward<T>(const ConvShape&, const T*, const T*, T*, std::vector<T>&);                            \
  template void conv_backward<T>(const ConvShape&, const T*, const T*, const T*, T*, T*, std::vector<T>&);             \
  template void batchnorm_forward_train<T>(int, int, int, const T*, const T*, const T*, T*, T*, T*, T*, T*, double,    \
                                           double, bool);                                                              \
  template void batchnorm_forward_eval<T>(int, int, int, const T*, const T*, const T*, const T*, const T*, T*, double, \
                                          bool);                                                                       \
  template void batchnorm_backward<T>(int, int, int, const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                      const T*);                                                                       \
  template void add_forward<T>(size_t, const T*, const T*, T*);                                                        \
  template void add_into<T>(size_t, const T*, T*);                                                                     \
  template void relu_forward<T>(size_t, const T*, T*);                                                                 \
  template void relu_backward<T>(size_t, const T*, const T*, T*);                                                      \
  template void maxpool_forward<T>(int, int, int, int, const T*, T*, int32_t*);                                        \
  template void maxpool_backward<T>(int, int, int, int, const int32_t*, const T*, T*);                                 \
  template void gap_forward<T>(int, int, int, const T*, T*);                                                           \
  template void gap_backward<T>(int, int, int, const T*, T*);                                                          \
  template void dense_forward<T>(int, int, int, const T*, const T*, const T*, T*);                                     \
  template void dense_backward<T>(int, int, int, const T*, const T*, const T*, T*, T*, T*);                            \
  template void l2norm_forward<T>(int, int, const T*, T*, double);                                                     \
  template void l2norm_backward<T>(int, int, const T*, const T*, const T*, T*, double);                                \
  template double softmax_ce_forward<T>(int, int, const T*, const int32_t*, const T*, T*, double*);                    \
  template void softmax_ce_backward<T>(int, int, const T*, const int32_t*, const T*, double, T*);

INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace adcorre::engine
