// The GEMM of ops.h (C = op(A) op(B), row-major), which every convolution and
// dense layer runs. Design note: in float it hands over to gemm_cpu.cpp's
// packed SIMD GEMM where the CPU has AVX2 or AVX-512; the portable path here
// (4 x 16 register tiles, transposed operands copied row-major first) serves
// double (the finite-difference tests) and older CPUs. In bf16 precision
// (gemm_bf16.h) its float operands are copied rounded to bf16 first.
#include "ops_cpu_internal.h"

#include <type_traits>

#include "../common/scratch.h"
#include "gemm_bf16.h"
#include "gemm_cpu.h"

namespace adcorre::engine {

namespace {

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

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, int M, int N, int K, const T* A, const T* B, T* C, bool accumulate) {
  if constexpr (std::is_same_v<T, float>)
    if (gemm_f32_packed(trans_a, trans_b, M, N, K, A, B, C, accumulate)) return;
  // The portable path (double for the finite-difference tests, and CPUs without AVX2):
  // Transposed operands are copied into row-major form first: simple, and the
  // copies are small next to the O(MNK) product.
  bool bf16 = false;
  if constexpr (std::is_same_v<T, float>) bf16 = gemm_precision() == Precision::Bf16;
  // op(X) (rows x cols) as a row-major copy in scratch slot `slot`, rounded to bf16 in bf16 precision
  const auto operand = [bf16](bool trans, int rows, int cols, const T* X, int slot) -> const T* {
    if (!trans && !bf16) return X;
    auto& copy = scratch_buffer<T>(slot);
    const size_t count = static_cast<size_t>(rows) * cols;
    ensure_size(copy, count);
    if (trans)
      transpose(cols, rows, X, copy.data());
    else
      std::copy(X, X + count, copy.data());
    if constexpr (std::is_same_v<T, float>)
      if (bf16) bf16_round_span(copy.data(), count);
    return copy.data();
  };
  A = operand(trans_a, M, K, A, 0);
  B = operand(trans_b, K, N, B, 1);
  if (!accumulate) std::fill(C, C + static_cast<size_t>(M) * N, T(0));
  const size_t work = static_cast<size_t>(N) * K;
  pool().parallel_for(
      static_cast<size_t>(M), std::max<size_t>(1, (size_t(1) << 16) / std::max<size_t>(work, 1)),
      [&](size_t b, size_t e) { gemm_nn_rows(static_cast<int>(b), static_cast<int>(e), N, K, A, B, C); });
}

#define INSTANTIATE(T) template void gemm<T>(bool, bool, int, int, int, const T*, const T*, T*, bool);

INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace adcorre::engine
