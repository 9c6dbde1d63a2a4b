// Built instead of backend_cuda.cu when the addon is compiled without nvcc:
// the CUDA backend's entry points exist and say that CUDA was not compiled in
// (../common/cuda_devices_absent.cpp gives the reason).
#include "backend.h"
#include "host_loss.h"

namespace adcorre::engine {

std::unique_ptr<Backend> make_cuda_backend(int) { throw BackendError(cuda_info().error); }

std::vector<double> time_adcorre_loss(Backend&, const AdcorreCall&, int, bool) {
  throw BackendError(cuda_info().error);
}

}  // namespace adcorre::engine
