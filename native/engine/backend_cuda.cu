// The CUDA backend: one GPU's memory, one stream, and the ops of
// ops_cuda.cuh and the Ad-Corre kernels of ../loss/adcorre_cuda.cu. It is
// the only owner of a CUDA stream in the addon: the training engine's
// executor and the standalone loss (host_loss.h) both run through it.
//
// Design note. The executor plans one block (cudaMalloc'd here) and queues
// every op on the backend's non-blocking stream; nothing here synchronises
// except synchronize() and the blocking copies the executor asks for, so a
// step runs as one stream of kernels with three small downloads at its end.
// The Ad-Corre class plan (samples sorted by class) is made on the host from
// the host labels and uploaded into the head of the loss workspace; its host
// copy lives in the backend until the next step, past the asynchronous upload.
// cudaSetDevice precedes every allocation, transfer and synchronisation (a
// process may drive several GPUs); the kernel launches rely on it, since
// every Executor entry point begins with one of those (an upload, a download
// or the allocation). A new entry point that starts with a kernel must set
// the device first.
#include <sstream>
#include <string>
#include <vector>

#include "backend.h"
#include "host_loss.h"
#include "ops_cuda.cuh"

namespace adcorre::engine {

namespace {

#define CUDA_CHECK(call) ADCORRE_CUDA_CHECK(call)

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    if (!cuda_usable()) throw BackendError("CUDA is not usable: " + cuda_info().error);
    int count = 0;
    CUDA_CHECK(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
      throw std::invalid_argument("CUDA device " + std::to_string(device) + " does not exist (this machine has " +
                                  std::to_string(count) + ")");
    CUDA_CHECK(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    name_ = "cuda:" + std::to_string(device_) + " (" + prop.name + ")";
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~CudaBackend() override {
    cudaSetDevice(device_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return name_; }

  void* try_allocate(size_t bytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    void* block = nullptr;
    const cudaError_t err = cudaMalloc(&block, bytes);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear the error so the process can go on using CUDA
      return nullptr;      // the executor reports the sizes and what to lower
    }
    // anything else (a broken context, a sticky fault) is not "out of memory"
    if (err != cudaSuccess) ::adcorre::cuda_common::throw_cuda_error(err, "cudaMalloc", __FILE__, __LINE__);
    return block;
  }
  void release(void* block) noexcept override {
    if (!block) return;
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    cudaFree(block);
  }
  std::string memory_state() const override {
    size_t free_b = 0, total_b = 0;
    cudaSetDevice(device_);
    cudaMemGetInfo(&free_b, &total_b);
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(1);
    s << free_b / 1048576.0 << " MiB of " << total_b / 1048576.0 << " MiB are free (or free the GPU)";
    return s.str();
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
  }
  void download(void* dst, const void* src, size_t bytes) override {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
  }
  void zero(void* dst, size_t bytes) override { CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream_)); }
  void synchronize() override {
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  size_t conv_scratch_floats(const ConvShape& shape) const override { return cuda::conv_scratch_floats(shape); }
  size_t loss_workspace_bytes(const Shape& s) const override { return LossLayout(s).kernels + cuda_workspace_bytes(s); }

  void standardize(int n, size_t per, const float* x, float* y, double eps) override {
    cuda::standardize(n, per, x, y, eps, stream_);
  }
  void conv_forward(const ConvShape& s, const float* x, const float* weight, float* y, float* scratch) override {
    cuda::conv_forward(s, x, weight, y, scratch, stream_);
  }
  void conv_backward(const ConvShape& s, const float* x, const float* weight, const float* dy, float* dx,
                     float* dweight, float* scratch) override {
    cuda::conv_backward(s, x, weight, dy, dx, dweight, scratch, stream_);
  }
  void batchnorm_forward_train(int n, int c, int hw, const float* x, const float* gamma, const float* beta, float* y,
                               float* mean, float* invstd, double eps, bool relu) override {
    cuda::batchnorm_forward_train(n, c, hw, x, gamma, beta, y, mean, invstd, eps, relu, stream_);
  }
  void batchnorm_forward_eval(int n, int c, int hw, const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y, double eps,
                              bool relu) override {
    cuda::batchnorm_forward_eval(n, c, hw, x, gamma, beta, running_mean, running_var, y, eps, relu, stream_);
  }
  void batchnorm_backward(int n, int c, int hw, const float* x, const float* gamma, const float* mean,
                          const float* invstd, const float* dy, float* dx, float* dgamma, float* dbeta,
                          const float* relu_output) override {
    cuda::batchnorm_backward(n, c, hw, x, gamma, mean, invstd, dy, dx, dgamma, dbeta, relu_output, stream_);
  }
  void batchnorm_commit(int c, const float* mean, const float* invstd, float* rm, float* rv, double momentum,
                        double eps) override {
    cuda::batchnorm_commit(c, mean, invstd, rm, rv, momentum, eps, stream_);
  }
  void relu_forward(size_t count, const float* x, float* y) override { cuda::relu_forward(count, x, y, stream_); }
  void relu_backward(size_t count, const float* y, const float* dy, float* dx) override {
    cuda::relu_backward(count, y, dy, dx, stream_);
  }
  void maxpool_forward(int n, int c, int h, int w, const float* x, float* y, int32_t* argmax) override {
    cuda::maxpool_forward(n, c, h, w, x, y, argmax, stream_);
  }
  void maxpool_backward(int n, int c, int h, int w, const int32_t* argmax, const float* dy, float* dx) override {
    cuda::maxpool_backward(n, c, h, w, argmax, dy, dx, stream_);
  }
  void gap_forward(int n, int c, int hw, const float* x, float* y) override {
    cuda::gap_forward(n, c, hw, x, y, stream_);
  }
  void gap_backward(int n, int c, int hw, const float* dy, float* dx) override {
    cuda::gap_backward(n, c, hw, dy, dx, stream_);
  }
  void dense_forward(int n, int in, int out, const float* x, const float* weight, const float* bias,
                     float* y) override {
    cuda::dense_forward(n, in, out, x, weight, bias, y, stream_);
  }
  void dense_backward(int n, int in, int out, const float* x, const float* weight, const float* dy, float* dx,
                      float* dweight, float* dbias) override {
    cuda::dense_backward(n, in, out, x, weight, dy, dx, dweight, dbias, stream_);
  }
  void l2norm_forward(int rows, int dim, const float* x, float* y, double eps) override {
    cuda::l2norm_forward(rows, dim, x, y, eps, stream_);
  }
  void l2norm_backward(int rows, int dim, const float* x, const float* y, const float* dy, float* dx,
                       double eps) override {
    cuda::l2norm_backward(rows, dim, x, y, dy, dx, eps, stream_);
  }
  void dropout_forward(size_t count, const float* x, float* y, float* mask, uint64_t seed, double rate) override {
    cuda::dropout_forward(count, x, y, mask, seed, rate, stream_);
  }

  void add(size_t count, const float* a, const float* b, float* y) override {
    cuda::add_forward(count, a, b, y, stream_);
  }
  void add_into(size_t count, const float* x, float* y) override { cuda::add_into(count, x, y, stream_); }
  void multiply(size_t count, const float* a, const float* b, float* y) override {
    cuda::multiply(count, a, b, y, stream_);
  }
  void copy(size_t count, const float* x, float* y) override {
    CUDA_CHECK(cudaMemcpyAsync(y, x, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  }
  void fill(size_t count, float* y, float value) override { cuda::fill(count, y, value, stream_); }
  void copy_columns(int rows, int f, const float* src, int src_stride, int src_offset, float* dst, int dst_stride,
                    int dst_offset, bool accumulate) override {
    cuda::copy_columns(rows, f, src, src_stride, src_offset, dst, dst_stride, dst_offset, accumulate, stream_);
  }
  void flag_nonfinite(size_t count, const float* x, int32_t* flag) override {
    cuda::flag_nonfinite(count, x, flag, stream_);
  }

  void softmax_ce_forward(int n, int classes, const float* logits, const int32_t* labels, const float* targets,
                          float* probs, double* losses) override {
    cuda::softmax_ce_forward(n, classes, logits, labels, targets, probs, losses, stream_);
  }
  void softmax_ce_backward(int n, int classes, const float* probs, const int32_t* labels, const float* targets,
                           double scale, float* dlogits) override {
    cuda::softmax_ce_backward(n, classes, probs, labels, targets, scale, dlogits, stream_);
  }
  void adcorre_loss(const AdcorreCall& call) override {
    const CudaProblem problem = stage_loss(call);
    cuda_loss(problem, static_cast<char*>(call.workspace) + LossLayout(call.shape).kernels, call.parts, call.grad,
              stream_);
  }

  // GPU microseconds of `reps` runs of the loss kernels on this stream, the
  // class plan uploaded once before them (host_loss.h: HostLoss::time).
  std::vector<double> time_loss(const AdcorreCall& call, int reps, bool graph) {
    CUDA_CHECK(cudaSetDevice(device_));
    const CudaProblem problem = stage_loss(call);
    void* kernels_workspace = static_cast<char*>(call.workspace) + LossLayout(call.shape).kernels;
    auto run = [&] { cuda_loss(problem, kernels_workspace, call.parts, call.grad, stream_); };
    cudaGraphExec_t exec = nullptr;
    if (graph) {
      cudaGraph_t captured;
      CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      run();
      CUDA_CHECK(cudaStreamEndCapture(stream_, &captured));
      CUDA_CHECK(cudaGraphInstantiate(&exec, captured, 0));
      CUDA_CHECK(cudaGraphDestroy(captured));
    }
    auto launch = [&] {
      if (exec)
        CUDA_CHECK(cudaGraphLaunch(exec, stream_));
      else
        run();
    };
    for (int i = 0; i < 3; ++i) launch();  // warm-up
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<double> times;
    for (int i = 0; i < reps; ++i) {
      CUDA_CHECK(cudaEventRecord(start, stream_));
      launch();
      CUDA_CHECK(cudaEventRecord(stop, stream_));
      CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.f;
      CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      times.push_back(ms * 1000.0);
    }
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    if (exec) CUDA_CHECK(cudaGraphExecDestroy(exec));
    return times;
  }

  void adam_update(size_t count, float* w, const float* g, float* m, float* v, double step, double beta1, double beta2,
                   double eps, double weight_decay) override {
    cuda::adam_update(count, w, g, m, v, step, beta1, beta2, eps, weight_decay, stream_);
  }
  void sgd_update(size_t count, float* w, const float* g, float* m, double lr, double momentum, double weight_decay,
                  bool nesterov) override {
    cuda::sgd_momentum_update(count, w, g, m, lr, momentum, weight_decay, nesterov, stream_);
  }

 private:
  // The loss workspace: [rho: c floats][class offsets: c + 1][order: n][the kernels' workspace], byte offsets.
  struct LossLayout {
    size_t offsets, order, kernels;
    explicit LossLayout(const Shape& s)
        : offsets(align_up(s.c * sizeof(float))),
          order(offsets + align_up((s.c + 1) * sizeof(int32_t))),
          kernels(order + align_up(s.n * sizeof(int32_t))) {}
  };

  // Makes the class plan on the host and uploads it, with rho, into the head of
  // the loss workspace: the kernels' problem. The uploads read host copies kept
  // in the backend until the next call; the previous call's are done, as the
  // executor and HostLoss synchronise at the end of every call (no wait here).
  CudaProblem stage_loss(const AdcorreCall& call) {
    const Shape& s = call.shape;
    plan_ = make_class_plan(call.labels_host, s.n, s.c);
    rho_.assign(s.c, 0.f);  // uniform attention where the caller has no accuracy
    if (call.rho_host) rho_.assign(call.rho_host, call.rho_host + s.c);
    char* ws = static_cast<char*>(call.workspace);
    const LossLayout at(s);
    float* rho = reinterpret_cast<float*>(ws);
    int32_t* offsets = reinterpret_cast<int32_t*>(ws + at.offsets);
    int32_t* order = reinterpret_cast<int32_t*>(ws + at.order);
    upload(rho, rho_.data(), s.c * sizeof(float));
    upload(offsets, plan_.offsets.data(), (s.c + 1) * sizeof(int32_t));
    upload(order, plan_.order.data(), s.n * sizeof(int32_t));
    CudaProblem problem;
    problem.E = call.embeddings;
    problem.labels = call.labels;
    problem.rho = rho;
    problem.order = order;
    problem.offsets = offsets;
    problem.shape = s;
    problem.weights = call.weights;
    problem.present = plan_.present;
    return problem;
  }

  int device_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  ClassPlan plan_;
  std::vector<float> rho_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) { return std::make_unique<CudaBackend>(device); }

std::vector<double> time_adcorre_loss(Backend& backend, const AdcorreCall& call, int reps, bool graph) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (!cuda)
    throw std::invalid_argument("Expected a CUDA backend for timing the Ad-Corre loss but received " + backend.name());
  return cuda->time_loss(call, reps, graph);
}

}  // namespace adcorre::engine
