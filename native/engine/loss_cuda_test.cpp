// The Ad-Corre CUDA kernels (../loss/adcorre_cuda.cu), run as the standalone
// loss runs them (HostLoss on a CudaBackend, host_loss.h), against the CPU loss
// and the float64 golden cases, built only under emulation (CMake option
// ADCORRE_CUDA_EMULATED; scripts/cuda-emulated.sh runs it), where the kernels
// execute on the CPU under the HIP CPU Runtime. The same program runs on a GPU
// build too. Tolerances are the CPU tests' (test/golden.test.js, test/cuda.test.js):
// loss parts relative error <= 1e-5, gradient ||g - g_ref|| / ||g_ref|| <= 1e-4.
//   adcorre_loss_cuda_test [golden.txt]   (golden.txt: the script's flat copy of
//                                          ../shared/golden/adcorre-cases.json)
// Also prints the drift of the float kernels from the CPU's double result at the
// paper's size (k 7, n 50, d 256) and at n 4096 (native/KERNELS.md).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../common/cuda_devices.h"
#include "../loss/adcorre.h"
#include "host_loss.h"

using namespace adcorre;
using engine::HostLoss;

namespace {

int passed = 0, failed = 0;

void report(bool ok, const std::string& what) {
  (ok ? passed : failed)++;
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
}

double rel(double v, double ref) { return ref == 0 ? std::fabs(v) : std::fabs(v - ref) / std::fabs(ref); }
double norm_error(const std::vector<float>& g, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(g[i])) return INFINITY;
    num += (g[i] - ref[i]) * (g[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

struct Errors {
  double fd, md, ed, loss, grad;
};

// CUDA against a reference (parts and gradient in double).
Errors compare(const LossParts& got, const std::vector<float>& grad, const LossParts& want,
               const std::vector<double>& want_grad) {
  return {rel(got.fd, want.fd), rel(got.md, want.md), rel(got.ed, want.ed), rel(got.loss, want.loss),
          norm_error(grad, want_grad)};
}

bool within(const Errors& e, bool with_grad) {
  return e.fd <= 1e-5 && e.md <= 1e-5 && e.ed <= 1e-5 && e.loss <= 1e-5 && (!with_grad || e.grad <= 1e-4);
}

std::string describe(const Errors& e) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "(fd %.1e, md %.1e, ed %.1e, loss %.1e, gradient %.1e)", e.fd, e.md, e.ed, e.loss,
                e.grad);
  return buf;
}

struct Case {
  Shape s;
  std::vector<float> e, rho;
  std::vector<int32_t> labels;
  Weights w;
};

// The CPU loss on the case: parts and gradient (in E's layout). The CPU takes [k][n][d].
LossParts cpu(const Case& c, std::vector<double>* grad) {
  const Shape& s = c.s;
  const size_t rows = static_cast<size_t>(s.k) * s.n, d = s.d;
  std::vector<float> heads(c.e.size()), g(c.e.size());
  for (int j = 0; j < s.k; ++j)
    for (int a = 0; a < s.n; ++a)
      std::memcpy(&heads[(static_cast<size_t>(j) * s.n + a) * d], &c.e[embedding_row(s, j, a) * d], d * 4);
  CpuLoss loss;
  Shape head_major = s;
  head_major.sample_major = false;
  const LossParts p =
      loss.forward(heads.data(), c.labels.data(), c.rho.empty() ? nullptr : c.rho.data(), head_major, c.w);
  if (grad) {
    loss.backward(g.data());
    grad->assign(rows * d, 0.0);
    for (int j = 0; j < s.k; ++j)
      for (int a = 0; a < s.n; ++a)
        for (size_t t = 0; t < d; ++t)
          (*grad)[embedding_row(s, j, a) * d + t] = g[(static_cast<size_t>(j) * s.n + a) * d + t];
  }
  return p;
}

HostLoss& gpu_loss() {
  static HostLoss* loss = new HostLoss(0);  // never destroyed: CUDA may be torn down first at exit
  return *loss;
}

LossParts gpu(const Case& c, std::vector<float>* grad) {
  if (grad) grad->assign(c.e.size(), NAN);
  return gpu_loss().run(c.e.data(), c.labels.data(), c.rho.empty() ? nullptr : c.rho.data(), c.s, c.w,
                        grad ? grad->data() : nullptr);
}

std::mt19937 rng(29);

Case random_case(int k, int n, int d, int C, bool sample_major, bool attention, int present, Weights w) {
  Case c;
  c.s = Shape{k, n, d, C, sample_major};
  std::normal_distribution<float> nd(0.f, 1.f);
  c.e.resize(static_cast<size_t>(k) * n * d);
  for (auto& v : c.e) v = nd(rng);
  c.labels.resize(n);
  for (int a = 0; a < n; ++a) c.labels[a] = (a * 5 + a / 3) % present;  // classes >= present are absent
  if (attention) {
    c.rho.resize(C);
    for (int i = 0; i < C; ++i) c.rho[i] = 0.05f + 0.11f * i;
  }
  c.w = w;
  return c;
}

void against_cpu(const std::string& name, const Case& c) {
  std::vector<double> want_grad;
  const LossParts want = cpu(c, &want_grad);
  std::vector<float> grad;
  const LossParts got = gpu(c, &grad);
  const Errors e = compare(got, grad, want, want_grad);
  report(within(e, true), "cuda " + name + " = cpu " + describe(e));
  // forward only (grad == nullptr): the same parts
  const LossParts fwd = gpu(c, nullptr);
  const Errors f = compare(fwd, grad, want, want_grad);
  report(within(f, false), "cuda " + name + " forward only = cpu " + describe(f));
}

// The golden file: per case a line "k n d C", then labels, classAccuracy, embeddings, "fd md ed", grad.
bool golden(const char* path) {
  std::ifstream in(path);
  if (!in) {
    std::printf("FAIL golden cases: cannot read %s\n", path);
    failed++;
    return false;
  }
  int cases = 0;
  in >> cases;
  for (int i = 0; i < cases; ++i) {
    Case c;
    std::string note;
    in >> note >> c.s.k >> c.s.n >> c.s.d >> c.s.c;
    const size_t count = static_cast<size_t>(c.s.k) * c.s.n * c.s.d;
    c.labels.resize(c.s.n);
    for (auto& l : c.labels) in >> l;
    c.rho.resize(c.s.c);
    for (auto& r : c.rho) {
      double acc;
      in >> acc;
      r = static_cast<float>(1.0 - acc);
    }
    c.e.resize(count);
    for (auto& v : c.e) in >> v;
    LossParts want;
    in >> want.fd >> want.md >> want.ed;
    want.loss = want.fd + want.md + want.ed;
    std::vector<double> want_grad(count);
    for (auto& v : want_grad) in >> v;
    if (!in) {
      std::printf("FAIL golden cases: %s is malformed at case %d\n", path, i);
      failed++;
      return false;
    }
    std::vector<float> grad;
    const LossParts got = gpu(c, &grad);
    const Errors e = compare(got, grad, want, want_grad);
    char name[160];
    std::snprintf(name, sizeof name, "cuda golden '%s' (k=%d n=%d d=%d C=%d) = float64 ", note.c_str(), c.s.k, c.s.n,
                  c.s.d, c.s.c);
    report(within(e, true), name + describe(e));
  }
  return true;
}

// Drift of the float kernels from the CPU's double accumulation, stated in native/KERNELS.md.
void drift(int n, int trials) {
  Errors worst{0, 0, 0, 0, 0};
  for (int t = 0; t < trials; ++t) {
    const Case c = random_case(7, n, 256, 7, true, true, 7, Weights{1.0, 1.0, 1.0});
    std::vector<double> want_grad;
    const LossParts want = cpu(c, &want_grad);
    std::vector<float> grad;
    const LossParts got = gpu(c, &grad);
    const Errors e = compare(got, grad, want, want_grad);
    worst = {std::max(worst.fd, e.fd), std::max(worst.md, e.md), std::max(worst.ed, e.ed), std::max(worst.loss, e.loss),
             std::max(worst.grad, e.grad)};
  }
  char name[120];
  std::snprintf(name, sizeof name, "drift k7 n%d d256 C7, worst of %d batches, cuda vs cpu double ", n, trials);
  report(within(worst, true), name + describe(worst));
}

}  // namespace

