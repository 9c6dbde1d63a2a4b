// The float GEMM with SIMD micro-kernels (gemm_cpu.cpp), behind ops.h's gemm<float>.
#pragma once

#include <cstddef>

namespace adcorre::engine {

// Where element (r, c) of a logical matrix lives:
//   (r / row_block) * row_block_stride + (r % row_block) * row_stride
//   + (c / col_block) * col_block_stride + (c % col_block) * col_stride.
// Blocks let one GEMM read and write a batch in NCHW as a [channels][n * plane]
// matrix, with no packing pass to channel-major and back.
struct MatrixLayout {
  int row_block;
  size_t row_stride, row_block_stride;
  int col_block;
  size_t col_stride, col_block_stride;

  static MatrixLayout row_major(int rows, int cols);     // stored [rows][cols]
  static MatrixLayout column_major(int rows, int cols);  // stored [cols][rows]
  // NCHW [n][c][plane] read as [c][n * plane], and as its transpose [n * plane][c]
  static MatrixLayout nchw_channels_by_pixels(int c, int plane);
  static MatrixLayout nchw_pixels_by_channels(int c, int plane);
};

// C (M x N) = (accumulate ? C : 0) + A (M x K) * B (K x N), each in its layout.
// Returns false, touching nothing, where this CPU has neither AVX2 + FMA nor AVX-512.
bool gemm_f32_layout(int M, int N, int K, MatrixLayout a, const float* A, MatrixLayout b, const float* B,
                     MatrixLayout c, float* C, bool accumulate);

// C[M][N] = (accumulate ? C : 0) + op(A) * op(B), as gemm() in ops.h (row-major, transposes as stored).
bool gemm_f32_packed(bool trans_a, bool trans_b, int M, int N, int K, const float* A, const float* B, float* C,
                     bool accumulate);

// "avx512", "avx2" or "portable": the kernel gemm<float> runs on this CPU.
const char* gemm_f32_isa();

// Whether gemm_f32_layout runs here (a SIMD kernel was chosen).
inline bool chosen_gemm_is_simd() { return gemm_f32_isa()[0] == 'a'; }

}  // namespace adcorre::engine
