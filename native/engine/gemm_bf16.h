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
// its speed needs the instruction. Where the CPU has AVX512-BF16 (and the
// AVX-512 GEMM is chosen) the packed blocks become bf16 pairs along K
// ([k / 2][width][2]) and a vdpbf16ps kernel computes the same 6 x 32 tiles;
// bf16_kernel_reference is that kernel in plain C++, which the tests run
// through the same driver on every machine (ADCORRE_BF16_KERNEL=reference).
// AMX-BF16 tiles: future work (native/KERNELS.md).
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

// The kernel Precision::Bf16 runs on this CPU: "avx512bf16" (vdpbf16ps on
// panels packed as bf16 pairs, where the CPU has it and the AVX-512 GEMM is
// chosen), "reference" (ADCORRE_BF16_KERNEL=reference: the pair path through
// the plain C++ tile kernel, for tests), else "emulated" (the fp32 kernels on
// bf16-rounded panels).
const char* gemm_bf16_kernel();

// Whether Precision::Bf16 runs a kernel faster than fp32 here: what 'auto' picks bf16 on.
bool bf16_is_native();

// ---- The AVX512-BF16 path (gemm_cpu.cpp's driver runs it where gemm_bf16_kernel() is "avx512bf16").
// A K block of a packed panel (fp32 [kc][width], as gemm_cpu.cpp packs them:
// width 6 for A, 32 for B) as bf16 pairs along K, [ceil(kc / 2)][width][2],
// each value rounded by bf16_bits; an odd kc's last pair has a zero second half.
constexpr int kBf16TileRows = 6, kBf16TileCols = 32;
void bf16_pairs(const float* panel, int kc, int width, uint16_t* out);
// The 6 x 32 tile C (row stride ldc) = (overwrite ? 0 : C) + A * B over a K block of kc, from an
// A panel and a B strip in bf16 pairs.
using Bf16Kernel = void (*)(int kc, const uint16_t* a, const uint16_t* b, float* C, int ldc, bool overwrite);
// The AVX512-BF16 kernel (_mm512_dpbf16_ps) where the CPU has the instruction, else null.
Bf16Kernel bf16_simd_kernel();
// The tile kernel the packed GEMM runs bf16 pairs through, given its fp32 kernel's strip width: the
// AVX512-BF16 one beside the AVX-512 kernel (32 columns), else null (the rounded fp32 panels serve).
// ADCORRE_BF16_KERNEL=reference (tests) picks bf16_kernel_reference on any CPU, so the pair path of
// the GEMM's driver runs on every machine.
Bf16Kernel bf16_pairs_kernel(int f32_strip_cols);
// The same tile in plain C++, fp32 accumulation in vdpbf16ps' order: the readable version and the tests' check.
void bf16_kernel_reference(int kc, const uint16_t* a, const uint16_t* b, float* C, int ldc, bool overwrite);

// The tests' reference: C = (accumulate ? C : 0) + bf16(A) * bf16(B), every
// operand rounded by bf16_round and the products summed in double, each
// operand read through its layout (gemm_cpu.h).
void gemm_bf16_reference(int M, int N, int K, MatrixLayout a, const float* A, MatrixLayout b, const float* B,
                         MatrixLayout c, float* C, bool accumulate);

}  // namespace adcorre::engine
