// Elementwise ops of ops.h: ReLU, adds, zero fills, the finiteness check and
// the optimizer updates (Adam, SGD with momentum). Design note: all are
// memory-bound passes split over the pool (parallel_elementwise), each a loop
// on restrict pointers of its own: inside a lambda the compiler must reload
// captured pointers after every store and does not vectorise.
#include "ops_cpu_internal.h"

#include <atomic>
#include <cmath>
#include <cstring>

namespace adcorre::engine {

namespace {

// Loops on restrict pointers of their own: inside a lambda the compiler must
// reload captured pointers after every store and does not vectorise.
template <typename T>
ENGINE_HOT void relu_span(size_t count, const T* __restrict x, T* __restrict y) {
  for (size_t i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <typename T>
ENGINE_HOT void relu_backward_span(size_t count, const T* __restrict y, const T* __restrict dy, T* __restrict dx) {
  for (size_t i = 0; i < count; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

}  // namespace

namespace {

template <typename T>
ENGINE_HOT void add_span(size_t count, const T* __restrict a, const T* __restrict b, T* __restrict y) {
  for (size_t i = 0; i < count; ++i) y[i] = a[i] + b[i];
}

template <typename T>
ENGINE_HOT void add_into_span(size_t count, const T* __restrict x, T* __restrict y) {
  for (size_t i = 0; i < count; ++i) y[i] += x[i];
}

}  // namespace

template <typename T>
void add_forward(size_t count, const T* a, const T* b, T* y) {
  parallel_elementwise(count, 1, [a, b, y](size_t s, size_t e) { add_span(e - s, a + s, b + s, y + s); });
}

template <typename T>
void add_into(size_t count, const T* x, T* y) {
  parallel_elementwise(count, 1, [x, y](size_t s, size_t e) { add_into_span(e - s, x + s, y + s); });
}

template <typename T>
void relu_forward(size_t count, const T* x, T* y) {
  parallel_elementwise(count, 1, [x, y](size_t b, size_t e) { relu_span(e - b, x + b, y + b); });
}

template <typename T>
void relu_backward(size_t count, const T* y, const T* dy, T* dx) {
  parallel_elementwise(count, 1, [y, dy, dx](size_t b, size_t e) { relu_backward_span(e - b, y + b, dy + b, dx + b); });
}

namespace {

// In double per element (as before, so a resumed run continues bit-exactly
// across versions), vectorised: restrict pointers of their own.
ENGINE_HOT void adam_span(size_t count, float* __restrict w, const float* __restrict g, float* __restrict m,
                          float* __restrict v, double step, double beta1, double beta2, double eps, double wd) {
  for (size_t j = 0; j < count; ++j) {
    const double gj = g[j] + wd * w[j];
    m[j] = static_cast<float>(beta1 * m[j] + (1 - beta1) * gj);
    v[j] = static_cast<float>(beta2 * v[j] + (1 - beta2) * gj * gj);
    w[j] = static_cast<float>(w[j] - step * m[j] / (std::sqrt(static_cast<double>(v[j])) + eps));
  }
}

ENGINE_HOT void sgd_span(size_t count, float* __restrict w, const float* __restrict g, float* __restrict m, double lr,
                         double momentum, double wd, bool nesterov) {
  for (size_t j = 0; j < count; ++j) {
    const double gj = g[j] + wd * w[j];
    m[j] = static_cast<float>(momentum * m[j] + gj);
    w[j] = static_cast<float>(w[j] - lr * (nesterov ? gj + momentum * m[j] : m[j]));
  }
}

}  // namespace

namespace {

// x - x is 0 for finite x and NaN otherwise; the lanes keep their own sums.
ENGINE_HOT bool finite_span(size_t count, const float* __restrict x) {
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (size_t i = 0; i < count; ++i) acc += x[i] - x[i];
  return acc == 0.f;
}

}  // namespace

void fill_zero(size_t count, float* y) {
  parallel_elementwise(count, 1, [y](size_t b, size_t e) { std::memset(y + b, 0, (e - b) * sizeof(float)); });
}

bool all_finite(size_t count, const float* x) {
  std::atomic<bool> ok{true};
  parallel_elementwise(count, 1, [x, &ok](size_t b, size_t e) {
    if (!finite_span(e - b, x + b)) ok = false;
  });
  return ok;
}

void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                 double eps, double weight_decay) {
  parallel_elementwise(count, 4, [=](size_t b, size_t e) {
    adam_span(e - b, w + b, g + b, m + b, v + b, step, beta1, beta2, eps, weight_decay);
  });
}

void sgd_momentum_update(size_t count, float* w, const float* g, float* m, double lr, double momentum,
                         double weight_decay, bool nesterov) {
  parallel_elementwise(count, 3, [=](size_t b, size_t e) {
    sgd_span(e - b, w + b, g + b, m + b, lr, momentum, weight_decay, nesterov);
  });
}

#define INSTANTIATE(T)                                          \
  template void add_forward<T>(size_t, const T*, const T*, T*); \
  template void add_into<T>(size_t, const T*, T*);              \
  template void relu_forward<T>(size_t, const T*, T*);          \
  template void relu_backward<T>(size_t, const T*, const T*, T*);

INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace adcorre::engine
