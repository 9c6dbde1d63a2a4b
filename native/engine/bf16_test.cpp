// Checks of the bf16 GEMM numerics (gemm_bf16.h), run by test/bf16.test.js
// once per float GEMM kernel this CPU has (ADCORRE_GEMM caps the choice):
// - bf16_round against hand-worked bit patterns (ties to even, rounding up
//   into the next exponent, subnormals, overflow to infinity, NaN kept NaN),
//   and the AVX2 rounding pass bit for bit against the scalar one;
// - the GEMM in bf16 precision (every transpose, the NCHW layouts the
//   convolutions use, odd sizes, tile / K-block / column-block edges) against
//   the reference on rounded inputs (tight: only the accumulation order
//   differs) and against the exact fp32-input product (loose: the bf16 bound,
//   and it must differ from it, or nothing was rounded);
// - the CPU backend's convolution and dense layer in bf16 equal the GEMM's
//   bf16 product (the precision reaches them), fp32 ones untouched;
// - the AVX512-BF16 path: its bf16-pair packing with the plain C++ tile kernel
//   everywhere, the vdpbf16ps kernel against the rounded-input reference where
//   the CPU has it (the GEMM tests above then run on it too), else skipped
//   with a message naming the flag.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend.h"
#include "gemm_bf16.h"
#include "ops.h"

using namespace adcorre::engine;

namespace {

int passed = 0, failed = 0;

void report(bool ok, const char* what, double value) {
  (ok ? passed : failed)++;
  std::printf("%s %s (%.2e)\n", ok ? "ok  " : "FAIL", what, value);
}

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

void check_rounding() {
  struct Case {
    uint32_t in;
    uint16_t out;
    const char* what;
  };
  const Case cases[] = {
      {0x3f800000, 0x3f80, "1.0 exact"},
      {0x3f807fff, 0x3f80, "just below half an ulp: down"},
      {0x3f808000, 0x3f80, "tie, kept bit even: down to even"},
      {0x3f808001, 0x3f81, "just above half an ulp: up"},
      {0x3f818000, 0x3f82, "tie, kept bit odd: up to even"},
      {0xbf808001, 0xbf81, "negative, above half: away from zero"},
      {0xbf818000, 0xbf82, "negative tie, odd: up to even"},
      {0x3fff8000, 0x4000, "tie at 1.9921875 + half: up into the next exponent (2.0)"},
      {0x3fffffff, 0x4000, "largest float below 2: up to 2.0"},
      {0x7f7f7fff, 0x7f7f, "below half under bf16's largest: its largest"},
      {0x7f7fffff, 0x7f80, "FLT_MAX: past bf16's largest, to +Inf"},
      {0xff7fffff, 0xff80, "-FLT_MAX: to -Inf"},
      {0x00000000, 0x0000, "+0"},
      {0x80000000, 0x8000, "-0 keeps its sign"},
      {0x00000001, 0x0000, "smallest subnormal: to +0"},
      {0x00008000, 0x0000, "subnormal tie, even: down to 0"},
      {0x00008001, 0x0001, "subnormal above half: up to bf16's smallest subnormal"},
      {0x00018000, 0x0002, "subnormal tie, odd: up to even"},
      {0x80008001, 0x8001, "negative subnormal above half"},
      {0x007fffff, 0x0080, "largest subnormal: up into the smallest normal"},
      {0x7f800000, 0x7f80, "+Inf"},
      {0xff800000, 0xff80, "-Inf"},
      {0x7fc00000, 0x7fc0, "quiet NaN"},
      {0x7f800001, 0x7fc0, "signalling NaN, payload only in the dropped half: still NaN (quiet)"},
      {0xff800001, 0xffc0, "negative NaN, low payload: still NaN, sign kept"},
      {0x7fffffff, 0x7fff, "NaN with every payload bit"},
  };
  std::vector<float> span;
  for (const Case& c : cases) {
    const uint16_t got = bf16_bits(from_bits(c.in));
    const bool nan_kept = !std::isnan(from_bits(c.in)) || std::isnan(bf16_round(from_bits(c.in)));
    (got == c.out && nan_kept ? passed : failed)++;
    std::printf("%s bf16_round 0x%08x -> 0x%04x (expected 0x%04x): %s\n", got == c.out && nan_kept ? "ok  " : "FAIL",
                c.in, got, c.out, c.what);
    span.push_back(from_bits(c.in));
  }
  // the rounding pass (AVX2 where the CPU has it, 8 lanes plus a scalar tail) bit for bit against
  // bf16_bits: the cases above, then random bit patterns of every exponent (NaNs and Infs included)
  std::mt19937 gen(3);
  for (int i = 0; i < 100003; ++i) span.push_back(from_bits(gen()));
  std::vector<float> rounded = span;
  bf16_round_span(rounded.data(), rounded.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < span.size(); ++i)
    if (bits_of(rounded[i]) != static_cast<uint32_t>(bf16_bits(span[i])) << 16) ++mismatches;
  report(mismatches == 0, "bf16_round_span = bf16_bits on every value (mismatches)", static_cast<double>(mismatches));
}

std::vector<float> random_floats(size_t count, std::mt19937& gen) {
  std::normal_distribution<float> normal;
  std::vector<float> v(count);
  for (auto& x : v) x = normal(gen);
  return v;
}

size_t element(const MatrixLayout& l, int r, int c) {
  return static_cast<size_t>(r / l.row_block) * l.row_block_stride +
         static_cast<size_t>(r % l.row_block) * l.row_stride +
         static_cast<size_t>(c / l.col_block) * l.col_block_stride +
         static_cast<size_t>(c % l.col_block) * l.col_stride;
}

// The worst |C - reference| of the bf16 GEMM relative to sum |a||b| (+ |c0|),
// against the reference on rounded inputs (tight) and the exact product of the
// fp32 inputs (loose).
struct Errors {
  double vs_rounded = 0, vs_fp32 = 0;
};

Errors compare(int M, int N, int K, MatrixLayout la, const std::vector<float>& A, MatrixLayout lb,
               const std::vector<float>& B, MatrixLayout lc, const std::vector<float>& C0, const std::vector<float>& C,
               bool acc) {
  std::vector<float> ref = C0;
  gemm_bf16_reference(M, N, K, la, A.data(), lb, B.data(), lc, ref.data(), acc);
  Errors e;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      const size_t at = element(lc, i, j);
      double exact = acc ? C0[at] : 0, mag = std::fabs(exact);
      for (int k = 0; k < K; ++k) {
        const double p = static_cast<double>(A[element(la, i, k)]) * B[element(lb, k, j)];
        exact += p;
        mag += std::fabs(p);
      }
      if (mag == 0) continue;
      e.vs_rounded = std::max(e.vs_rounded, std::fabs(ref[at] - C[at]) / mag);
      e.vs_fp32 = std::max(e.vs_fp32, std::fabs(exact - C[at]) / mag);
    }
  return e;
}

