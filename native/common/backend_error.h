// The error every backend raises for a failure of the machine (CUDA errors,
// out of device memory), never for bad arguments, which the caller validates
// before it calls in. The N-API guard (napi/typed_array.h) passes its message
// to JavaScript unchanged.
#pragma once

#include <stdexcept>

namespace adcorre {

class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace adcorre
