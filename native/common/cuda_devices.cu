// CUDA device discovery (cuda_devices.h) on the CUDA runtime, or on the HIP CPU
// Runtime under emulation (gpu_portability.cuh).
#include "cuda_devices.h"

#include "gpu_portability.cuh"

#ifndef ADCORRE_CUDA_ARCHS
#define ADCORRE_CUDA_ARCHS "unknown"
#endif

namespace adcorre {

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = true;
  info.archs = ADCORRE_CUDA_ARCHS;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaDriverGetVersion(&info.driver_version);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    info.error = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return info;
  }
  if (count == 0) info.error = "no CUDA device found";
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    CudaDevice dev;
    dev.index = i;
    dev.name = prop.name;
    dev.major = prop.major;
    dev.minor = prop.minor;
    dev.total_memory = prop.totalGlobalMem;
    info.devices.push_back(dev);
  }
  return info;
}

bool cuda_usable() {
  static const bool usable = [] {
    CudaInfo info = cuda_info();
    return info.error.empty() && !info.devices.empty();
  }();
  return usable;
}

}  // namespace adcorre
