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
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
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

const char* gemm_bf16_kernel() { return "emulated"; }

bool bf16_is_native() { return gemm_bf16_kernel()[0] != 'e'; }

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
