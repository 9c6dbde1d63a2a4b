// The GEMM every convolution and dense layer of the CUDA backend runs
// (ops_cuda.cuh): 64x64 tiles of C, 4x4 outputs per thread, transposes read
// by index; a fixed summation order, so results repeat run to run.
#include "ops_cuda_internal.cuh"

namespace adcorre::engine::cuda {

namespace {

constexpr int TM = 64, TN = 64, TK = 16;

__global__ void gemm_kernel(bool ta, bool tb, int M, int N, int K, const float* __restrict__ A,
                            const float* __restrict__ B, float* __restrict__ C, bool accumulate) {
  __shared__ float As[TK][TM + 1];
  __shared__ float Bs[TK][TN + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int row0 = blockIdx.y * TM, col0 = blockIdx.x * TN;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int i = threadIdx.x; i < TK * TM; i += 256) {
      const int kk = i / TM, mm = i % TM;
      const int r = row0 + mm, k = k0 + kk;
      As[kk][mm] =
          (r < M && k < K) ? (ta ? A[static_cast<size_t>(k) * M + r] : A[static_cast<size_t>(r) * K + k]) : 0.f;
    }
    for (int i = threadIdx.x; i < TK * TN; i += 256) {
      const int kk = i / TN, nn = i % TN;
      const int c = col0 + nn, k = k0 + kk;
      Bs[kk][nn] =
          (c < N && k < K) ? (tb ? B[static_cast<size_t>(c) * K + k] : B[static_cast<size_t>(k) * N + c]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < TK; ++kk) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i) {
    const int r = row0 + ty * 4 + i;
    if (r >= M) continue;
    for (int j = 0; j < 4; ++j) {
      const int c = col0 + tx * 4 + j;
      if (c >= N) continue;
      float* out = C + static_cast<size_t>(r) * N + c;
      *out = accumulate ? *out + acc[i][j] : acc[i][j];
    }
  }
}

}  // namespace

void gemm(bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float* C, bool accumulate,
          cudaStream_t s) {
  dim3 grid((N + TN - 1) / TN, (M + TM - 1) / TM);
  ADCORRE_LAUNCH(gemm_kernel, grid, 256, 0, s, ta, tb, M, N, K, A, B, C, accumulate);
  CHECK_LAUNCH();
}

}  // namespace adcorre::engine::cuda
