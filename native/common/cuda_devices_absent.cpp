// Built instead of cuda_devices.cu when the addon is compiled without nvcc:
// CUDA is reported absent, with the reason every CUDA entry point then gives.
#include "cuda_devices.h"

namespace adcorre {

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = false;
  info.error = "this build of adcorre-native was compiled without CUDA (nvcc was not found at build time)";
  return info;
}

bool cuda_usable() { return false; }

}  // namespace adcorre
