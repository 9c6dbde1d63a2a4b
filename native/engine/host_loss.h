// The standalone Ad-Corre loss (the N-API loss(), lossAsync() and cudaTime())
// on host arrays, run by an engine Backend: the CPU/CUDA choice is the choice
// of backend, CpuBackend and CudaBackend call the loss kernels, and a
// CudaBackend owns the only CUDA stream, as it does for the training engine.
//
// Design note. A HostLoss holds one backend and, on CUDA, one block of device
// memory grown to the largest batch seen (at least 1 MiB), into which each call
// uploads the embeddings and labels; the result and the gradient come back
// before run() returns. On the CPU the caller's arrays are the backend's
// memory, so nothing is copied. A HostLoss is not thread-safe: the N-API glue
// keeps one per thread for the CPU and one behind a mutex for CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../loss/adcorre.h"
#include "backend.h"

namespace adcorre::engine {

class HostLoss {
 public:
  // device < 0: the CPU; else CUDA device `device` (BackendError where CUDA
  // is not compiled in or not usable, std::invalid_argument for no such device).
  explicit HostLoss(int device);
  ~HostLoss();
  HostLoss(const HostLoss&) = delete;
  HostLoss& operator=(const HostLoss&) = delete;

  // Forward, and backward into grad (E's layout) when grad != nullptr. E is
  // [k][n][d], or [n][k][d] with s.sample_major; labels [n] in [0, s.c);
  // rho [s.c] (1 - class accuracy) or null for uniform attention.
  LossParts run(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w, float* grad);
  // Benchmark helper (CUDA only): GPU microseconds (CUDA events, inputs already
  // uploaded) of `reps` forward(+backward) runs, launched one by one or replayed
  // as a captured CUDA graph.
  std::vector<double> time(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w,
                           bool grad, int reps, bool graph);

 private:
  AdcorreCall stage(const float* E, const int32_t* labels, const float* rho, const Shape& s, const Weights& w,
                    bool grad);
  void reserve(size_t bytes);

  std::unique_ptr<Backend> backend_;
  bool on_host_;  // the CPU backend: its memory is the host's
  void* block_ = nullptr;
  size_t block_bytes_ = 0;
  double host_parts_[4] = {0, 0, 0, 0};  // {loss, fd, md, ed} where the backend's memory is the host's
};

// Times call on a CUDA backend's stream (HostLoss::time); implemented by
// backend_cuda.cu. std::invalid_argument for another backend, BackendError
// where CUDA is not compiled in.
std::vector<double> time_adcorre_loss(Backend& cuda, const AdcorreCall& call, int reps, bool graph);

}  // namespace adcorre::engine
