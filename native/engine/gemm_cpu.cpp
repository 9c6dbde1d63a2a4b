// Float GEMM of the CPU backend: packed panels and a register-blocked
// micro-kernel, BLIS-style. Design note:
// - C[M][N] (+)= op(A)[M][K] * op(B)[K][N]. Per (job, K block), A's rows are
//   packed into panels of MR rows ([panel][k][MR]), so the kernel broadcasts
//   MR consecutive floats per k, and B into strips of NR columns
//   ([strip][k][NR]). Packing reads any MatrixLayout (row-major, transposed,
//   a batch in NCHW; a transposed block through 8 x 8 register transposes),
//   so neither transposes nor channel-major copies need a pass of their own;
//   C is written through its layout too. A is packed once where every job
//   reads all of it (the forward products: A the weights); where jobs own
//   disjoint row groups (the weight gradients: A all of dY, tens of MiB) each
//   packs its panels per K block, kept in L2 instead of written out whole
//   and read back once per column strip.
// - The micro-kernel keeps an MR x NR tile of C in registers over a K block
//   (KC = 256): 6 x 16 in 12 AVX2 registers, 6 x 32 in 12 AVX-512 registers,
//   two vector loads and six broadcasts per k. C is written once per K block,
//   the first block overwrites when not accumulating (no zero fill).
// - Work is split over threads by (row group, column block), each thread
//   packing its own B block (KC x NCB floats, 512 KiB: L2-resident) and A block.
// - The instruction set is chosen at run time (__builtin_cpu_supports), so one
//   binary serves AVX2 and AVX-512 machines; without either, the caller falls
//   back to the portable templated GEMM in ops_cpu_gemm.cpp.
// - bf16 precision (gemm_bf16.h): each packed A block and B block is rounded
//   to bf16 in place right after packing (cache-hot), so the kernels below
//   compute bf16 inputs with fp32 accumulation, vdpbf16ps' numerics. Where
//   the CPU has AVX512-BF16 (and the AVX-512 kernel is chosen) the packed
//   blocks are converted to bf16 pairs along K instead and gemm_bf16.cpp's
//   vdpbf16ps kernel computes the same 6 x 32 tiles.
// Hand-written because the addon may not depend on a BLAS (prebuilt binaries
// must load anywhere, and the engine's GEMMs are small and many).
#include "gemm_cpu.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../common/scratch.h"
#include "../common/thread_pool.h"
#include "gemm_bf16.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "gemm_tile_avx512.h"
#define ADCORRE_GEMM_X86 1
#endif

namespace adcorre::engine {

#ifdef ADCORRE_GEMM_X86
namespace {

constexpr int MR = 6;     // rows of a register tile
constexpr int KC = 256;   // K block: one A panel (6 KiB) and one B strip stay in L1
constexpr int NCB = 512;  // columns of a B block per job

__attribute__((target("avx2,fma"))) void kernel_avx2(int kc, const float* a, const float* b, float* C, int ldc,
                                                     bool overwrite) {
  constexpr int NR = 16;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* c = C + static_cast<size_t>(r) * ldc;
    if (overwrite) {
      _mm256_storeu_ps(c, acc[r][0]);
      _mm256_storeu_ps(c + 8, acc[r][1]);
    } else {
      _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), acc[r][0]));
      _mm256_storeu_ps(c + 8, _mm256_add_ps(_mm256_loadu_ps(c + 8), acc[r][1]));
    }
  }
}

__attribute__((target("avx512f"))) void kernel_avx512(int kc, const float* a, const float* b, float* C, int ldc,
                                                      bool overwrite) {
  constexpr int NR = 32;
  __m512 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  store_tile_6x32(acc, C, ldc, overwrite);
}

// The full MR x NR tile of the product of a K block, written to (or added into) C with row stride ldc.
using Kernel = void (*)(int, const float*, const float*, float*, int, bool);

struct Isa {
  Kernel kernel;
  int nr;
  const char* name;
};

const Isa* chosen_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    // ADCORRE_GEMM=avx2 or =portable caps the choice (the tests run every kernel this CPU has).
    const char* cap = std::getenv("ADCORRE_GEMM");
    const std::string want = cap ? cap : "";
    if (want != "avx2" && want != "portable" && __builtin_cpu_supports("avx512f"))
      return Isa{kernel_avx512, 32, "avx512"};
    if (want != "portable" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      return Isa{kernel_avx2, 16, "avx2"};
    return Isa{nullptr, 0, "portable"};
  }();
  return isa.kernel ? &isa : nullptr;
}

