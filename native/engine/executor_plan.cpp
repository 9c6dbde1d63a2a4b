// The executor's plan (engine.h): what it works out once, at construction,
// from the program: every tensor's shape (the op table's shape rules), how
// each gradient flows, which batch norms run fused with their ReLU, and one
// block of backend memory for every buffer of a step. executor.cpp walks the
// program with it.
#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "engine.h"

namespace adcorre::engine {

TensorShapes infer_shapes(const ProgramDesc& p) {
  const int T = p.tensors;
  std::vector<Dims> dims(T);
  dims[p.input] = {p.channels, p.size, p.size};
  TensorShapes s;
  for (const OpDesc& op : p.ops) {
    s.ops.push_back(op_geometry(op, dims));
    dims[op.output] = s.ops.back().out;
  }
  s.c.resize(T);
  s.h.resize(T);
  s.w.resize(T);
  s.per_sample.resize(T);
  for (int t = 0; t < T; ++t) {
    s.c[t] = dims[t].c;
    s.h[t] = dims[t].h;
    s.w[t] = dims[t].w;
    s.per_sample[t] = static_cast<size_t>(dims[t].c) * dims[t].h * dims[t].w;
  }
  return s;
}

std::vector<GradientFlow> gradient_flow(const ProgramDesc& p) {
  std::vector<int> readers(p.tensors, 0);
  // Tensors that depend on no parameter (the image and the input pipeline's
  // output): nobody needs their gradient.
  std::vector<bool> constant(p.tensors, false);
  constant[p.input] = true;
  for (const OpDesc& op : p.ops) {
    bool c = op.param < 0;
    for (int t : op.inputs) c = c && constant[t];
    constant[op.output] = c;
  }
  for (const OpDesc& op : p.ops)
    if (op.kind != OpKind::Softmax && !constant[op.output])  // read by a backward that runs
      for (int t : op.inputs) readers[t]++;
  std::vector<GradientFlow> flow(p.tensors, GradientFlow::Accumulate);
  for (int t = 0; t < p.tensors; ++t)
    if (readers[t] == 1 && t != p.logits && t != p.embeddings) flow[t] = GradientFlow::Direct;
  // A constant tensor read only by ordinary convolutions (Xception's entry
  // convolution reads the standardised image) is skipped: those convolutions
  // skip the input-gradient GEMM. Any other reader keeps it computed.
  for (int t = 0; t < p.tensors; ++t) {
    if (!constant[t]) continue;
    bool conv_only = true;
    for (const OpDesc& op : p.ops)
      if (!constant[op.output])
        for (int in : op.inputs)
          if (in == t && (op.kind != OpKind::Conv || op.depthwise)) conv_only = false;
    if (conv_only) flow[t] = GradientFlow::Skip;
  }
  return flow;
}

namespace {

double mib(size_t bytes) { return bytes / 1048576.0; }

// Lays buffers out in one block (each kBufferAlignment-aligned), by category
// for the out-of-memory message.
class Arena {
 public:
  enum Category { kActivations, kParameters, kWorkspace };
  template <typename T>
  void add(T** where, size_t count, Category c) {
    const size_t bytes = align_up(count * sizeof(T));
    items_.push_back({reinterpret_cast<void**>(where), total_});
    total_ += bytes;
    by_category_[c] += bytes;
  }
  size_t total() const { return total_; }
  size_t bytes(Category c) const { return by_category_[c]; }
  void place(char* base) {
    for (const auto& it : items_) *it.where = base + it.offset;
  }

