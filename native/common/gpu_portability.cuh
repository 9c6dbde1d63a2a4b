// The one place where the CUDA sources (cuda_devices.cu, cuda_common.cuh,
// ../engine/ops_cuda_*.cu, ../engine/backend_cuda.cu, ../loss/adcorre_cuda.cu)
// learn how they are compiled:
//   - by nvcc, for a GPU (the addon): the CUDA runtime, `<<<...>>>` launches;
//   - as host C++ against the HIP CPU Runtime (../shared/tools/hip-cpu, built
//     with -DADCORRE_CUDA_EMULATED; scripts/cuda-emulated.sh), which runs the
//     same kernels on the CPU with blocks, threads, shared memory, barriers,
//     warp shuffles and atomics emulated, so that CI executes them against the
//     CPU implementation on machines without a GPU.
// The kernels are the same text both ways. Every launch goes through
// ADCORRE_LAUNCH; the CUDA runtime names and the `_sync` warp intrinsics the
// sources use are mapped to HIP's below. What the emulator cannot do (CUDA
// graphs) fails with a CUDA-style error at run time instead of not compiling.
#pragma once

#if defined(ADCORRE_CUDA_EMULATED)

#include <hip/hip_runtime.h>

#include <algorithm>
#include <cmath>

// CUDA's device functions that the kernels call unqualified, as nvcc offers them.
using std::isfinite;
using std::max;
using std::min;

// ---- types and constants
#define cudaError_t hipError_t
#define cudaSuccess hipSuccess
#define cudaErrorMemoryAllocation hipErrorOutOfMemory
#define cudaErrorNotSupported hipErrorNotSupported
#define cudaStream_t hipStream_t
#define cudaEvent_t hipEvent_t
#define cudaDeviceProp hipDeviceProp_t
#define cudaStreamNonBlocking hipStreamNonBlocking
#define cudaMemcpyHostToDevice hipMemcpyHostToDevice
#define cudaMemcpyDeviceToHost hipMemcpyDeviceToHost
#define cudaMemcpyDeviceToDevice hipMemcpyDeviceToDevice
// ---- runtime calls
#define cudaGetErrorName hipGetErrorName
#define cudaGetErrorString hipGetErrorString
#define cudaGetLastError hipGetLastError
#define cudaGetDeviceCount hipGetDeviceCount
#define cudaGetDeviceProperties hipGetDeviceProperties
#define cudaSetDevice hipSetDevice
#define cudaRuntimeGetVersion hipRuntimeGetVersion
#define cudaDriverGetVersion hipDriverGetVersion
#define cudaMalloc hipMalloc
#define cudaFree hipFree
#define cudaMallocHost hipHostMalloc
#define cudaFreeHost hipHostFree
#define cudaMemGetInfo hipMemGetInfo
#define cudaMemcpyAsync hipMemcpyAsync
#define cudaMemsetAsync hipMemsetAsync
#define cudaStreamCreateWithFlags hipStreamCreateWithFlags
#define cudaStreamDestroy hipStreamDestroy
#define cudaStreamSynchronize hipStreamSynchronize
#define cudaEventCreate hipEventCreate
#define cudaEventDestroy hipEventDestroy
#define cudaEventRecord hipEventRecord
#define cudaEventSynchronize hipEventSynchronize
#define cudaEventElapsedTime hipEventElapsedTime

// CUDA graphs have no HIP CPU counterpart: capture reports "not supported"
// (HostLoss::time with graph = true, ../engine/host_loss.h, then throws
// BackendError), so only the benchmark's graph mode is left to the GPU check.
struct adcorre_emulated_graph {};
using cudaGraph_t = adcorre_emulated_graph*;
using cudaGraphExec_t = adcorre_emulated_graph*;
enum { cudaStreamCaptureModeThreadLocal = 1 };
inline hipError_t cudaStreamBeginCapture(hipStream_t, int) { return hipErrorNotSupported; }
inline hipError_t cudaStreamEndCapture(hipStream_t, cudaGraph_t*) { return hipErrorNotSupported; }
inline hipError_t cudaGraphInstantiate(cudaGraphExec_t*, cudaGraph_t, unsigned long long) {
  return hipErrorNotSupported;
}
inline hipError_t cudaGraphDestroy(cudaGraph_t) { return hipErrorNotSupported; }
inline hipError_t cudaGraphLaunch(cudaGraphExec_t, hipStream_t) { return hipErrorNotSupported; }
inline hipError_t cudaGraphExecDestroy(cudaGraphExec_t) { return hipErrorNotSupported; }

// ---- warp intrinsics: HIP's have no member mask (the emulator runs whole
// warps in lock step at every shuffle, as a full mask asks for).
// Under emulation a shuffle is a barrier of the whole block, not of the warp
// (HIP-CPU's shuffle_xor: two Tile barriers around a per-warp scratchpad), and
// a block's threads are fibers that run one after another from barrier to
// barrier; they become fibers only once thread 0 reaches a barrier. So a
// kernel that returns early before a shuffle or __syncthreads runs correctly
// here only if thread 0 of every block does not return (and every thread
// that stays reaches the same barriers). The warp-per-row kernels
// (l2norm_forward/backward_kernel, normalise_rows_kernel, grad_rows_kernel)
// return early only for the rows past the end in the last block: thread 0's
// row, blockIdx.x * rows per block, is always in range. Keep it that way, or
// clamp the row and mask the stores instead of returning.
#define __shfl_xor_sync(mask, value, lane_mask) __shfl_xor((value), (lane_mask))

// ---- launches
#define ADCORRE_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  hipLaunchKernelGGL(kernel, grid, block, shared_bytes, stream, __VA_ARGS__)

#else  // nvcc

#include <cuda_runtime.h>

#define ADCORRE_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)

#endif