// Tolerances. Against the reference on the same rounded inputs only the fp32
// accumulation differs: O(K eps) of sum |a||b|, 1e-6 as the fp32 GEMM test.
// Against the exact product of the unrounded inputs each operand moves by at
// most 2^-8 relative (half an ulp of 8 significant bits), a product by
// 2^-7 + 2^-16: below 7.9e-3 of sum |a||b|. The rounding must show too: above
// 1e-5 (fp32 alone stays near 1e-7).
constexpr double kTight = 1e-6, kLoose = 7.9e-3, kMustDiffer = 1e-5;

void check_errors(const Errors& e, const char* what, bool expect_rounding) {
  const bool ok = e.vs_rounded < kTight && e.vs_fp32 < kLoose && (!expect_rounding || e.vs_fp32 > kMustDiffer);
  (ok ? passed : failed)++;
  std::printf("%s %s (vs rounded-input reference %.1e, vs fp32 inputs %.1e)\n", ok ? "ok  " : "FAIL", what,
              e.vs_rounded, e.vs_fp32);
}

void check_gemm() {
  // tile edges (6-row panels, 16/32-column strips), K blocks of 256, column blocks of 512 and the split over threads
  const int shapes[][3] = {{1, 1, 1},      {5, 7, 3},     {7, 33, 257},  {13, 275, 263},
                           {96, 1030, 96}, {24, 9, 1001}, {3, 2000, 17}, {41, 31, 601}};
  std::mt19937 gen(5);
  for (const auto& sh : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int acc = 0; acc < 2; ++acc) {
          const int M = sh[0], N = sh[1], K = sh[2];
          const auto A = random_floats(static_cast<size_t>(M) * K, gen),
                     B = random_floats(static_cast<size_t>(K) * N, gen),
                     C0 = random_floats(static_cast<size_t>(M) * N, gen);
          std::vector<float> C = C0;
          {
            const ScopedGemmPrecision bf16(Precision::Bf16);
            gemm<float>(ta, tb, M, N, K, A.data(), B.data(), C.data(), acc);
          }
          const auto la = ta ? MatrixLayout::column_major(M, K) : MatrixLayout::row_major(M, K);
          const auto lb = tb ? MatrixLayout::column_major(K, N) : MatrixLayout::row_major(K, N);
          char what[160];
          std::snprintf(what, sizeof what, "bf16 gemm %dx%dx%d trans_a=%d trans_b=%d accumulate=%d", M, N, K, ta, tb,
                        acc);
          // a single product of two normals may happen to be bf16-exact: the rounding must show from K >= 3
          check_errors(compare(M, N, K, la, A, lb, B, MatrixLayout::row_major(M, N), C0, C, acc), what, M * K > 2);
        }
  // the scope is over: fp32 again, as exact as the fp32 GEMM test asks
  const int M = 13, N = 275, K = 263;
  const auto A = random_floats(static_cast<size_t>(M) * K, gen), B = random_floats(static_cast<size_t>(K) * N, gen);
  std::vector<float> C(static_cast<size_t>(M) * N);
  gemm<float>(false, false, M, N, K, A.data(), B.data(), C.data(), false);
  const Errors e = compare(M, N, K, MatrixLayout::row_major(M, K), A, MatrixLayout::row_major(K, N), B,
                           MatrixLayout::row_major(M, N), C, C, false);
  report(gemm_precision() == Precision::Fp32 && e.vs_fp32 < kTight,
         "after the bf16 scope the gemm is fp32 again (error vs fp32 inputs)", e.vs_fp32);
}

