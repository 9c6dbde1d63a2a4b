// CUDA device discovery, declared without CUDA headers so that host C++ (the
// N-API glue, the engine's backend factory) can ask whether CUDA is usable.
// Implemented by cuda_devices.cu where nvcc compiled the addon (or the HIP CPU
// Runtime emulates it), by cuda_devices_absent.cpp otherwise.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace adcorre {

struct CudaDevice {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  size_t total_memory = 0;
};

struct CudaInfo {
  bool compiled = false;    // the addon was built with nvcc
  std::string archs;        // e.g. "75;80;86;89;90;100;120"
  int runtime_version = 0;  // cudart the addon linked (e.g. 13000)
  int driver_version = 0;   // 0 when no driver
  std::vector<CudaDevice> devices;
  std::string error;  // why CUDA is not usable, when it is not
};
CudaInfo cuda_info();
// cuda_info() found no error and at least one device (asked once per process).
bool cuda_usable();

}  // namespace adcorre