// Offset of each of `count` consecutive indices from `first` along one axis of a layout.
void axis_offsets(int first, int count, int block, size_t block_stride, size_t stride, size_t* out) {
  int q = first / block, r = first % block;
  for (int i = 0; i < count; ++i) {
    out[i] = q * block_stride + r * stride;
    if (++r == block) r = 0, ++q;
  }
}

// The packing and scattering loops below run only where a SIMD kernel was
// chosen (AVX2 at least), so they are compiled for it too.
#define GEMM_MOVES __attribute__((target("avx2,fma")))

// Panels [p0, p1) of A (M x K), columns [k0, k0 + K), as [K][MR] each (from out), rows past M zero.
GEMM_MOVES void pack_a(const MatrixLayout& la, int M, int k0, int K, const float* A, int p0, int p1, float* out) {
  size_t col[KC];
  axis_offsets(k0, K, la.col_block, la.col_block_stride, la.col_stride, col);
  for (int p = p0; p < p1; ++p) {
    float* dst = out + static_cast<size_t>(p - p0) * K * MR;
    const int i0 = p * MR, rows = std::min(MR, M - i0);
    size_t row[MR];
    axis_offsets(i0, rows, la.row_block, la.row_block_stride, la.row_stride, row);
    const float* src[MR];
    for (int r = 0; r < MR; ++r) src[r] = A + row[r < rows ? r : 0];
    // k outer: the panel is written in order; MR read streams
    if (rows == MR) {
      for (int k = 0; k < K; ++k) {
        float* d = dst + static_cast<size_t>(k) * MR;
        const size_t at = col[k];
#pragma GCC unroll 6
        for (int r = 0; r < MR; ++r) d[r] = src[r][at];
      }
      continue;
    }
    for (int k = 0; k < K; ++k) {
      float* d = dst + static_cast<size_t>(k) * MR;
      const size_t at = col[k];
      for (int r = 0; r < MR; ++r) d[r] = r < rows ? src[r][at] : 0.0f;
    }
  }
}

// Consecutive columns [j0, j0 + cols) that are contiguous in memory (unit
// column stride, within one column block): the run's first column within the
// tile, its length and the offset of its first element. A strip of at most 64
// columns has at most 64 runs.
struct ColumnRun {
  int j, length;
  size_t at;
};

int column_runs(const MatrixLayout& l, int j0, int cols, ColumnRun* runs) {
  int count = 0;
  for (int j = 0; j < cols;) {
    const int in_block = (j0 + j) % l.col_block;
    const int length = l.col_stride == 1 ? std::min(cols - j, l.col_block - in_block) : 1;
    runs[count++] = {j, length,
                     static_cast<size_t>((j0 + j) / l.col_block) * l.col_block_stride + in_block * l.col_stride};
    j += length;
  }
  return count;
}

