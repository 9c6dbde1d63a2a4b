// Built instead of adcorre_cuda.cu when the addon is compiled without nvcc:
// the CUDA entry points exist and report that CUDA was not compiled in.
#include "../engine/backend.h"
#include "adcorre.h"

namespace adcorre {

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = false;
  info.error = "this build of adcorre-native was compiled without CUDA (nvcc was not found at build time)";
  return info;
}

bool cuda_usable() { return false; }

size_t cuda_workspace_bytes(const Shape&) { return 0; }

void cuda_loss(const CudaProblem&, void*, double*, float*, void*) { throw BackendError(cuda_info().error); }

LossParts cuda_loss_host(const float*, const int32_t*, const float*, const Shape&, const Weights&, float*) {
  throw BackendError(cuda_info().error);
}

std::vector<double> cuda_time_loss(const float*, const int32_t*, const float*, const Shape&, const Weights&, bool, int,
                                   bool) {
  throw BackendError(cuda_info().error);
}

}  // namespace adcorre

namespace adcorre::engine {

std::unique_ptr<Backend> make_cuda_backend(int) { throw BackendError(cuda_info().error); }

}  // namespace adcorre::engine
