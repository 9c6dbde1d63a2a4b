// bf16 numerics of the GEMM (gemm_bf16.h): the rounding pass over packed
// panels, the thread's precision, the CPU's bf16 features and the tests'
// reference GEMM.
//
// Design note. bf16 is fp32's upper 16 bits: rounding to nearest even adds
// 0x7fff plus the lowest kept bit, then drops the low half; a NaN gets its
// quiet bit set first, so that a payload only in the dropped half cannot turn
// it into an infinity. bf16_round_span is the readable scalar loop and its
// AVX2 twin (eight lanes of the same integer steps, NaN lanes selected by an
// unordered compare), which must agree bit for bit (bf16_test.cpp checks).
#include "gemm_bf16.h"

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "gemm_tile_avx512.h"
#define ADCORRE_BF16_X86 1
#endif

namespace adcorre::engine {

const char* precision_name(Precision p) { return p == Precision::Bf16 ? "bf16" : "fp32"; }

Precision resolve_precision(const std::string& requested, int device) {
  if (requested == "fp32") return Precision::Fp32;
  if (requested == "auto") return device < 0 && bf16_is_native() ? Precision::Bf16 : Precision::Fp32;
  if (requested != "bf16")
    throw std::invalid_argument("Expected precision 'fp32', 'bf16' or 'auto' but received '" + requested + "'");
  if (device >= 0)
    throw std::invalid_argument("Expected precision 'fp32' or 'auto' on cuda:" + std::to_string(device) +
                                " (bf16 runs on the CPU only for now) but received 'bf16'");
  return Precision::Bf16;
}

namespace {

thread_local Precision thread_precision = Precision::Fp32;

void bf16_round_scalar(float* x, size_t count) {
  for (size_t i = 0; i < count; ++i) x[i] = bf16_round(x[i]);
}

#ifdef ADCORRE_BF16_X86
__attribute__((target("avx2"))) void bf16_round_avx2(float* x, size_t count) {
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff),
                high = _mm256_set1_epi32(static_cast<int>(0xffff0000u)), quiet = _mm256_set1_epi32(0x00400000);
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    const __m256i rounded = _mm256_add_epi32(u, _mm256_add_epi32(bias, lsb));
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i r = _mm256_blendv_epi8(rounded, _mm256_or_si256(u, quiet), nan);
    _mm256_storeu_ps(x + i, _mm256_castsi256_ps(_mm256_and_si256(r, high)));
  }
  bf16_round_scalar(x + i, count - i);
}

bool cpu_supports(const char* feature) {
  __builtin_cpu_init();
  // __builtin_cpu_supports takes a literal: one branch per feature asked for
  if (std::strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
  if (std::strcmp(feature, "avx512f") == 0) return __builtin_cpu_supports("avx512f");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  if (std::strcmp(feature, "avx512bf16") == 0) return __builtin_cpu_supports("avx512bf16");
  if (std::strcmp(feature, "amx-bf16") == 0) return __builtin_cpu_supports("amx-bf16");
#endif
  return false;
}
#endif

}  // namespace

void bf16_round_span(float* x, size_t count) {
#ifdef ADCORRE_BF16_X86
  static const bool avx2 = cpu_supports("avx2");
  if (avx2) return bf16_round_avx2(x, count);
#endif
  bf16_round_scalar(x, count);
}

Precision gemm_precision() { return thread_precision; }

ScopedGemmPrecision::ScopedGemmPrecision(Precision p) : previous_(thread_precision) { thread_precision = p; }
ScopedGemmPrecision::~ScopedGemmPrecision() { thread_precision = previous_; }

bool cpu_has_avx512bf16() {
#ifdef ADCORRE_BF16_X86
  static const bool has = cpu_supports("avx512bf16");
  return has;
#else
  return false;
#endif
}

bool cpu_has_amx_bf16() {
#ifdef ADCORRE_BF16_X86
  static const bool has = cpu_supports("amx-bf16");
  return has;
#else
  return false;
#endif
}

// vdpbf16ps accumulates the pair (2i, 2i + 1) of each 32-bit lane into it: with A's pair broadcast and
// B's pairs per column, lane j gains a[k] b[k][j] + a[k + 1] b[k + 1][j]. Products of two bf16 values are
// exact in fp32, so each step is one rounding; the instruction treats bf16 subnormals as zero (DAZ), the
// emulated path keeps them (below 1.2e-38: nothing a network's sums notice).
void bf16_kernel_reference(int kc, const uint16_t* a, const uint16_t* b, float* C, int ldc, bool overwrite) {
  constexpr int MR = kBf16TileRows, NR = kBf16TileCols;
  float acc[MR][NR] = {};
  for (int kk = 0; kk < (kc + 1) / 2; ++kk)
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) {
        const uint16_t* ap = a + (static_cast<size_t>(kk) * MR + r) * 2;
        const uint16_t* bp = b + (static_cast<size_t>(kk) * NR + j) * 2;
        acc[r][j] = std::fma(bf16_to_float(ap[1]), bf16_to_float(bp[1]), acc[r][j]);
        acc[r][j] = std::fma(bf16_to_float(ap[0]), bf16_to_float(bp[0]), acc[r][j]);
      }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NR; ++j) {
      float& c = C[static_cast<size_t>(r) * ldc + j];
      c = overwrite ? acc[r][j] : c + acc[r][j];
    }
}

