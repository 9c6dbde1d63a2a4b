// Normalisations of ops.h: batch norm (training, evaluation, backward, with
// the ReLU that follows fused in) and the embeddings' L2 normalisation.
// Design note: batch norm is memory-bound; each channel's planes are summed
// in T with SIMD lanes per plane and in double across planes, one channel per
// task of the pool, and every plane loop is a restrict-pointer function of
// its own so that it vectorises.
#include "ops_cpu_internal.h"

#include <cmath>

namespace adcorre::engine {

namespace {

// Sums over one plane in T with SIMD lanes (a few hundred to a few thousand
// values), returned in double for the sum over planes.
template <typename T>
ENGINE_HOT double plane_sum(int count, const T* __restrict p) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < count; ++j) s += p[j];
  return s;
}

template <typename T>
ENGINE_HOT double plane_centered_squares(int count, const T* __restrict p, T mu) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < count; ++j) s += (p[j] - mu) * (p[j] - mu);
  return s;
}

template <typename T>
ENGINE_HOT void plane_affine(int count, const T* __restrict p, T g, T b, T* __restrict q) {
  for (int j = 0; j < count; ++j) q[j] = p[j] * g + b;
}

template <typename T>
ENGINE_HOT void plane_affine_relu(int count, const T* __restrict p, T g, T b, T* __restrict q) {
  for (int j = 0; j < count; ++j) {
    const T v = p[j] * g + b;
    q[j] = v > T(0) ? v : T(0);
  }
}

template <typename T>
void plane_affine_maybe_relu(bool relu, int count, const T* p, T g, T b, T* q) {
  if (relu)
    plane_affine_relu(count, p, g, b, q);
  else
    plane_affine(count, p, g, b, q);
}

// sum dy and sum dy * (x - mu) over a plane
template <typename T>
ENGINE_HOT void plane_dy_sums(int count, const T* __restrict dy, const T* __restrict x, T mu, double* sdy,
                              double* sdyx) {
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int j = 0; j < count; ++j) {
    a += dy[j];
    b += dy[j] * (x[j] - mu);
  }
  *sdy += a;
  *sdyx += b;
}

// The same through a fused ReLU: dy counts where its output y > 0 (else 0)
template <typename T>
ENGINE_HOT void plane_dy_sums_relu(int count, const T* __restrict dy, const T* __restrict y, const T* __restrict x,
                                   T mu, double* sdy, double* sdyx) {
  T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int j = 0; j < count; ++j) {
    const T g = y[j] > T(0) ? dy[j] : T(0);
    a += g;
    b += g * (x[j] - mu);
  }
  *sdy += a;
  *sdyx += b;
}

// dx = k * (m dy - sdy - xhat sdyx), xhat = (x - mu) inv
template <typename T>
ENGINE_HOT void plane_bn_dx(int count, const T* __restrict dy, const T* __restrict x, T mu, T inv, T km, T ks, T kx,
                            T* __restrict dx) {
  for (int j = 0; j < count; ++j) dx[j] = km * dy[j] - ks - kx * ((x[j] - mu) * inv);
}

template <typename T>
ENGINE_HOT void plane_bn_dx_relu(int count, const T* __restrict dy, const T* __restrict y, const T* __restrict x, T mu,
                                 T inv, T km, T ks, T kx, T* __restrict dx) {
  for (int j = 0; j < count; ++j) dx[j] = km * (y[j] > T(0) ? dy[j] : T(0)) - ks - kx * ((x[j] - mu) * inv);
}

}  // namespace

template <typename T>
void batchnorm_forward_train(int n, int c, int hw, const T* x, const T* gamma, const T* beta, T* y, T* mean, T* invstd,
                             T* running_mean, T* running_var, double momentum, double eps, bool relu) {
  const double m = static_cast<double>(n) * hw;
  pool().parallel_for(static_cast<size_t>(c), 1, [&](size_t b, size_t e) {
    for (size_t ch = b; ch < e; ++ch) {
      double sum = 0, sq = 0;
      for (int i = 0; i < n; ++i) sum += plane_sum(hw, x + (static_cast<size_t>(i) * c + ch) * hw);
      const double mu = sum / m;
      // centred in T at mu rounded to T: exact enough (the shift only has to be near the mean)
      const T mu_t = static_cast<T>(mu);
      for (int i = 0; i < n; ++i) sq += plane_centered_squares(hw, x + (static_cast<size_t>(i) * c + ch) * hw, mu_t);
      const double shift = mu - static_cast<double>(mu_t);
      const double var = std::max(0.0, sq / m - shift * shift);
      const double inv = 1.0 / std::sqrt(var + eps);
      mean[ch] = static_cast<T>(mu);
      invstd[ch] = static_cast<T>(inv);
      if (running_mean) {
        running_mean[ch] = static_cast<T>(momentum * running_mean[ch] + (1 - momentum) * mu);
        running_var[ch] = static_cast<T>(momentum * running_var[ch] + (1 - momentum) * var);
      }
      const T g = static_cast<T>(gamma[ch] * inv), bb = static_cast<T>(beta[ch] - mu * inv * gamma[ch]);
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        plane_affine_maybe_relu(relu, hw, x + at, g, bb, y + at);
      }
    }
  });
}

