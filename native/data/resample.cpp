// Window resampling for inference. Written here rather than in sharp because
// one call into sharp costs 2.5-5 ms of CPU on the 2 vCPU development machine
// however small the image (measured 2026-12-01), and one photo's prediction
// resamples three to eight windows (the detector passes' inputs, the face
// crops); the same loops in JavaScript ran 10-25 ns per tap there.
//
// Design: separable. Per axis, each output index gets its taps (source index
// after the border rule, or -1 for the constant; weight). The horizontal pass
// runs once per source row that the vertical taps name, into a row cache;
// the vertical pass sums cached rows. Weights and sums in float, as in
// lib/pixels.ts, whose JavaScript is the reference (tests: 1e-3 of 255).
#include "resample.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace adcorre {

namespace {

struct Axis {
  std::vector<int> start;  // taps of output i: [start[i], start[i + 1])
  std::vector<int> index;  // source index, or -1 for the constant
  std::vector<float> weight;
};

int map_index(long j, int n, Border border) {
  if (j >= 0 && j < n) return static_cast<int>(j);
  switch (border) {
    case Border::kEdge:
      return j < 0 ? 0 : n - 1;
    case Border::kReflect: {
      const long period = 2L * n;
      long m = j % period;
      if (m < 0) m += period;
      return static_cast<int>(m < n ? m : period - 1 - m);
    }
    case Border::kConstant:
    default:
      return -1;
  }
}

// The same taps as resizeAxis in lib/pixels.ts.
Axis make_axis(double origin, double length, int dst, int n, Border border) {
  Axis a;
  a.start.resize(dst + 1);
  const double f = length / dst;
  for (int i = 0; i < dst; ++i) {
    a.start[i] = static_cast<int>(a.index.size());
    if (f <= 1) {
      // enlarging: linear between the two nearest input pixels (clamped to the window)
      const double c = origin + (i + 0.5) * f - 0.5;
      const double lo = std::floor(origin), hi = std::ceil(origin + length) - 1;
      double j = std::min(hi, std::max(lo, std::floor(c)));
      const double t = std::min(1.0, std::max(0.0, c - j));
      a.index.push_back(map_index(static_cast<long>(j), n, border));
      a.index.push_back(map_index(static_cast<long>(std::min(hi, j + 1)), n, border));
      a.weight.push_back(static_cast<float>(1 - t));
      a.weight.push_back(static_cast<float>(t));
    } else {
      // shrinking: the mean of the input pixels it covers (area average)
      const double lo = origin + i * f, hi = std::min(origin + length, origin + (i + 1) * f);
      for (double j = std::floor(lo); j < std::ceil(hi); j += 1) {
        const double w = std::min(hi, j + 1) - std::max(lo, j);
        if (w > 1e-6) {
          a.index.push_back(map_index(static_cast<long>(j), n, border));
          a.weight.push_back(static_cast<float>(w / (hi - lo)));
        }
      }
    }
  }
  a.start[dst] = static_cast<int>(a.index.size());
  return a;
}

}  // namespace

void resample_rgb(const uint8_t* src, int sw, int sh, const ResampleWindow& win, float* dst, int dw, int dh) {
  const Axis X = make_axis(win.x, win.width, dw, sw, win.border);
  const Axis Y = make_axis(win.y, win.height, dh, sh, win.border);
  const int row_floats = dw * 3;
  // the horizontal pass of each source row the vertical taps name, once
  std::vector<int> slot(sh, -1);
  int rows_needed = 0;
  for (int r : Y.index)
    if (r >= 0 && slot[r] < 0) slot[r] = rows_needed++;
  std::vector<float> rows(static_cast<size_t>(rows_needed) * row_floats);
  const float c = win.constant;
  for (int r = 0; r < sh; ++r) {
    if (slot[r] < 0) continue;
    const uint8_t* line = src + static_cast<size_t>(r) * sw * 3;
    float* out = rows.data() + static_cast<size_t>(slot[r]) * row_floats;
    for (int x = 0; x < dw; ++x) {
      float red = 0, green = 0, blue = 0;
      for (int k = X.start[x]; k < X.start[x + 1]; ++k) {
        const float w = X.weight[k];
        const int j = X.index[k];
        if (j < 0) {
          red += c * w, green += c * w, blue += c * w;
        } else {
          const uint8_t* p = line + 3 * j;
          red += p[0] * w, green += p[1] * w, blue += p[2] * w;
        }
      }
      out[3 * x] = red, out[3 * x + 1] = green, out[3 * x + 2] = blue;
    }
  }
  std::vector<float> acc(row_floats);
  for (int y = 0; y < dh; ++y) {
    std::fill(acc.begin(), acc.end(), 0.f);
    for (int k = Y.start[y]; k < Y.start[y + 1]; ++k) {
      const float w = Y.weight[k];
      if (Y.index[k] < 0) {
        for (float& a : acc) a += c * w;
        continue;
      }
      const float* row = rows.data() + static_cast<size_t>(slot[Y.index[k]]) * row_floats;
      for (int i = 0; i < row_floats; ++i) acc[i] += row[i] * w;
    }
    float* out = dst + static_cast<size_t>(y) * row_floats;
    for (int i = 0; i < row_floats; ++i) out[i] = acc[i] * win.scale + win.bias;
  }
}

}  // namespace adcorre
