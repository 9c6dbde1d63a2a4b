// What the finite-difference tests' files share (ops_test.cpp runs them):
// random double inputs, check() (an op's backward against central
// differences of its forward) and report() (a direct comparison).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "gemm_cpu.h"
#include "ops.h"

namespace adcorre::engine::ops_test {

using Vec = std::vector<double>;

inline std::mt19937_64 rng(7);
inline Vec randn(size_t n, double scale = 1) {
  std::normal_distribution<double> nd(0, scale);
  Vec v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
inline double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

inline int passed = 0, failed = 0;

// loss(inputs) = <forward(inputs), r>; analytic(inputs, r) returns the gradient of each input.
inline void check(const std::string& name, std::vector<Vec*> inputs, const std::function<Vec()>& forward,
                  const std::function<std::vector<Vec>(const Vec& r)>& analytic) {
  const Vec y0 = forward();
  const Vec r = randn(y0.size());
  const std::vector<Vec> grads = analytic(r);
  double worst = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Vec& x = *inputs[k];
    Vec num(x.size());
    const double h = 1e-6;
    for (size_t i = 0; i < x.size(); ++i) {
      const double keep = x[i];
      x[i] = keep + h;
      const double up = dot(forward(), r);
      x[i] = keep - h;
      const double down = dot(forward(), r);
      x[i] = keep;
      num[i] = (up - down) / (2 * h);
    }
    double diff = 0, ref = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      diff += (grads[k][i] - num[i]) * (grads[k][i] - num[i]);
      ref += num[i] * num[i];
    }
    worst = std::max(worst, std::sqrt(diff / std::max(ref, 1e-300)));
  }
  const bool ok = worst <= 1e-6;
  (ok ? passed : failed)++;
  std::printf("%s %s (relative error %.2e)\n", ok ? "ok  " : "FAIL", name.c_str(), worst);
}

// A direct comparison: passes when error <= tolerance.
inline void report(const std::string& name, double error, double tolerance) {
  const bool ok = error <= tolerance;
  (ok ? passed : failed)++;
  std::printf("%s %s (error %.2e, tolerance %.0e)\n", ok ? "ok  " : "FAIL", name.c_str(), error, tolerance);
}

using FVec = std::vector<float>;
inline FVec to_float(const Vec& v) { return FVec(v.begin(), v.end()); }

// max |ref - got| / max |ref| over several outputs
inline double relative_error(std::initializer_list<std::pair<const Vec*, const FVec*>> outputs) {
  double worst = 0;
  for (const auto& [ref, got] : outputs) {
    double scale = 1e-30, err = 0;
    for (size_t i = 0; i < ref->size(); ++i) scale = std::max(scale, std::fabs((*ref)[i]));
    for (size_t i = 0; i < ref->size(); ++i) err = std::max(err, std::fabs((*ref)[i] - (*got)[i]));
    worst = std::max(worst, err / scale);
  }
  return worst;
}

// The checks, by op family, in the order ops_test.cpp runs them (they share one random stream).
void float_ops_against_double();  // ops_test_float.cpp
void conv_float_cases();          // ops_test_conv.cpp
void conv_gradient_cases();       // ops_test_conv.cpp
void layer_gradient_cases();      // ops_test_layers.cpp: every other layer, the losses
void gemm_cases();                // ops_test_float.cpp

}  // namespace adcorre::engine::ops_test
