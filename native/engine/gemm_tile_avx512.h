// The end of a 6 x 32 AVX-512 micro-kernel: its tile of C, held in 12 zmm
// accumulators, written to (or added into) C with row stride ldc. Shared by
// gemm_cpu.cpp's fp32 kernel and gemm_bf16.cpp's AVX512-BF16 one; x86-64 only.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace adcorre::engine {

__attribute__((target("avx512f"), always_inline)) inline void store_tile_6x32(const __m512 (&acc)[6][2], float* C,
                                                                              int ldc, bool overwrite) {
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    float* c = C + static_cast<size_t>(r) * ldc;
    if (overwrite) {
      _mm512_storeu_ps(c, acc[r][0]);
      _mm512_storeu_ps(c + 16, acc[r][1]);
    } else {
      _mm512_storeu_ps(c, _mm512_add_ps(_mm512_loadu_ps(c), acc[r][0]));
      _mm512_storeu_ps(c + 16, _mm512_add_ps(_mm512_loadu_ps(c + 16), acc[r][1]));
    }
  }
}

}  // namespace adcorre::engine
