// Reused scratch vectors (thread-local packing buffers, im2col columns).
#pragma once

#include <cstddef>

namespace adcorre {

// Grows v to at least n elements and never shrinks it: vector::resize
// value-initialises (zero-fills) every element past the current size, so
// resizing one buffer to a step's alternating sizes would zero the large part
// again each time it grows back.
template <typename Vector>
inline void ensure_size(Vector& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

}  // namespace adcorre
