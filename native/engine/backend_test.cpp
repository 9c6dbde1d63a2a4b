// Backend conformance (ggml's test-backend-ops): every op of the op table
// (op_table.h) on every backend, through the Backend interface (backend.h)
// exactly as the executor calls it, on fresh random inputs with odd sizes:
//   - the CPU backend (float) against the float64 reference, the double
//     instantiation of ops.h (whose backward passes are checked against
//     finite differences by ops_test.cpp) or a plain double loop for the
//     plumbing ops; tolerance: relative norm error <= 1e-5;
//   - every other backend present (CUDA devices, or the CUDA kernels on the
//     CPU in the emulated build: npm run test:cuda-emulated) against the CPU
//     backend on the same inputs; tolerance <= 1e-4 (other summation orders).
// Integer outputs (max-pool switches, finiteness flags) and dropout masks must
// match exactly. Prints one line per check, "op <name>: N checks" per op of
// the table, and "N passed, M failed".
//
// Adding an op (the whole list: native/README.md): give it an entry in
// kOpCases below, its cases in the backend_test_*.cpp of its family (forward
// and backward, odd sizes, a shape past one CUDA block where it loops), and
// declare them in backend_test.h. Until then this test fails, naming the op.
#include "backend_test.h"

using namespace adcorre;
using namespace adcorre::engine;
using namespace adcorre::engine::conformance;

namespace {

// Every op of the op table and the cases that run its kernels.
struct OpCases {
  OpKind kind;
  void (*run)();
};
const OpCases kOpCases[] = {
    {OpKind::Standardize, standardize_cases},
    {OpKind::Conv, conv_cases},
    {OpKind::BatchNorm, batchnorm_cases},
    {OpKind::Relu, relu_cases},
    {OpKind::MaxPool, maxpool_cases},
    {OpKind::Add, add_cases},
    {OpKind::Gap, gap_cases},
    {OpKind::Dense, dense_cases},
    {OpKind::L2Norm, l2norm_cases},
    {OpKind::Concat, concat_cases},
    {OpKind::Dropout, dropout_cases},
    {OpKind::Softmax, softmax_cases},
};

// The executor's kernels that belong to no op of the table.
const std::pair<const char*, void (*)()> kExecutorCases[] = {
    {"finiteness flags", nonfinite_cases},
    {"Ad-Corre loss", adcorre_cases},
    {"optimizers", optimizer_cases},
};

// Runs f, printing how many checks it made under `title`; false when it made none.
template <typename F>
bool counted(const std::string& title, F f) {
  const int before = passed + failed;
  f();
  const int checks = passed + failed - before;
  std::printf("%s: %d checks\n", title.c_str(), checks);
  return checks > 0;
}

}  // namespace

int main() {
  const CudaInfo cuda = cuda_info();
  for (size_t i = 0; i < cuda.devices.size(); ++i) {
    try {
      others.push_back(make_cuda_backend(static_cast<int>(i)));
    } catch (const std::exception& e) {
      std::printf("FAIL cuda:%zu could not start: %s\n", i, e.what());
      failed++;
    }
  }
  std::string names = "cpu";
  for (auto& b : others) names += ", " + b->name();
  if (others.empty()) names += " (no other backend here: " + (cuda.error.empty() ? "no CUDA device" : cuda.error) + ")";
  std::printf("backends: %s\n", names.c_str());
  try {
    for (const OpInfo& op : kOpTable) {
      const OpCases* cases = nullptr;
      for (const OpCases& c : kOpCases)
        if (c.kind == op.kind) cases = &c;
      const std::string title = std::string("op ") + op.name;
      if (!cases || !counted(title, cases->run)) {
        std::printf("FAIL %s has no conformance case: add its cases to kOpCases (native/engine/backend_test.cpp)\n",
                    title.c_str());
        failed++;
      }
    }
    for (const auto& [title, run] : kExecutorCases) counted(title, run);
    for (auto& b : others) b->synchronize();
  } catch (const std::exception& e) {
    std::printf("FAIL %s\n", e.what());
    failed++;
  }
  // Backends go before main returns, not among the static destructors: the HIP CPU Runtime
  // (the emulated build) is torn down by then and destroying a stream then never returns.
  others.clear();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
