// HostLoss (host_loss.h): the standalone Ad-Corre loss staged through a Backend.
#include "host_loss.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace adcorre::engine {

HostLoss::HostLoss(int device)
    : backend_(device < 0 ? make_cpu_backend() : make_cuda_backend(device)), on_host_(device < 0) {}

HostLoss::~HostLoss() {
  if (block_) backend_->release(block_);
}

// Grows the device block to hold `bytes` (never less than 1 MiB, so that small
// batches of different sizes reuse one allocation).
void HostLoss::reserve(size_t bytes) {
  if (block_bytes_ >= bytes) return;
  if (block_) backend_->release(block_);
  block_ = nullptr;
  block_bytes_ = 0;
  const size_t want = std::max(bytes, size_t(1) << 20);
  block_ = backend_->try_allocate(want);
  if (!block_)
    throw BackendError("CUDA out of memory: the Ad-Corre loss needs " + std::to_string(want) +
                       " bytes on the GPU but only " + backend_->memory_state());
  block_bytes_ = want;
}

// The call's arrays in the backend's memory: the caller's own on the CPU; on
// CUDA, the block laid out as [E][grad][labels][parts][loss workspace], with E
// and the labels uploaded (queued on the backend's stream).
AdcorreCall HostLoss::stage(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w,
                            bool grad) {
  AdcorreCall call{};
  call.labels_host = labels;
  call.rho_host = rho;
  call.shape = s;
  call.weights = w;
  if (on_host_) {
    call.embeddings = E;
    call.labels = labels;
    call.parts = host_parts_;
    call.workspace = nullptr;  // CpuBackend::loss_workspace_bytes is 0: CpuLoss keeps its own
    return call;
  }
  const size_t e_bytes = static_cast<size_t>(s.k) * s.n * s.d * sizeof(float);
  const size_t label_bytes = static_cast<size_t>(s.n) * sizeof(int32_t);
  const size_t parts_bytes = 4 * sizeof(double);
  const size_t work_bytes = backend_->loss_workspace_bytes(s);
  reserve(2 * align_up(e_bytes) + align_up(label_bytes) + align_up(parts_bytes) + work_bytes);
  char* cursor = static_cast<char*>(block_);
  auto take = [&](size_t bytes) {
    char* at = cursor;
    cursor += align_up(bytes);
    return at;
  };
  float* device_E = reinterpret_cast<float*>(take(e_bytes));
  float* device_grad = reinterpret_cast<float*>(take(e_bytes));
  int32_t* device_labels = reinterpret_cast<int32_t*>(take(label_bytes));
  call.parts = reinterpret_cast<double*>(take(parts_bytes));
  call.workspace = take(work_bytes);
  backend_->upload(device_E, E, e_bytes);
  backend_->upload(device_labels, labels, label_bytes);
  call.embeddings = device_E;
  call.labels = device_labels;
  call.grad = grad ? device_grad : nullptr;
  return call;
}

LossParts HostLoss::run(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w,
                        float* grad) {
  AdcorreCall call = stage(E, labels, rho, s, w, grad != nullptr);
  if (on_host_) call.grad = grad;
  backend_->adcorre_loss(call);
  if (!on_host_) {
    backend_->download(host_parts_, call.parts, sizeof(host_parts_));
    if (grad) backend_->download(grad, call.grad, static_cast<size_t>(s.k) * s.n * s.d * sizeof(float));
    backend_->synchronize();
  }
  LossParts out;
  out.loss = host_parts_[0];
  out.fd = host_parts_[1];
  out.md = host_parts_[2];
  out.ed = host_parts_[3];
  return out;
}

std::vector<double> HostLoss::time(const float* E, const int32_t* labels, const float* rho, const Shape& s,
                                   const Weights& w, bool grad, int reps, bool graph) {
  if (on_host_)
    throw std::invalid_argument("Expected a CUDA device for timing the Ad-Corre loss but received " + backend_->name());
  return time_adcorre_loss(*backend_, stage(E, labels, rho, s, w, grad), reps, graph);
}

}  // namespace adcorre::engine
