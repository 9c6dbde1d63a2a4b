// What the backend conformance test's files share (backend_test.cpp runs
// them; how to add an op: its head and native/README.md): random inputs,
// buffers in a backend's memory, and check(), which runs one case on the CPU
// backend against its float64 reference and on every other backend present
// against the CPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "../common/rng.h"
#include "backend.h"
#include "engine.h"  // the program's constants (kBnEps, kL2Eps)

namespace adcorre::engine::conformance {

using Vec = std::vector<float>;
using Ints = std::vector<int32_t>;
using Dbl = std::vector<double>;

inline std::mt19937 rng(20261201);
inline Vec randn(size_t n, float scale = 1.f) {
  std::normal_distribution<float> nd(0.f, scale);
  Vec v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
inline Dbl widen(const Vec& v) { return Dbl(v.begin(), v.end()); }
inline Vec narrow(const Dbl& v) { return Vec(v.begin(), v.end()); }

inline int passed = 0, failed = 0;

inline void report(bool ok, const std::string& what, double err) {
  (ok ? passed : failed)++;
  std::printf("%s %s (relative error %.2e)\n", ok ? "ok  " : "FAIL", what.c_str(), err);
}

// relative norm error of got against want
inline double norm_error(const Vec& got, const Vec& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Buffers in one backend's memory, released at the end of a case.
class Mem {
 public:
  explicit Mem(Backend& b) : b_(b) {}
  ~Mem() {
    for (void* p : blocks_) b_.release(p);
  }
  template <typename T>
  T* put(const std::vector<T>& v) {
    T* p = alloc<T>(v.size());
    b_.upload(p, v.data(), v.size() * sizeof(T));
    return p;
  }
  template <typename T>
  T* zeros(size_t n) {
    T* p = alloc<T>(n);
    b_.zero(p, std::max<size_t>(n, 1) * sizeof(T));
    return p;
  }
  template <typename T>
  std::vector<T> get(const T* p, size_t n) {
    std::vector<T> v(n);
    b_.download(v.data(), p, n * sizeof(T));
    b_.synchronize();
    return v;
  }

 private:
  template <typename T>
  T* alloc(size_t n) {
    void* p = b_.try_allocate(std::max<size_t>(n, 1) * sizeof(T) + 256);
    if (!p) throw std::bad_alloc();
    blocks_.push_back(p);
    return static_cast<T*>(p);
  }
  Backend& b_;
  std::vector<void*> blocks_;
};

// One case: `run` computes named float outputs on a backend; `reference`
// computes the same outputs in float64 (null: the CPU backend is the reference
// of itself, as for ops whose float and double code differ only in type).
struct Outputs {
  std::vector<std::string> names;
  std::vector<Vec> values;
  void add(const std::string& name, Vec v) {
    names.push_back(name);
    values.push_back(std::move(v));
  }
};
using Run = std::function<Outputs(Backend&)>;

// Outputs named "exact ..." (integers, masks, copies) must match bit for bit.
inline bool exact(const std::string& output) { return output.rfind("exact", 0) == 0; }

inline std::vector<std::unique_ptr<Backend>> others;  // the backends compared with the CPU

inline void check(const std::string& name, const Run& run, const std::function<Outputs()>& reference,
                  double cpu_tolerance = 1e-5, double backend_tolerance = 1e-4) {
  static std::unique_ptr<Backend> cpu = make_cpu_backend();
  const Outputs want = run(*cpu);
  if (reference) {
    const Outputs ref = reference();
    for (size_t i = 0; i < ref.values.size(); ++i) {
      const double err = norm_error(want.values[i], ref.values[i]);
      const double tol = exact(want.names[i]) ? 0.0 : cpu_tolerance;
      report(err <= tol, "cpu " + name + " " + want.names[i] + " = float64", err);
    }
  }
  for (auto& b : others) {
    const Outputs got = run(*b);
    for (size_t i = 0; i < want.values.size(); ++i) {
      const double err = norm_error(got.values[i], want.values[i]);
      const double tol = exact(want.names[i]) ? 0.0 : backend_tolerance;
      report(err <= tol, b->name() + " " + name + " " + want.names[i] + " = cpu", err);
    }
  }
}

inline Vec as_floats(const Ints& v) { return Vec(v.begin(), v.end()); }

// The cases, by op family (backend_test_*.cpp); kOpCases in backend_test.cpp maps the op table to them.
void standardize_cases();
void conv_cases();
void batchnorm_cases();
void relu_cases();
void maxpool_cases();
void add_cases();
void gap_cases();
void dense_cases();
void l2norm_cases();
void concat_cases();
void dropout_cases();
void softmax_cases();
// the executor's kernels that are no op of the table
void nonfinite_cases();
void adcorre_cases();
void optimizer_cases();

}  // namespace adcorre::engine::conformance