// out[r][c] (row stride ld) = in[c][r] for an 8 x 8 block whose column c starts at base + col[c].
GEMM_MOVES inline void transpose8x8(const float* base, const size_t* col, float* out, int ld) {
  __m256 r[8], t[8];
  for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(base + col[c]);
  for (int c = 0; c < 8; c += 2) {
    t[c] = _mm256_unpacklo_ps(r[c], r[c + 1]);
    t[c + 1] = _mm256_unpackhi_ps(r[c], r[c + 1]);
  }
  for (int c = 0; c < 8; c += 4) {
    r[c] = _mm256_shuffle_ps(t[c], t[c + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[c + 1] = _mm256_shuffle_ps(t[c], t[c + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[c + 2] = _mm256_shuffle_ps(t[c + 1], t[c + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[c + 3] = _mm256_shuffle_ps(t[c + 1], t[c + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // r[0..3]: rows 0, 1, 2, 3 of columns 0-3 in the low lanes and rows 4-7 in the high lanes; r[4..7] columns 4-7
  for (int q = 0; q < 4; ++q) {
    _mm256_storeu_ps(out + static_cast<size_t>(q) * ld, _mm256_permute2f128_ps(r[q], r[q + 4], 0x20));
    _mm256_storeu_ps(out + static_cast<size_t>(q + 4) * ld, _mm256_permute2f128_ps(r[q], r[q + 4], 0x31));
  }
}

// Rows [k0, k0 + kc) and columns [j0, j0 + nc) of B into strips of [kc][NR],
// columns past nc zero. Unit-stride columns are copied as runs (found once per
// strip); otherwise (a transposed operand) each column is read down its rows,
// which are then the contiguous direction.
GEMM_MOVES void pack_b(const MatrixLayout& lb, const float* B, int k0, int kc, int j0, int nc, int nr, float* out) {
  size_t row[KC], col[64];
  ColumnRun runs[64];
  axis_offsets(k0, kc, lb.row_block, lb.row_block_stride, lb.row_stride, row);
  for (int s = 0; s * nr < nc; ++s) {
    float* dst = out + static_cast<size_t>(s) * kc * nr;
    const int js = j0 + s * nr, cols = std::min(nr, nc - s * nr);
    if (lb.col_stride == 1) {
      const int nruns = column_runs(lb, js, cols, runs);
      for (int k = 0; k < kc; ++k) {
        const float* src = B + row[k];
        float* d = dst + static_cast<size_t>(k) * nr;
        for (int r = 0; r < nruns; ++r) {
          const float* from = src + runs[r].at;
          float* to = d + runs[r].j;
          for (int q = 0; q < runs[r].length; ++q) to[q] = from[q];  // at most NR floats: inline, not libc
        }
        for (int j = cols; j < nr; ++j) d[j] = 0;
      }
      continue;
    }
    axis_offsets(js, cols, lb.col_block, lb.col_block_stride, lb.col_stride, col);
    // 8 columns x 8 rows at a time through an in-register transpose where the 8 rows are
    // contiguous (the pixels of one plane): 8 loads and 8 stores instead of 64 strided ones
    int j8 = 0;
    for (; j8 + 8 <= cols; j8 += 8) {
      for (int k = 0; k < kc; k += 8) {
        if (k + 8 <= kc && row[k + 7] == row[k] + 7) {
          transpose8x8(B + row[k], col + j8, dst + static_cast<size_t>(k) * nr + j8, nr);
          continue;
        }
        for (int q = k; q < std::min(kc, k + 8); ++q)  // across a plane's end, or the block's last rows
          for (int j = j8; j < j8 + 8; ++j) dst[static_cast<size_t>(q) * nr + j] = B[col[j] + row[q]];
      }
    }
    for (int j = j8; j < nr; ++j) {
      if (j >= cols) {
        for (int k = 0; k < kc; ++k) dst[static_cast<size_t>(k) * nr + j] = 0;
        continue;
      }
      const float* src = B + col[j];
      for (int k = 0; k < kc; ++k) dst[static_cast<size_t>(k) * nr + j] = src[row[k]];
    }
  }
}

// Adds (or writes) a rows x cols tile into C at rows [i0, ...) and columns [j0, ...).
GEMM_MOVES void scatter_tile(const float* tile, int ld_tile, const MatrixLayout& lc, float* C, int i0, int rows, int j0,
                             int cols, bool overwrite) {
  size_t row[MR];
  ColumnRun runs[64];
  axis_offsets(i0, rows, lc.row_block, lc.row_block_stride, lc.row_stride, row);
  const int nruns = column_runs(lc, j0, cols, runs);
  for (int r = 0; r < rows; ++r) {
    const float* t = tile + static_cast<size_t>(r) * ld_tile;
    for (int u = 0; u < nruns; ++u) {
      float* c = C + row[r] + runs[u].at;
      const float* from = t + runs[u].j;
      if (overwrite)
        for (int q = 0; q < runs[u].length; ++q) c[q] = from[q];
      else
        for (int q = 0; q < runs[u].length; ++q) c[q] += from[q];
    }
  }
}

}  // namespace

const char* gemm_f32_isa() {
  const Isa* isa = chosen_isa();
  return isa ? isa->name : "portable";
}

MatrixLayout MatrixLayout::row_major(int rows, int cols) {
  return {rows, static_cast<size_t>(cols), static_cast<size_t>(rows) * cols, cols, 1, static_cast<size_t>(cols)};
}

MatrixLayout MatrixLayout::column_major(int rows, int cols) {
  return {rows, 1, static_cast<size_t>(rows), cols, static_cast<size_t>(rows), static_cast<size_t>(rows) * cols};
}

MatrixLayout MatrixLayout::nchw_channels_by_pixels(int c, int plane) {
  return {c, static_cast<size_t>(plane), static_cast<size_t>(c) * plane, plane, 1, static_cast<size_t>(c) * plane};
}

MatrixLayout MatrixLayout::nchw_pixels_by_channels(int c, int plane) {
  return {plane, 1, static_cast<size_t>(c) * plane, c, static_cast<size_t>(plane), static_cast<size_t>(plane) * c};
}

bool gemm_f32_layout(int M, int N, int K, MatrixLayout la, const float* A, MatrixLayout lb, const float* B,
                     MatrixLayout lc, float* C, bool accumulate) {
  const Isa* isa = chosen_isa();
  if (!isa) return false;
  if (M <= 0 || N <= 0) return true;
  ThreadPool& pool = ThreadPool::global();
  if (K <= 0) {
    if (!accumulate) {
      const std::vector<float> zeros(static_cast<size_t>(64) * MR, 0.0f);  // one 6 x 64 tile
      for (int i = 0; i < M; i += MR)
        for (int j = 0; j < N; j += 64)
          scatter_tile(zeros.data(), 64, lc, C, i, std::min(MR, M - i), j, std::min(64, N - j), true);
    }
    return true;
  }
  // read here, on the caller's thread (the precision is per thread), for the jobs
  const bool bf16 = gemm_precision() == Precision::Bf16;
  // bf16 pairs for a bf16 tile kernel (AVX512-BF16: the AVX-512 kernel's 6 x 32 tiles), else rounded fp32 panels
  const Bf16Kernel pairs_kernel = bf16 && MR == kBf16TileRows ? bf16_pairs_kernel(isa->nr) : nullptr;
  const int nr = pairs_kernel ? kBf16TileCols : isa->nr, panels = (M + MR - 1) / MR;
  // C's columns are unit-stride runs within blocks of lc.col_block: a tile
  // inside one block is stored in place, others through a scatter.
  const bool unit_cols = lc.col_stride == 1;

  // Jobs: column blocks, and when there are fewer of them than threads,
  // groups of A panels as well.
  const int threads = pool.size();
  // Column blocks of at most NCB, as many as a multiple of the threads (so
  // that each thread gets the same share), when there are enough strips.
  int col_blocks = (N + NCB - 1) / NCB, ncb = NCB;
  if (N > nr * threads) {
    col_blocks = (col_blocks + threads - 1) / threads * threads;
    ncb = ((N + col_blocks - 1) / col_blocks + nr - 1) / nr * nr;
    col_blocks = (N + ncb - 1) / ncb;
  }
  const int row_groups = col_blocks >= threads ? 1 : std::min(panels, threads);
  const size_t jobs = static_cast<size_t>(col_blocks) * row_groups;
  // A is packed once, before the jobs, where every job reads all of it (one row group, several
  // column blocks: the forward products, A the weights); else each job packs its own panels per
  // K block (the weight gradients, A all of dY: kept in L2 instead of written out whole)
  const int k_blocks = (K + KC - 1) / KC;
  const bool shared_a = row_groups == 1 && col_blocks > 1;
  thread_local std::vector<float> ap_shared;  // the caller's: engines on several JS threads each have their own
  thread_local std::vector<uint16_t> ap_shared16;
  float* const packed_a =
      shared_a ? (ensure_size(ap_shared, static_cast<size_t>(panels) * K * MR), ap_shared.data()) : nullptr;
  if (shared_a && pairs_kernel) ensure_size(ap_shared16, static_cast<size_t>(panels) * (K + 1) * MR);
  uint16_t* const packed_a16 = ap_shared16.data();  // (the jobs' threads have thread_locals of their own)
  if (shared_a)
    pool.parallel_for(static_cast<size_t>(k_blocks), 1, [&](size_t b, size_t e) {
      for (size_t kb = b; kb < e; ++kb) {
        const int k0 = static_cast<int>(kb) * KC;
        const int kc = std::min(KC, K - k0);
        float* const block = packed_a + static_cast<size_t>(k0) * panels * MR;
        pack_a(la, M, k0, kc, A, 0, panels, block);
        if (pairs_kernel)  // every block but the last is of an even KC: pairs start at the same offset
          for (int p = 0; p < panels; ++p)
            bf16_pairs(
                block + static_cast<size_t>(p) * kc * MR, kc, MR,
                packed_a16 + static_cast<size_t>(k0) * panels * MR + static_cast<size_t>(p) * ((kc + 1) / 2) * 2 * MR);
        else if (bf16)
          bf16_round_span(block, static_cast<size_t>(panels) * kc * MR);
      }
    });
  const double flops = 2.0 * M * N * K;
  pool.parallel_for(jobs, flops < 2e5 ? jobs : 1, [&](size_t b, size_t e) {
    thread_local std::vector<float> bp, ap;
    thread_local std::vector<uint16_t> bp16, ap16;
    const size_t strips = (std::min(N, ncb) + nr - 1) / nr;
    ensure_size(bp, static_cast<size_t>(KC) * strips * nr);
    if (pairs_kernel) ensure_size(bp16, static_cast<size_t>(KC) * strips * nr);
    alignas(64) float tile[MR * 32];
    for (size_t job = b; job < e; ++job) {
      const int cb = static_cast<int>(job % col_blocks), rg = static_cast<int>(job / col_blocks);
      const int j0 = cb * ncb, nc = std::min(ncb, N - j0);
      const int p0 = panels * rg / row_groups, p1 = panels * (rg + 1) / row_groups;
      if (!shared_a) ensure_size(ap, static_cast<size_t>(p1 - p0) * KC * MR);
      if (!shared_a && pairs_kernel) ensure_size(ap16, static_cast<size_t>(p1 - p0) * KC * MR);
      for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = std::min(KC, K - k0);
        pack_b(lb, B, k0, kc, j0, nc, nr, bp.data());
        if (!shared_a) pack_a(la, M, k0, kc, A, p0, p1, ap.data());
        const int kc2 = (kc + 1) / 2;  // pairs along K
        if (pairs_kernel) {
          for (int s = 0; s * nr < nc; ++s)
            bf16_pairs(bp.data() + static_cast<size_t>(s) * kc * nr, kc, nr,
                       bp16.data() + static_cast<size_t>(s) * kc2 * 2 * nr);
          if (!shared_a)
            for (int p = p0; p < p1; ++p)
              bf16_pairs(ap.data() + static_cast<size_t>(p - p0) * kc * MR, kc, MR,
                         ap16.data() + static_cast<size_t>(p - p0) * kc2 * 2 * MR);
        } else if (bf16) {
          bf16_round_span(bp.data(), static_cast<size_t>(kc) * ((nc + nr - 1) / nr) * nr);
          if (!shared_a) bf16_round_span(ap.data(), static_cast<size_t>(p1 - p0) * kc * MR);
        }
        const float* a_block = shared_a ? packed_a + static_cast<size_t>(k0) * panels * MR : ap.data();
        const uint16_t* a_block16 = shared_a ? packed_a16 + static_cast<size_t>(k0) * panels * MR : ap16.data();
        const bool overwrite = !accumulate && k0 == 0;
        for (int p = p0; p < p1; ++p) {
          const int i0 = p * MR, rows = std::min(MR, M - i0);
          const int pa = shared_a ? p : p - p0;
          const float* a = a_block + static_cast<size_t>(pa) * kc * MR;
          const uint16_t* a16 = pairs_kernel ? a_block16 + static_cast<size_t>(pa) * kc2 * 2 * MR : nullptr;
          for (int s = 0; s * nr < nc; ++s) {
            const int j = j0 + s * nr, cols = std::min(nr, nc - s * nr);
            const float* bs = bp.data() + static_cast<size_t>(s) * kc * nr;
            // the tile (row stride ldc) from the fp32 panels or the bf16 pairs
            const auto tile_kernel = [&](float* out, int ldc, bool over) {
              if (pairs_kernel)
                pairs_kernel(kc, a16, bp16.data() + static_cast<size_t>(s) * kc2 * 2 * nr, out, ldc, over);
              else
                isa->kernel(kc, a, bs, out, ldc, over);
            };
            const bool in_place = rows == MR && cols == nr && unit_cols && lc.row_block >= M &&
                                  j / lc.col_block == (j + nr - 1) / lc.col_block;
            if (in_place) {
              float* c = C + static_cast<size_t>(j / lc.col_block) * lc.col_block_stride + (j % lc.col_block) +
                         static_cast<size_t>(i0) * lc.row_stride;
              tile_kernel(c, static_cast<int>(lc.row_stride), overwrite);
            } else {
              tile_kernel(tile, nr, true);
              scatter_tile(tile, nr, lc, C, i0, rows, j, cols, overwrite);
            }
          }
        }
      }
    }
  });
  return true;
}

bool gemm_f32_packed(bool trans_a, bool trans_b, int M, int N, int K, const float* A, const float* B, float* C,
                     bool accumulate) {
  return gemm_f32_layout(M, N, K, trans_a ? MatrixLayout::column_major(M, K) : MatrixLayout::row_major(M, K), A,
                         trans_b ? MatrixLayout::column_major(K, N) : MatrixLayout::row_major(K, N), B,
                         MatrixLayout::row_major(M, N), C, accumulate);
}

#else  // not x86-64: the portable GEMM serves

const char* gemm_f32_isa() { return "portable"; }

bool gemm_f32_packed(bool, bool, int, int, int, const float*, const float*, float*, bool) { return false; }

bool gemm_f32_layout(int, int, int, MatrixLayout, const float*, MatrixLayout, const float*, MatrixLayout, float*,
                     bool) {
  return false;
}

#endif

}  // namespace adcorre::engine