template <typename T>
void batchnorm_forward_eval(int n, int c, int hw, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, T* y, double eps, bool relu) {
  parallel_elementwise(static_cast<size_t>(c), static_cast<size_t>(n) * hw, [&](size_t b, size_t e) {
    for (size_t ch = b; ch < e; ++ch) {
      const double inv = 1.0 / std::sqrt(static_cast<double>(running_var[ch]) + eps);
      const T g = static_cast<T>(gamma[ch] * inv), bb = static_cast<T>(beta[ch] - running_mean[ch] * inv * gamma[ch]);
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        plane_affine_maybe_relu(relu, hw, x + at, g, bb, y + at);
      }
    }
  });
}

template <typename T>
void batchnorm_backward(int n, int c, int hw, const T* x, const T* gamma, const T* mean, const T* invstd, const T* dy,
                        T* dx, T* dgamma, T* dbeta, const T* relu_output) {
  const double m = static_cast<double>(n) * hw;
  pool().parallel_for(static_cast<size_t>(c), 1, [&](size_t b, size_t e) {
    for (size_t ch = b; ch < e; ++ch) {
      const T mu = mean[ch];
      const double inv = invstd[ch];
      double sdy = 0, sdyx = 0;
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        if (relu_output)
          plane_dy_sums_relu(hw, dy + at, relu_output + at, x + at, mu, &sdy, &sdyx);
        else
          plane_dy_sums(hw, dy + at, x + at, mu, &sdy, &sdyx);
      }
      sdyx *= inv;  // sum dy * xhat
      dbeta[ch] += static_cast<T>(sdy);
      dgamma[ch] += static_cast<T>(sdyx);
      const double k = gamma[ch] * inv / m;
      for (int i = 0; i < n; ++i) {
        const size_t at = (static_cast<size_t>(i) * c + ch) * hw;
        const T km = static_cast<T>(k * m), ks = static_cast<T>(k * sdy), kx = static_cast<T>(k * sdyx);
        if (relu_output)
          plane_bn_dx_relu(hw, dy + at, relu_output + at, x + at, mu, static_cast<T>(inv), km, ks, kx, dx + at);
        else
          plane_bn_dx(hw, dy + at, x + at, mu, static_cast<T>(inv), km, ks, kx, dx + at);
      }
    }
  });
}

template <typename T>
void l2norm_forward(int rows, int dim, const T* x, T* y, double eps) {
  for (int r = 0; r < rows; ++r) {
    double s = 0;
    for (int j = 0; j < dim; ++j)
      s += static_cast<double>(x[static_cast<size_t>(r) * dim + j]) * x[static_cast<size_t>(r) * dim + j];
    const double inv = 1.0 / std::sqrt(std::max(s, eps));
    for (int j = 0; j < dim; ++j)
      y[static_cast<size_t>(r) * dim + j] = static_cast<T>(x[static_cast<size_t>(r) * dim + j] * inv);
  }
}

template <typename T>
void l2norm_backward(int rows, int dim, const T* x, const T* y, const T* dy, T* dx, double eps) {
  for (int r = 0; r < rows; ++r) {
    const size_t at = static_cast<size_t>(r) * dim;
    double s = 0, yd = 0;
    for (int j = 0; j < dim; ++j) {
      s += static_cast<double>(x[at + j]) * x[at + j];
      yd += static_cast<double>(y[at + j]) * dy[at + j];
    }
    const double inv = 1.0 / std::sqrt(std::max(s, eps));
    const bool clamped = s < eps;  // the norm is the constant sqrt(eps): no projection term
    for (int j = 0; j < dim; ++j)
      dx[at + j] = static_cast<T>(clamped ? dy[at + j] * inv : (dy[at + j] - y[at + j] * yd) * inv);
  }
}

#define INSTANTIATE(T)                                                                                                 \
  template void batchnorm_forward_train<T>(int, int, int, const T*, const T*, const T*, T*, T*, T*, T*, T*, double,    \
                                           double, bool);                                                              \
  template void batchnorm_forward_eval<T>(int, int, int, const T*, const T*, const T*, const T*, const T*, T*, double, \
                                          bool);                                                                       \
  template void batchnorm_backward<T>(int, int, int, const T*, const T*, const T*, const T*, const T*, T*, T*, T*,     \
                                      const T*);                                                                       \
  template void l2norm_forward<T>(int, int, const T*, T*, double);                                                     \
  template void l2norm_backward<T>(int, int, const T*, const T*, const T*, T*, double);

INSTANTIATE(float)
INSTANTIATE(double)

}  // namespace adcorre::engine
