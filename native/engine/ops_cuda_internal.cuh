// What the CUDA op files (ops_cuda_*.cu, the kernels of ops_cuda.cuh)
// share: the block size, the grid helpers and the launch check.
#pragma once

#include "ops_cuda.cuh"

namespace adcorre::engine::cuda {

#define CHECK_LAUNCH() ADCORRE_LAUNCH_CHECK("an engine kernel")

constexpr int kThreads = kBlockThreads;
using cuda_common::grid_for;
using cuda_common::grid_for_strided;

}  // namespace adcorre::engine::cuda
