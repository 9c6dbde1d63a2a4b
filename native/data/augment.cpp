// Affine warp with bilinear sampling, brightness/contrast and channel
// conversion in one pass. Written here rather than composed from sharp
// operations because each sharp pipeline costs about a millisecond of set-up
// (measured on FER-2013's 48x48 crops), and crop + rotation + flip + jitter
// would take several; this warp runs on decoded pixels already in memory.
#include "augment.h"

#include <algorithm>
#include <cmath>

namespace adcorre {

namespace {

// floor() without a libm call: baseline x86-64 has no SSE4.1 rounding instruction.
inline int fast_floor(double v) {
  const int i = static_cast<int>(v);
  return i - (v < i);
}

// SRC channels in (1, 3 or 4; alpha ignored), DST channels out (1 or 3).
template <int SRC, int DST>
void warp(const uint8_t* src, int w, int h, float* dst, int out_w, int out_h, const WarpParams& p) {
  constexpr int kColor = SRC >= 3 ? 3 : 1;
  const float scale = p.contrast / 255.f;
  const float offset = 0.5f - 0.5f * p.contrast + p.brightness;
  const size_t plane = static_cast<size_t>(out_w) * out_h;
  const size_t stride = static_cast<size_t>(w) * SRC;
  for (int v = 0; v < out_h; ++v) {
    // Coordinates advance by (m0, m3) per output pixel along the row.
    double x = p.m[1] * v + p.m[2];
    double y = p.m[4] * v + p.m[5];
    float* row = dst + static_cast<size_t>(v) * out_w;
    for (int u = 0; u < out_w; ++u, x += p.m[0], y += p.m[3]) {
      const int xi = fast_floor(x), yi = fast_floor(y);
      const float fx = static_cast<float>(x - xi), fy = static_cast<float>(y - yi);
      const int x0 = std::clamp(xi, 0, w - 1), x1 = std::clamp(xi + 1, 0, w - 1);
      const int y0 = std::clamp(yi, 0, h - 1), y1 = std::clamp(yi + 1, 0, h - 1);
      const uint8_t* r0 = src + y0 * stride;
      const uint8_t* r1 = src + y1 * stride;
      const int a = x0 * SRC, b = x1 * SRC;
      float s[kColor];
      for (int c = 0; c < kColor; ++c) {
        const float top = r0[a + c] + fx * (r0[b + c] - r0[a + c]);
        const float bottom = r1[a + c] + fx * (r1[b + c] - r1[a + c]);
        s[c] = top + fy * (bottom - top);
      }
      if constexpr (DST == 1) {
        const float g = kColor == 1 ? s[0] : 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[kColor - 1];
        row[u] = std::clamp(g * scale + offset, 0.f, 1.f);
      } else {
        for (int c = 0; c < 3; ++c) row[c * plane + u] = std::clamp(s[kColor == 1 ? 0 : c] * scale + offset, 0.f, 1.f);
      }
    }
  }
}

}  // namespace

void warp_affine(const uint8_t* src, int w, int h, int src_c, float* dst, int out_w, int out_h, int dst_c,
                 const WarpParams& p) {
  const bool grey_out = dst_c == 1;
  switch (src_c) {
    case 1:
      return grey_out ? warp<1, 1>(src, w, h, dst, out_w, out_h, p) : warp<1, 3>(src, w, h, dst, out_w, out_h, p);
    case 2:
      return grey_out ? warp<2, 1>(src, w, h, dst, out_w, out_h, p) : warp<2, 3>(src, w, h, dst, out_w, out_h, p);
    case 3:
      return grey_out ? warp<3, 1>(src, w, h, dst, out_w, out_h, p) : warp<3, 3>(src, w, h, dst, out_w, out_h, p);
    default:
      return grey_out ? warp<4, 1>(src, w, h, dst, out_w, out_h, p) : warp<4, 3>(src, w, h, dst, out_w, out_h, p);
  }
}

}  // namespace adcorre
