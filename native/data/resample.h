// Window resampling of decoded RGB images for inference: the detector's
// inputs and the classifier's face crops. Declared here, implemented in
// resample.cpp; lib/pixels.ts holds the readable JavaScript version of the
// same algorithm (the reference the tests compare with, and the fallback
// when the addon cannot load).
#pragma once

#include <cstdint>

namespace adcorre {

// What a window that leaves the image sees there.
enum class Border : int {
  kEdge = 0,      // the nearest edge pixel repeats
  kReflect = 1,   // the image mirrored about its edges (the edge pixel repeated once)
  kConstant = 2,  // a constant value
};

struct ResampleWindow {
  // The window in source pixels (may be fractional and may reach outside).
  double x, y, width, height;
  Border border = Border::kEdge;
  float constant = 0.f;  // kConstant's value, in source units (0-255)
  float scale = 1.f;     // output = value * scale + bias
  float bias = 0.f;
};

// src: sh x sw x 3 bytes (interleaved RGB); the window resized to dw x dh,
// area averaging where it shrinks, linear interpolation where it enlarges,
// separably. Output interleaved floats: value * scale + bias.
void resample_rgb(const uint8_t* src, int sw, int sh, const ResampleWindow& win, float* dst, int dw, int dh);

}  // namespace adcorre
