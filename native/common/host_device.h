// ADCORRE_HOST_DEVICE marks small inline helpers that both the CPU code and
// CUDA kernels call (one definition for both sides).
#pragma once

#ifdef __CUDACC__
#define ADCORRE_HOST_DEVICE __host__ __device__
#else
#define ADCORRE_HOST_DEVICE
#endif
