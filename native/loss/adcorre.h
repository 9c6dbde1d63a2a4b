// Ad-Corre loss: one declaration, two implementations (CPU in adcorre_cpu.cpp,
// CUDA in adcorre_cuda.cu). Both take raw pointers (and, on CUDA, a stream and
// device memory); the engine's backends (../engine/backend_cpu.cpp,
// backend_cuda.cu) are their only callers, for the training engine and, through
// ../engine/host_loss.h, for the standalone loss of the N-API glue alike. The
// CUDA runtime plumbing (device discovery, BackendError, error checks) is in
// ../common.
//
// Layout: embeddings E are float32 [k][n][d] row-major (head, sample, dim),
// or [n][k][d] (sample, head, dim: the training engine's layout, which the
// network's reshape produces) when Shape::sample_major is set; the gradient
// has E's layout. Labels are int32 [n] in [0, C); rho[c] = 1 - classAccuracy[c] (all 0 when
// the caller has no accuracy, i.e. uniform attention). The math and its
// derivation are in docs/loss-derivation.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../common/backend_error.h"
#include "../common/host_device.h"

namespace adcorre {

// eps inside the norm of a centred vector: n = sqrt(sum of squares + eps).
constexpr double kEps = 1e-8;

struct Shape {
  int k = 0;                  // embedding heads
  int n = 0;                  // samples in the batch
  int d = 0;                  // dimensions of one embedding
  int c = 0;                  // number of classes
  bool sample_major = false;  // E is [n][k][d] instead of [k][n][d]
};

// Row (in units of d floats) of head j, sample a in E's layout.
ADCORRE_HOST_DEVICE inline size_t embedding_row(const Shape& s, int j, int a) {
  return s.sample_major ? static_cast<size_t>(a) * s.k + j : static_cast<size_t>(j) * s.n + a;
}

struct Weights {
  double fd = 1.0;
  double md = 1.0;
  double ed = 1.0;
};

struct LossParts {
  double loss = 0.0;  // wFD*fd + wMD*md + wED*ed
  double fd = 0.0;
  double md = 0.0;
  double ed = 0.0;
};

// The class membership of a batch, sorted once on the host: order[] lists the
// samples class by class and offsets[c]..offsets[c+1] is class c's slice.
// Both backends use it (the CUDA kernels reduce each class slice in a fixed
// order, which keeps them deterministic).
struct ClassPlan {
  std::vector<int32_t> order;    // n
  std::vector<int32_t> offsets;  // c + 1
  int present = 0;               // classes with at least one sample (P)
};
ClassPlan make_class_plan(const int32_t* labels, int n, int c);

// ---------------------------------------------------------------- CPU backend

struct CpuWorkspace;  // intermediate tensors kept from forward for backward

class CpuLoss {
 public:
  CpuLoss();
  ~CpuLoss();
  CpuLoss(const CpuLoss&) = delete;
  CpuLoss& operator=(const CpuLoss&) = delete;

  // Forward: the loss parts. Keeps what backward needs in the workspace.
  LossParts forward(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w);
  // Backward of the last forward: writes dLoss/dE (same layout as E).
  void backward(float* grad);

 private:
  CpuWorkspace* ws_;
};

// ---------------------------------------------------------------- CUDA backend

// Device pointers for one call. plan_* are copies of ClassPlan on the device.
struct CudaProblem {
  const float* E = nullptr;          // [k][n][d], or [n][k][d] when shape.sample_major
  const int32_t* labels = nullptr;   // [n]
  const float* rho = nullptr;        // [c]
  const int32_t* order = nullptr;    // [n]
  const int32_t* offsets = nullptr;  // [c + 1]
  Shape shape;
  Weights weights;
  int present = 0;
};

// Scratch memory for the CUDA kernels, sized by cuda_workspace_bytes().
size_t cuda_workspace_bytes(const Shape& s);

// Runs forward (and backward when grad != nullptr) on `stream`
// (a cudaStream_t, passed as void* so this header needs no CUDA headers).
// result_device receives 4 doubles {loss, fd, md, ed} in device memory.
// Throws BackendError for a failed CUDA call.
void cuda_loss(const CudaProblem& p, void* workspace, double* result_device, float* grad, void* stream);

}  // namespace adcorre
