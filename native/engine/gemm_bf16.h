// bf16 numerics for the GEMM (gemm_bf16.cpp): the rounding, the precision a
// thread's GEMMs run in, what the CPU offers for bf16, and the reference the
// tests compare with.
//
// Design note. In Precision::Bf16 a GEMM's operands are rounded to bf16
// (round-to-nearest-even) and the products accumulated in fp32: the semantics
// of AVX512-BF16's vdpbf16ps. The packed GEMM (gemm_cpu.cpp) rounds its A
// panels and B strips right after packing them (still fp32, holding
// bf16-representable values), so the same fp32 micro-kernels compute exactly
// "bf16 inputs, fp32 accumulation" on AVX2, AVX-512 and the portable loops
// alike: the accuracy of bf16 training can be measured on any machine, only
// its speed needs the instruction.
//
// The precision is the calling thread's (ScopedGemmPrecision), set by the CPU
// backend around its GEMM-based ops (convolutions other than depthwise, dense
// layers, forward and backward), so ops.h keeps its signatures and the double
// instantiations (the finite-difference tests) never see it. A GEMM reads it
// once, on the calling thread, before it splits work over the pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gemm_cpu.h"
#include "precision.h"

namespace adcorre::engine {

// fp32 -> bf16 bits, round-to-nearest-even; NaN stays NaN (quiet, sign kept),
// +-Inf stays +-Inf, finite values past bf16's largest round to +-Inf.
inline uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u | 0x00400000u) >> 16);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
// x rounded to the nearest bf16 value (ties to even), as a float.
inline float bf16_round(float x) { return bf16_to_float(bf16_bits(x)); }

// x[i] = bf16_round(x[i]) for count values (AVX2 where the CPU has it; the same results).
void bf16_round_span(float* x, size_t count);

// The precision of this thread's float GEMMs (Fp32 unless a scope says otherwise).
Precision gemm_precision();

// Sets this thread's GEMM precision for its lifetime, restoring the previous one after.
class ScopedGemmPrecision {
 public:
  explicit ScopedGemmPrecision(Precision p);
  ~ScopedGemmPrecision();
  ScopedGemmPrecision(const ScopedGemmPrecision&) = delete;
  ScopedGemmPrecision& operator=(const ScopedGemmPrecision&) = delete;

 private:
  Precision previous_;
};

// What this CPU reports: AVX512-BF16 (vdpbf16ps), AMX-BF16 (tiles).
bool cpu_has_avx512bf16();
bool cpu_has_amx_bf16();
// Whether bf16 compute pays here: the CPU has bf16 multiply-add instructions.
inline bool cpu_has_bf16() { return cpu_has_avx512bf16() || cpu_has_amx_bf16(); }

// The kernel Precision::Bf16 runs on this CPU: "emulated" (the fp32 kernels on
// bf16-rounded panels; no bf16 kernel of its own yet, see native/KERNELS.md).
const char* gemm_bf16_kernel();

// Whether Precision::Bf16 runs a kernel faster than fp32 here: what 'auto' picks bf16 on.
bool bf16_is_native();

// The tests' reference: C = (accumulate ? C : 0) + bf16(A) * bf16(B), every
// operand rounded by bf16_round and the products summed in double, each
// operand read through its layout (gemm_cpu.h).
void gemm_bf16_reference(int M, int N, int K, MatrixLayout a, const float* A, MatrixLayout b, const float* B,
                         MatrixLayout c, float* C, bool accumulate);

}  // namespace adcorre::engine
