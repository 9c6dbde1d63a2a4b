// What every CUDA file of the addon shares (in the spirit of llm.c's
// cuda_common.h): error checks that throw adcorre::BackendError with the call
// and its place, the launch geometry, and the deterministic reductions.
#pragma once

#include "gpu_portability.cuh"  // the CUDA runtime, or the HIP CPU Runtime under emulation

#include <cstddef>
#include <sstream>

#include "backend_error.h"

namespace adcorre::cuda_common {

constexpr int kBlockThreads = 256;  // threads per block of the 1-D kernels and the block reductions
constexpr int kWarp = 32;

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  std::ostringstream msg;
  msg << "CUDA error in " << what << " (" << file << ":" << line << "): " << cudaGetErrorName(err) << ": "
      << cudaGetErrorString(err);
  throw BackendError(msg.str());
}

// Blocks that cover n elements, one thread each (kernels without a grid-stride loop).
// At least one block: a 0-block launch is an error where the CPU op just does nothing (the kernels
// bounds-check their index, so the extra block's threads return).
inline unsigned grid_for(size_t n) {
  return n == 0 ? 1u : static_cast<unsigned>((n + kBlockThreads - 1) / kBlockThreads);
}
// The same, capped: for kernels written with ADCORRE_GRID_STRIDE.
inline unsigned grid_for_strided(size_t n) {
  const size_t blocks = n == 0 ? 1 : (n + kBlockThreads - 1) / kBlockThreads;
  return static_cast<unsigned>(blocks < 65535u * 8 ? blocks : 65535u * 8);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Deterministic block sum of one double per thread (blockDim.x ==
// kBlockThreads, scratch of as many doubles); every thread gets the total.
// Ends with a barrier, so scratch can be reused at once.
__device__ inline double block_sum(double v, double* scratch) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = kBlockThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
    __syncthreads();
  }
  const double total = scratch[0];
  __syncthreads();
  return total;
}

}  // namespace adcorre::cuda_common

// A CUDA runtime call that must succeed.
#define ADCORRE_CUDA_CHECK(call)                                                         \
  do {                                                                                   \
    const cudaError_t adcorre_err_ = (call);                                             \
    if (adcorre_err_ != cudaSuccess)                                                     \
      ::adcorre::cuda_common::throw_cuda_error(adcorre_err_, #call, __FILE__, __LINE__); \
  } while (0)
// The last kernel launch, named by `what`.
#define ADCORRE_LAUNCH_CHECK(what)                                                                                     \
  do {                                                                                                                 \
    const cudaError_t adcorre_err_ = cudaGetLastError();                                                               \
    if (adcorre_err_ != cudaSuccess) ::adcorre::cuda_common::throw_cuda_error(adcorre_err_, what, __FILE__, __LINE__); \
  } while (0)
// for (size_t i ...) over [0, count) by every thread of the grid.
#define ADCORRE_GRID_STRIDE(i, count)                                                      \
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < (count); \
       i += static_cast<size_t>(gridDim.x) * blockDim.x)