// The products of the convolutions straight from NCHW (gemm_f32_layout: the SIMD kernels only).
void check_layouts() {
  if (!chosen_gemm_is_simd()) {
    std::printf("skip bf16 gemm from NCHW layouts: the portable GEMM has no layouts (kernel %s)\n", gemm_f32_isa());
    return;
  }
  using L = MatrixLayout;
  std::mt19937 gen(9);
  const int n = 5, c = 11, o = 13, plane = 23, NP = n * plane;  // odd channel counts and plane
  const auto x = random_floats(static_cast<size_t>(n) * c * plane, gen),
             w = random_floats(static_cast<size_t>(o) * c, gen),
             dy = random_floats(static_cast<size_t>(n) * o * plane, gen);
  const ScopedGemmPrecision bf16(Precision::Bf16);
  // C (M x N, of c_count floats in lc) (+)= A B through the layouts, against the references
  const auto check = [&](const char* what, int M, int N, int K, L la, const std::vector<float>& A, L lb,
                         const std::vector<float>& B, L lc, size_t c_count) {
    for (int acc = 0; acc < 2; ++acc) {
      const auto c0 = random_floats(c_count, gen);
      std::vector<float> out = c0;
      gemm_f32_layout(M, N, K, la, A.data(), lb, B.data(), lc, out.data(), acc);
      const std::string label = std::string("bf16 gemm NCHW ") + what + (acc ? " (accumulate)" : "");
      check_errors(compare(M, N, K, la, A, lb, B, lc, c0, out, acc), label.c_str(), true);
    }
  };
  // forward 1x1: Y[o][NP] = W[o][c] X[c][NP]
  check("forward", o, NP, c, L::row_major(o, c), w, L::nchw_channels_by_pixels(c, plane), x,
        L::nchw_channels_by_pixels(o, plane), static_cast<size_t>(n) * o * plane);
  // weight gradient: dW[o][c] = dY[o][NP] X[NP][c]
  check("weight gradient", o, c, NP, L::nchw_channels_by_pixels(o, plane), dy, L::nchw_pixels_by_channels(c, plane), x,
        L::row_major(o, c), static_cast<size_t>(o) * c);
  // input gradient: dX[c][NP] = W^T[c][o] dY[o][NP]
  check("input gradient", c, NP, o, L::column_major(c, o), w, L::nchw_channels_by_pixels(o, plane), dy,
        L::nchw_channels_by_pixels(c, plane), static_cast<size_t>(n) * c * plane);
}