 private:
  struct Item {
    void** where;
    size_t offset;
  };
  std::vector<Item> items_;
  size_t total_ = 0;
  size_t by_category_[3] = {0, 0, 0};
};

}  // namespace

Executor::Executor(ProgramDesc program, int max_batch, std::unique_ptr<Backend> backend)
    : p_(std::move(program)),
      max_batch_(max_batch),
      backend_(std::move(backend)),
      sh_(infer_shapes(p_)),
      flow_(gradient_flow(p_)) {
  if (max_batch < 1) throw std::invalid_argument("max_batch must be >= 1");
  plan_fusion();
  plan_memory();
  try {
    backend_->zero(block_, block_bytes_);
    backend_->synchronize();
  } catch (...) {
    backend_->release(block_);  // a constructor that throws gets no destructor call
    throw;
  }
  probs_h_.resize(static_cast<size_t>(max_batch_) * p_.classes);
  losses_h_.resize(max_batch_);
}

Executor::~Executor() { backend_->release(block_); }

void Executor::plan_fusion() {
  // Batch norm + ReLU in one pass forward and one backward, where nothing
  // but the ReLU reads the batch norm's output (Xception: after every
  // convolution of the entry flow, and between separable convolutions).
  const size_t ops = p_.ops.size();
  fused_relu_.assign(ops, -1);
  fused_into_.assign(ops, -1);
  std::vector<int> readers(p_.tensors, 0), reader(p_.tensors, -1);
  for (size_t j = 0; j < ops; ++j)
    for (int t : p_.ops[j].inputs) {
      readers[t]++;
      reader[t] = static_cast<int>(j);
    }
  for (size_t i = 0; i < ops; ++i) {
    const int y = p_.ops[i].output;
    if (p_.ops[i].kind != OpKind::BatchNorm || readers[y] != 1 || y == p_.logits || y == p_.embeddings) continue;
    const int j = reader[y];
    if (p_.ops[j].kind != OpKind::Relu) continue;
    fused_relu_[i] = j;
    fused_into_[j] = static_cast<int>(i);
  }
}

void Executor::plan_memory() {
  Arena a;
  const int T = p_.tensors;
  const size_t B = max_batch_;
  act_.assign(T, nullptr);
  dact_.assign(T, nullptr);
  size_t largest = 0;
  for (int t = 0; t < T; ++t) {
    a.add(&act_[t], sh_.per_sample[t] * B, Arena::kActivations);
    a.add(&dact_[t], sh_.per_sample[t] * B, Arena::kActivations);
    largest = std::max(largest, sh_.per_sample[t] * B);
  }
  for (size_t s : p_.param_sizes) param_floats_ += s;
  float *params_all = nullptr, *m_all = nullptr, *v_all = nullptr;
  a.add(&params_all, param_floats_, Arena::kParameters);
  a.add(&grads_all_, param_floats_, Arena::kParameters);
  a.add(&m_all, param_floats_, Arena::kParameters);
  a.add(&v_all, param_floats_, Arena::kParameters);
  saved_.assign(p_.ops.size(), nullptr);
  argmax_.assign(p_.ops.size(), nullptr);
  size_t conv_scratch = 1;
  for (size_t i = 0; i < p_.ops.size(); ++i) {
    const OpDesc& op = p_.ops[i];
    // a batch norm's channels from the shapes, as forward and backward take them (not op.out_c)
    if (op.kind == OpKind::BatchNorm)
      a.add(&saved_[i], 2 * static_cast<size_t>(sh_.c[op.inputs[0]]), Arena::kActivations);
    if (op.kind == OpKind::Dropout) a.add(&saved_[i], sh_.per_sample[op.output] * B, Arena::kActivations);
    if (op.kind == OpKind::MaxPool) a.add(&argmax_[i], sh_.per_sample[op.output] * B, Arena::kActivations);
    if (op.kind == OpKind::Conv)
      conv_scratch = std::max(conv_scratch, backend_->conv_scratch_floats(conv_shape(op, max_batch_)));
  }
  const int C = p_.classes;
  char* loss_ws = nullptr;
  a.add(&scratch_, conv_scratch, Arena::kWorkspace);
  a.add(&dx_, largest, Arena::kWorkspace);
  a.add(&labels_, B, Arena::kWorkspace);
  a.add(&zero_labels_, B, Arena::kWorkspace);
  a.add(&probs_, B * C, Arena::kWorkspace);
  a.add(&targets_, B * C, Arena::kWorkspace);
  a.add(&losses_, B, Arena::kWorkspace);
  a.add(&loss_ws, std::max<size_t>(1, backend_->loss_workspace_bytes(Shape{p_.k, max_batch_, p_.d, C, true})),
        Arena::kWorkspace);
  a.add(&parts_, 4, Arena::kWorkspace);
  a.add(&flags_, 1 + p_.ops.size(), Arena::kWorkspace);

  block_bytes_ = a.total();
  block_ = backend_->try_allocate(block_bytes_);
  if (!block_) {
    std::ostringstream msg;
    msg.setf(std::ios::fixed);
    msg.precision(1);
    msg << "Out of memory on " << backend_->name() << ": the training engine needs " << mib(block_bytes_)
        << " MiB for batches of " << max_batch_ << " (activations and their gradients "
        << mib(a.bytes(Arena::kActivations)) << " MiB, parameters, gradients and optimizer moments "
        << mib(a.bytes(Arena::kParameters)) << " MiB, workspace " << mib(a.bytes(Arena::kWorkspace)) << " MiB); "
        << backend_->memory_state() << ". Lower the batch size or the input size";
    throw BackendError(msg.str());
  }
  a.place(static_cast<char*>(block_));
  loss_ws_ = loss_ws;
  const size_t P = p_.param_sizes.size();
  params_.resize(P);
  grads_.resize(P);
  m_.resize(P);
  v_.resize(P);
  size_t at = 0;
  for (size_t i = 0; i < P; ++i) {
    params_[i] = params_all + at;
    grads_[i] = grads_all_ + at;
    m_[i] = m_all + at;
    v_[i] = v_all + at;
    at += p_.param_sizes[i];
  }
}

void Executor::upload(float* dst, const float* src, size_t count) {
  backend_->upload(dst, src, count * sizeof(float));
  backend_->synchronize();
}

void Executor::download(float* dst, const float* src, size_t count) {
  backend_->download(dst, src, count * sizeof(float));
  backend_->synchronize();
}

void Executor::read_moments(size_t i, float* m, float* v) {
  backend_->download(m, m_[i], p_.param_sizes[i] * sizeof(float));
  backend_->download(v, v_[i], p_.param_sizes[i] * sizeof(float));
  backend_->synchronize();
}

void Executor::write_moments(size_t i, const float* m, const float* v) {
  backend_->upload(m_[i], m, p_.param_sizes[i] * sizeof(float));
  backend_->upload(v_[i], v, p_.param_sizes[i] * sizeof(float));
  backend_->synchronize();
}

ConvShape Executor::conv_shape(const OpDesc& op, int n) const {
  const int x = op.inputs[0];
  return make_conv_shape(n, sh_.c[x], sh_.h[x], sh_.w[x], op.out_c, op.kernel, op.stride, op.same, op.depthwise);
}

}  // namespace adcorre::engine
