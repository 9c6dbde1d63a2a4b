// Image warp for data augmentation: one pass from a decoded 8-bit image to the
// model's float32 planar input. Declared here, implemented in augment.cpp.
#pragma once

#include <cstdint>

namespace adcorre {

struct WarpParams {
  // Source pixel coordinates (x, y) of output pixel (u, v):
  //   x = m[0] u + m[1] v + m[2],  y = m[3] u + m[4] v + m[5]
  double m[6];
  float contrast = 1.f;  // v' = (v - 0.5) * contrast + 0.5 + brightness, in [0, 1] units
  float brightness = 0.f;
};

// src: h x w x src_c bytes (interleaved); dst: dst_c x out_h x out_w floats in
// [0, 1] (planar, NCHW for one image). Bilinear sampling, edges clamped.
// Channels: 1 -> 3 replicates, 3 -> 1 takes luma (BT.601); 2 (grey + alpha)
// and 4 (RGBA) ignore alpha.
void warp_affine(const uint8_t* src, int w, int h, int src_c, float* dst, int out_w, int out_h, int dst_c,
                 const WarpParams& p);

}  // namespace adcorre