// The CPU backend in bf16: its convolution (1x1 and 3x3 through im2col) and dense layer give what the
// ops give under a bf16 scope, bit for bit, and differ from its fp32 twin; depthwise is the same in both.
void check_backend() {
  auto fp32 = make_cpu_backend(Precision::Fp32), bf16 = make_cpu_backend(Precision::Bf16);
  report(bf16->precision() == Precision::Bf16 && fp32->precision() == Precision::Fp32,
         "make_cpu_backend keeps its precision", 0);
  std::mt19937 gen(13);
  struct ConvCase {
    int k, stride;
    bool depthwise;
    const char* what;
  } convs[] = {{1, 1, false, "1x1"}, {3, 2, false, "3x3 stride 2"}, {3, 1, true, "depthwise 3x3"}};
  for (const auto& cc : convs) {
    const int n = 3, c = 7, h = 9, w = 11, o = cc.depthwise ? c : 5;
    const ConvShape s = make_conv_shape(n, c, h, w, o, cc.k, cc.stride, true, cc.depthwise);
    const auto x = random_floats(static_cast<size_t>(n) * c * h * w, gen),
               wt = random_floats(static_cast<size_t>(o) * (cc.depthwise ? 1 : c) * cc.k * cc.k, gen),
               dy = random_floats(static_cast<size_t>(n) * o * s.oh * s.ow, gen);
    const size_t ny = dy.size(), nw = wt.size();
    std::vector<float> y32(ny), y16(ny), yops(ny), dx32(x.size()), dx16(x.size()), dw32(nw, 0.f), dw16(nw, 0.f);
    fp32->conv_forward(s, x.data(), wt.data(), y32.data(), nullptr);
    bf16->conv_forward(s, x.data(), wt.data(), y16.data(), nullptr);
    fp32->conv_backward(s, x.data(), wt.data(), dy.data(), dx32.data(), dw32.data(), nullptr);
    bf16->conv_backward(s, x.data(), wt.data(), dy.data(), dx16.data(), dw16.data(), nullptr);
    {
      std::vector<float> scratch;
      const ScopedGemmPrecision scope(Precision::Bf16);
      conv_forward<float>(s, x.data(), wt.data(), yops.data(), scratch);
    }
    const bool same_as_ops = std::memcmp(yops.data(), y16.data(), ny * sizeof(float)) == 0;
    const bool same_y = std::memcmp(y32.data(), y16.data(), ny * sizeof(float)) == 0,
               same_dx = std::memcmp(dx32.data(), dx16.data(), dx32.size() * sizeof(float)) == 0,
               same_dw = std::memcmp(dw32.data(), dw16.data(), nw * sizeof(float)) == 0;
    char what[160];
    std::snprintf(what, sizeof what, "cpu backend bf16 conv %s: %s", cc.what,
                  cc.depthwise ? "the same as fp32 (depthwise stays fp32)"
                               : "= conv_forward under a bf16 scope, and forward, dx, dW differ from fp32");
    report(cc.depthwise ? same_y && same_dx && same_dw : same_as_ops && !same_y && !same_dx && !same_dw, what, 0);
  }
  const int n = 5, in = 37, out = 9;
  const auto x = random_floats(static_cast<size_t>(n) * in, gen),
             wt = random_floats(static_cast<size_t>(out) * in, gen), bias = random_floats(out, gen),
             dy = random_floats(static_cast<size_t>(n) * out, gen);
  std::vector<float> y32(n * out), y16(n * out), dx32(n * in), dx16(n * in), dw32(out * in, 0.f), dw16(out * in, 0.f),
      db32(out, 0.f), db16(out, 0.f);
  fp32->dense_forward(n, in, out, x.data(), wt.data(), bias.data(), y32.data());
  bf16->dense_forward(n, in, out, x.data(), wt.data(), bias.data(), y16.data());
  fp32->dense_backward(n, in, out, x.data(), wt.data(), dy.data(), dx32.data(), dw32.data(), db32.data());
  bf16->dense_backward(n, in, out, x.data(), wt.data(), dy.data(), dx16.data(), dw16.data(), db16.data());
  double worst = 0;  // the bf16 forward against the rounded-input reference, bias added
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < out; ++j) {
      double sum = bias[j], mag = std::fabs(bias[j]);
      for (int k = 0; k < in; ++k) {
        const double p = static_cast<double>(bf16_round(x[i * in + k])) * bf16_round(wt[j * in + k]);
        sum += p;
        mag += std::fabs(p);
      }
      worst = std::max(worst, std::fabs(sum - y16[i * out + j]) / mag);
    }
  const bool differs = std::memcmp(y32.data(), y16.data(), y32.size() * sizeof(float)) != 0 &&
                       std::memcmp(dx32.data(), dx16.data(), dx32.size() * sizeof(float)) != 0 &&
                       std::memcmp(dw32.data(), dw16.data(), dw32.size() * sizeof(float)) != 0 &&
                       std::memcmp(db32.data(), db16.data(), db32.size() * sizeof(float)) == 0;
  report(worst < kTight && differs,
         "cpu backend bf16 dense: forward = rounded-input reference; y, dx, dW differ from fp32, dbias does not",
         worst);
}