void bf16_pairs(const float* panel, int kc, int width, uint16_t* out) {
  for (int k = 0; k < kc; ++k)
    for (int i = 0; i < width; ++i)
      out[(static_cast<size_t>(k / 2) * width + i) * 2 + (k & 1)] =
          bf16_bits(panel[static_cast<size_t>(k) * width + i]);
  if (kc & 1)
    for (int i = 0; i < width; ++i) out[(static_cast<size_t>(kc / 2) * width + i) * 2 + 1] = 0;
}

#if defined(ADCORRE_BF16_X86) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define ADCORRE_AVX512BF16_KERNEL 1
namespace {

// 6 x 32 tile in 12 zmm accumulators, as gemm_cpu.cpp's AVX-512 kernel; per pair of k: two B loads (32
// columns x 2), six 32-bit broadcasts of A's pairs, twelve vdpbf16ps (each two multiply-adds per lane).
__attribute__((target("avx512f,avx512bf16"))) void kernel_avx512bf16(int kc, const uint16_t* a, const uint16_t* b,
                                                                     float* C, int ldc, bool overwrite) {
  constexpr int MR = kBf16TileRows, NR = kBf16TileCols;
  __m512 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int kk = 0; kk < (kc + 1) / 2; ++kk) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b), b1 = (__m512bh)_mm512_loadu_si512(b + NR);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      uint32_t pair;
      std::memcpy(&pair, a + 2 * r, sizeof pair);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(pair));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
    }
    a += 2 * MR;
    b += 2 * NR;
  }
  store_tile_6x32(acc, C, ldc, overwrite);
}

}  // namespace
#endif

Bf16Kernel bf16_simd_kernel() {
#ifdef ADCORRE_AVX512BF16_KERNEL
  if (cpu_has_avx512bf16() && cpu_supports("avx512f")) return kernel_avx512bf16;
#endif
  return nullptr;
}

namespace {
bool reference_kernel_asked() {
  static const bool asked = [] {
    const char* v = std::getenv("ADCORRE_BF16_KERNEL");
    return v && std::strcmp(v, "reference") == 0;
  }();
  return asked;
}
}  // namespace

// The AVX512-BF16 kernel's strips are the AVX-512 GEMM's (32 columns): it runs only where that is chosen
// (ADCORRE_GEMM=avx2 or portable cap it, and the emulated path runs there).
Bf16Kernel bf16_pairs_kernel(int f32_strip_cols) {
  if (f32_strip_cols <= 0) return nullptr;  // the portable GEMM: no packing
  if (reference_kernel_asked()) return bf16_kernel_reference;
  return f32_strip_cols == kBf16TileCols ? bf16_simd_kernel() : nullptr;
}

const char* gemm_bf16_kernel() {
  static const char* const kernel = [] {
    const int strip_cols = std::strcmp(gemm_f32_isa(), "avx512") == 0 ? 32
                           : std::strcmp(gemm_f32_isa(), "avx2") == 0 ? 16
                                                                      : 0;
    const Bf16Kernel k = bf16_pairs_kernel(strip_cols);
    return k == nullptr ? "emulated" : k == bf16_kernel_reference ? "reference" : "avx512bf16";
  }();
  return kernel;
}

bool bf16_is_native() { return std::strcmp(gemm_bf16_kernel(), "avx512bf16") == 0; }

namespace {

size_t element(const MatrixLayout& l, int r, int c) {
  return static_cast<size_t>(r / l.row_block) * l.row_block_stride +
         static_cast<size_t>(r % l.row_block) * l.row_stride +
         static_cast<size_t>(c / l.col_block) * l.col_block_stride +
         static_cast<size_t>(c % l.col_block) * l.col_stride;
}

}  // namespace

void gemm_bf16_reference(int M, int N, int K, MatrixLayout la, const float* A, MatrixLayout lb, const float* B,
                         MatrixLayout lc, float* C, bool accumulate) {
  std::vector<double> a(static_cast<size_t>(M) * K), b(static_cast<size_t>(K) * N);
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k) a[static_cast<size_t>(i) * K + k] = bf16_round(A[element(la, i, k)]);
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < N; ++j) b[static_cast<size_t>(k) * N + j] = bf16_round(B[element(lb, k, j)]);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double sum = 0;
      for (int k = 0; k < K; ++k) sum += a[static_cast<size_t>(i) * K + k] * b[static_cast<size_t>(k) * N + j];
      float& c = C[element(lc, i, j)];
      c = static_cast<float>(accumulate ? c + sum : sum);
    }
}

}  // namespace adcorre::engine