int main(int argc, char** argv) {
  const CudaInfo info = cuda_info();
  if (!cuda_usable()) {
    std::printf("FAIL no CUDA device (or emulator): %s\n", info.error.c_str());
    return 1;
  }
  std::printf("device: %s\n", info.devices[0].name.c_str());
  try {
    const Weights w{1.0, 0.7, 0.4};
    // odd shapes: d not a multiple of 32 (partial tiles and warps), one head, absent classes,
    // one class present (MD = 0), both layouts, uniform and accuracy-driven attention
    against_cpu("k3 n11 d17 C5", random_case(3, 11, 17, 5, false, true, 4, w));
    against_cpu("k3 n11 d17 C5 sample-major", random_case(3, 11, 17, 5, true, true, 4, w));
    against_cpu("k1 n5 d9 C3", random_case(1, 5, 9, 3, false, true, 3, w));
    against_cpu("k2 n6 d40 C3 one class present", random_case(2, 6, 40, 3, true, false, 1, w));
    against_cpu("k7 n64 d64 C7 uniform attention", random_case(7, 64, 64, 7, false, false, 7, w));
    against_cpu("k5 n33 d300 C9 (d over a block's 256 threads)", random_case(5, 33, 300, 9, true, true, 8, w));
    against_cpu("k7 n50 d256 C7 (the paper's size)", random_case(7, 50, 256, 7, true, true, 7, Weights{}));
    // the GPU check's graph mode has no emulation: timing without a graph runs the kernels
    {
      const Case c = random_case(2, 7, 33, 3, false, true, 3, w);
      const std::vector<double> t =
          gpu_loss().time(c.e.data(), c.labels.data(), c.rho.data(), c.s, c.w, true, 2, false);
      report(t.size() == 2 && t[0] >= 0, "HostLoss::time (no graph) runs");
    }
    if (argc > 1) golden(argv[1]);
    drift(50, 5);
    drift(4096, 1);
  } catch (const std::exception& e) {
    std::printf("FAIL %s\n", e.what());
    failed++;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