// One K block of the pair layout: an A panel (6 rows) and a B strip (32 columns) packed as fp32 [kc][width],
// converted by bf16_pairs, multiplied by `kernel` into C (row stride 40, the tile's columns 0-31; overwrite and
// accumulate), against the double product of the bf16-rounded values. The worst error relative to sum |a||b|.
double pair_tile_error(Bf16Kernel kernel, int kc, bool overwrite, std::mt19937& gen) {
  constexpr int MR = kBf16TileRows, NR = kBf16TileCols, ldc = 40;
  const auto a = random_floats(static_cast<size_t>(kc) * MR, gen), b = random_floats(static_cast<size_t>(kc) * NR, gen);
  const auto c0 = random_floats(static_cast<size_t>(MR) * ldc, gen);
  std::vector<uint16_t> a16(static_cast<size_t>(kc + 1) * MR, 0xffff), b16(static_cast<size_t>(kc + 1) * NR, 0xffff);
  bf16_pairs(a.data(), kc, MR, a16.data());
  bf16_pairs(b.data(), kc, NR, b16.data());
  std::vector<float> c = c0;
  kernel(kc, a16.data(), b16.data(), c.data(), ldc, overwrite);
  double worst = 0;
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < ldc; ++j) {
      const float got = c[static_cast<size_t>(r) * ldc + j], was = c0[static_cast<size_t>(r) * ldc + j];
      if (j >= NR) {  // past the tile: untouched
        if (got != was) worst = 1;
        continue;
      }
      double sum = overwrite ? 0 : was, mag = std::fabs(sum);
      for (int k = 0; k < kc; ++k) {
        const double p = static_cast<double>(bf16_round(a[static_cast<size_t>(k) * MR + r])) *
                         bf16_round(b[static_cast<size_t>(k) * NR + j]);
        sum += p;
        mag += std::fabs(p);
      }
      worst = std::max(worst, std::fabs(sum - got) / mag);
    }
  return worst;
}

// The AVX512-BF16 path: its pair packing and the plain C++ tile kernel on every machine; the vdpbf16ps kernel
// (and, through check_gemm, the whole GEMM on it) where the CPU has the instruction, else skipped, saying so.
void check_avx512bf16_kernel() {
  std::mt19937 gen(17);
  const auto check_tiles = [&](Bf16Kernel kernel, const char* name) {
    for (const int kc : {1, 2, 7, 255, 256})  // odd K blocks end in a half-empty pair
      for (int overwrite = 0; overwrite < 2; ++overwrite) {
        char what[160];
        std::snprintf(what, sizeof what, "%s, K block %d, overwrite=%d", name, kc, overwrite);
        const double e = pair_tile_error(kernel, kc, overwrite, gen);
        report(e < kTight, what, e);
      }
  };
  check_tiles(bf16_kernel_reference, "bf16 pairs + reference tile kernel");
  const Bf16Kernel simd = bf16_simd_kernel();
  if (!simd) {
    std::printf("skip AVX512-BF16 kernel test: this CPU lacks avx512bf16 (bf16 runs the %s kernel here)\n",
                gemm_bf16_kernel());
    return;
  }
  check_tiles(simd, "AVX512-BF16 tile kernel");
  std::printf("%s the bf16 gemm tests above ran on the %s kernel\n",
              std::strcmp(gemm_bf16_kernel(), "avx512bf16") == 0 || std::strcmp(gemm_f32_isa(), "avx512") != 0 ? "ok  "
                                                                                                               : "FAIL",
              gemm_bf16_kernel());
}

}  // namespace

int main() {
  std::printf("float gemm kernel: %s; bf16 kernel: %s; cpu avx512bf16: %d, amx-bf16: %d\n", gemm_f32_isa(),
              gemm_bf16_kernel(), cpu_has_avx512bf16(), cpu_has_amx_bf16());
  check_rounding();
  check_gemm();
  check_layouts();
  check_backend();
  check_avx512bf16_kernel();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
