// N-API glue: unpacks JavaScript arguments into raw pointers, calls the
// backend, packs the result. Validation with user-facing messages lives in
// lib/validate.ts; the checks here only guarantee memory safety if this module
// is called directly, and name the argument when they fail.
// Every C++ exception that escapes a callback becomes a JavaScript error
// (node-addon-api's catch-all); the guard() around each entry point gives the
// common ones a better message first. Defined before napi.h, in every file.
#define NODE_ADDON_API_CPP_EXCEPTIONS_ALL
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../common/cuda_devices.h"
#include "../common/thread_pool.h"
#include "../data/augment.h"
#include "../data/resample.h"
#include "../engine/gemm_bf16.h"
#include "../engine/host_loss.h"
#include "../loss/adcorre.h"
#include "typed_array.h"

namespace {

using adcorre::LossParts;
using adcorre::Shape;
using adcorre::Weights;
using adcorre::engine::HostLoss;
using adcorre::napi::guard;
using adcorre::napi::typed_data;

struct Request {
  Shape shape;  // shape.c: the classes present in the batch, not numClasses (see parse_request)
  Weights weights;
  const float* E_js = nullptr;  // the caller's embeddings (synchronous calls only)
  std::vector<float> E_copy;    // a copy of them (asynchronous calls)
  std::vector<int32_t> labels;  // renumbered onto the present classes, in increasing order
  std::vector<float> rho;       // per present class; empty: uniform attention
  bool want_grad = false;
  bool cuda = false;
  Napi::Value grad_out;  // request.gradOut, or undefined

  const float* embeddings() const { return E_copy.empty() ? E_js : E_copy.data(); }
  size_t count() const { return static_cast<size_t>(shape.k) * shape.n * shape.d; }
};

int positive_int(const Napi::Value& v, const char* key) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string("Expected number for ") + key);
  double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= 1 && x <= 2147483647.0) || std::floor(x) != x)
    throw Napi::RangeError::New(v.Env(), std::string("Expected positive integer for ") + key);
  return static_cast<int>(x);
}

bool is_typed(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

// Parses {embeddings, labels, classAccuracy, k, n, d, numClasses, weights, grad,
// device, gradOut}. copy: keep a private copy of the embeddings (the
// asynchronous call; see LossWorker).
Request parse_request(const Napi::Object& o, bool copy) {
  Napi::Env env = o.Env();
  // Every property is read before any array's memory is looked at: a getter
  // (or a Proxy) runs JavaScript, which could detach or shrink an array whose
  // pointer and length were already taken. From the first typed_data() below
  // on, no JavaScript runs until the loss has read its inputs.
  const Napi::Value kv = o.Get("k"), nv = o.Get("n"), dv = o.Get("d"), cv = o.Get("numClasses");
  const Napi::Value e = o.Get("embeddings"), l = o.Get("labels"), acc = o.Get("classAccuracy");
  const Napi::Value w = o.Get("weights"), g = o.Get("grad"), dev = o.Get("device"), out = o.Get("gradOut");

  Request r;
  r.shape.k = positive_int(kv, "k");
  r.shape.n = positive_int(nv, "n");
  r.shape.d = positive_int(dv, "d");
  const int num_classes = positive_int(cv, "numClasses");
  const size_t count = r.count();
  if (!is_typed(e, napi_float32_array)) throw Napi::TypeError::New(env, "Expected Float32Array for embeddings");
  if (!is_typed(l, napi_int32_array)) throw Napi::TypeError::New(env, "Expected Int32Array for labels");
  const bool has_acc = !acc.IsUndefined() && !acc.IsNull();
  if (has_acc && !is_typed(acc, napi_float32_array))
    throw Napi::TypeError::New(env, "Expected Float32Array for classAccuracy");
  if (!is_typed(w, napi_float64_array) || w.As<Napi::TypedArray>().ElementLength() != 3)
    throw Napi::TypeError::New(env, "Expected Float64Array(3) for weights");
  // a string, not anything with a toString(), which would run JavaScript
  if (!dev.IsString()) throw Napi::TypeError::New(env, "Expected device 'cpu' or 'cuda'");
  const std::string device = dev.As<Napi::String>().Utf8Value();
  if (device != "cpu" && device != "cuda") throw Napi::RangeError::New(env, "Expected device 'cpu' or 'cuda'");
  r.cuda = device == "cuda";
  r.want_grad = g.ToBoolean().Value();  // no JavaScript: ToBoolean calls no method
  if (!out.IsUndefined() && !out.IsNull()) {
    if (!is_typed(out, napi_float32_array) || out.As<Napi::TypedArray>().ElementLength() != count)
      throw Napi::TypeError::New(env, "Expected Float32Array of length k*n*d for gradOut");
    r.grad_out = out;
  } else {
    r.grad_out = env.Undefined();
  }

  auto emb = e.As<Napi::TypedArray>();
  if (emb.ElementLength() != count) throw Napi::RangeError::New(env, "Expected embeddings of length k*n*d");
  r.E_js = typed_data<float>(emb);
  if (copy) r.E_copy.assign(r.E_js, r.E_js + count);

  auto lab = l.As<Napi::TypedArray>();
  if (lab.ElementLength() != static_cast<size_t>(r.shape.n))
    throw Napi::RangeError::New(env, "Expected labels of length n");
  const int32_t* labels = typed_data<int32_t>(lab);
  for (int a = 0; a < r.shape.n; ++a)
    if (labels[a] < 0 || labels[a] >= num_classes)
      throw Napi::RangeError::New(env, "Expected labels in [0, numClasses) but received " + std::to_string(labels[a]) +
                                           " at labels[" + std::to_string(a) + "]");
  // Only the classes present in the batch enter the loss (a class without
  // members adds nothing to FD, MD or ED; docs/loss-derivation.md), so the
  // labels are renumbered onto them in increasing order. The per-class sums
  // run in the same order, so the result is identical, and the workspace is
  // k x min(n, numClasses) x d whatever numClasses is: numClasses 2^31 - 1
  // used to ask for k x 2^31 x d doubles and abort on std::bad_alloc.
  std::vector<int32_t> present(labels, labels + r.shape.n);
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  r.shape.c = static_cast<int>(present.size());
  r.labels.resize(r.shape.n);
  for (int a = 0; a < r.shape.n; ++a)
    r.labels[a] = static_cast<int32_t>(std::lower_bound(present.begin(), present.end(), labels[a]) - present.begin());

  if (has_acc) {
    auto arr = acc.As<Napi::TypedArray>();
    if (arr.ElementLength() != static_cast<size_t>(num_classes))
      throw Napi::RangeError::New(env, "Expected classAccuracy of length numClasses");
    const float* a = typed_data<float>(arr);
    for (int c = 0; c < num_classes; ++c)
      if (!(a[c] >= 0.f && a[c] <= 1.f)) throw Napi::RangeError::New(env, "Expected classAccuracy values in [0, 1]");
    r.rho.resize(present.size());
    for (size_t i = 0; i < present.size(); ++i) r.rho[i] = 1.f - a[present[i]];
  }

  const double* wv = typed_data<double>(w.As<Napi::TypedArray>());
  r.weights.fd = wv[0];
  r.weights.md = wv[1];
  r.weights.ed = wv[2];
  return r;
}

// Runs f on the process's CUDA loss: one HostLoss on CUDA device 0 (one
// CudaBackend: its stream and a device block kept between calls), made on first
// use (again after a failure to make it) and used by one thread at a time.
// Never destroyed: CUDA may be torn down before static destructors run.
template <typename F>
auto with_cuda_loss(F&& f) {
  struct Shared {
    std::mutex mutex;
    std::unique_ptr<HostLoss> loss;
  };
  static Shared* shared = new Shared();
  std::lock_guard<std::mutex> lock(shared->mutex);
  if (!shared->loss) shared->loss = std::make_unique<HostLoss>(0);
  return f(*shared->loss);
}

// Runs on any thread: no N-API calls in here.
LossParts compute(const Request& r, float* grad) {
  const float* rho = r.rho.empty() ? nullptr : r.rho.data();
  const float* E = r.embeddings();
  if (r.cuda)
    return with_cuda_loss([&](HostLoss& cuda) { return cuda.run(E, r.labels.data(), rho, r.shape, r.weights, grad); });
  // One CPU backend (and its loss workspace) per thread, reused across calls (the JS thread and libuv's pool).
  thread_local HostLoss cpu(-1);
  return cpu.run(E, r.labels.data(), rho, r.shape, r.weights, grad);
}

Napi::Object pack(Napi::Env env, const LossParts& parts, Napi::Value grad) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("loss", parts.loss);
  out.Set("fd", parts.fd);
  out.Set("md", parts.md);
  out.Set("ed", parts.ed);
  if (!grad.IsUndefined()) out.Set("grad", grad);
  return out;
}

Napi::Value Loss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, "loss", [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected request object");
    Request r = parse_request(info[0].As<Napi::Object>(), false);
    Napi::Value grad = env.Undefined();
    float* grad_ptr = nullptr;
    if (r.want_grad) {
      // request.gradOut when given (reused across steps to spare the allocation), else a new array
      auto g = r.grad_out.IsUndefined() ? Napi::Float32Array::New(env, r.count()) : r.grad_out.As<Napi::Float32Array>();
      grad_ptr = typed_data<float>(g);
      grad = g;
    }
    return pack(env, compute(r, grad_ptr), grad);
  });
}

// The asynchronous loss owns everything the worker thread reads or writes.
// Holding references to the caller's arrays is not enough: a reference keeps
// the ArrayBuffer object alive, not its memory, and transferring the buffer
// (structuredClone(x, { transfer }), postMessage to a worker) detaches it and
// hands the memory to a new owner, which may free it mid-call (SIGSEGV, issue
// #26). N-API exposes no handle on the backing store and cannot refuse a
// transfer, so the embeddings and labels are copied here, on the calling
// thread, and a caller's gradOut is written in OnOK, on the JavaScript
// thread again, after checking it is still attached and whole. At the
// paper's size (k 7, n 50, d 256: 350 KiB each way) a copy takes about 10 us,
// against about 0.3 ms for the loss and its gradient on 2 cores. Without
// gradOut the gradient goes straight into a new array, which no JavaScript
// can reach (hence transfer) before the promise resolves.
class LossWorker : public Napi::AsyncWorker {
 public:
  LossWorker(Napi::Env env, Request r)
      : Napi::AsyncWorker(env, "adcorre:loss"), deferred_(Napi::Promise::Deferred::New(env)), request_(std::move(r)) {
    if (request_.want_grad) {
      if (request_.grad_out.IsUndefined()) {
        auto g = Napi::Float32Array::New(env, request_.count());
        grad_ptr_ = typed_data<float>(g);
        grad_ = Napi::Persistent(static_cast<Napi::Object>(g));
      } else {
        grad_copy_.resize(request_.count());
        grad_ptr_ = grad_copy_.data();
        grad_ = Napi::Persistent(request_.grad_out.As<Napi::Object>());
      }
    }
    request_.grad_out = Napi::Value();  // a handle: not to be kept past this call
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      parts_ = compute(request_, grad_ptr_);
    } catch (const std::bad_alloc&) {
      SetError("Out of memory in lossAsync: the arguments ask for more memory than the machine can give");
    } catch (const std::exception& e) { SetError(e.what()); }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (grad_.IsEmpty()) return deferred_.Resolve(pack(env, parts_, env.Undefined()));
    auto g = grad_.Value().As<Napi::TypedArray>();
    if (!grad_copy_.empty()) {
      // Detached (transferred) arrays read as length 0; a length-tracking view
      // of a resizable ArrayBuffer may have shrunk.
      if (g.ElementLength() != grad_copy_.size())
        return deferred_.Reject(
            Napi::Error::New(env, "Expected gradOut of length k*n*d = " + std::to_string(grad_copy_.size()) +
                                      " until lossAsync settles but received an array of length " +
                                      std::to_string(g.ElementLength()) +
                                      " (detached or resized while the loss ran; transferred buffers cannot be "
                                      "written)")
                .Value());
      std::memcpy(typed_data<float>(g), grad_copy_.data(), grad_copy_.size() * sizeof(float));
    }
    deferred_.Resolve(pack(env, parts_, g));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Request request_;
  Napi::ObjectReference grad_;
  std::vector<float> grad_copy_;  // the gradient when the caller gave gradOut
  float* grad_ptr_ = nullptr;
  LossParts parts_;
};

Napi::Value LossAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, "lossAsync", [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected request object");
    auto* worker = new LossWorker(env, parse_request(info[0].As<Napi::Object>(), true));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

// Index of the first NaN or +-Infinity in a Float32Array, or -1.
Napi::Value find_non_finite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "Expected Float32Array");
  auto arr = info[0].As<Napi::TypedArray>();
  const float* p = typed_data<float>(arr);
  const size_t n = arr.ElementLength();
  // Blocks of 1024 with a branch-free test (x - x is NaN for NaN and +-Inf)
  // keep the scan vectorised; only the failing block is searched element-wise.
  for (size_t b = 0; b < n; b += 1024) {
    const size_t e = std::min(n, b + 1024);
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = b; i < e; ++i) acc += p[i] - p[i];
    if (acc != 0.f || acc != acc) {
      for (size_t i = b; i < e; ++i)
        if (!std::isfinite(p[i])) return Napi::Number::New(env, static_cast<double>(i));
    }
  }
  return Napi::Number::New(env, -1);
}

Napi::Value FindNonFinite(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "findNonFinite", [&] { return find_non_finite(info); });
}

// Benchmark helper: GPU microseconds of `reps` runs (CUDA events, inputs
// already on the device): cudaTime(request, reps, graph).
Napi::Value CudaTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, "cudaTime", [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsNumber() || !info[2].IsBoolean())
      throw Napi::TypeError::New(env, "Expected (request, reps, graph)");
    const int reps = std::max(1, info[1].As<Napi::Number>().Int32Value());
    const bool graph = info[2].As<Napi::Boolean>().Value();
    Request r = parse_request(info[0].As<Napi::Object>(), false);
    const float* rho = r.rho.empty() ? nullptr : r.rho.data();
    std::vector<double> times = with_cuda_loss([&](HostLoss& cuda) {
      return cuda.time(r.embeddings(), r.labels.data(), rho, r.shape, r.weights, r.want_grad, reps, graph);
    });
    auto out = Napi::Float64Array::New(env, times.size());
    std::copy(times.begin(), times.end(), out.Data());
    return out;
  });
}

// Positional number arguments of the data bindings: finite, and for integers within [lo, hi].
// Both insist on a number rather than converting one (valueOf() would run
// JavaScript, which could detach an array already checked).
double number_arg(const Napi::CallbackInfo& info, int i, const char* name) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected number for ") + name);
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) throw Napi::RangeError::New(info.Env(), std::string("Expected finite number for ") + name);
  return v;
}

int integer_arg(const Napi::CallbackInfo& info, int i, const char* name, int lo, int hi) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string("Expected integer for ") + name);
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= lo && v <= hi) || std::floor(v) != v)
    throw Napi::RangeError::New(info.Env(), std::string("Expected integer in [") + std::to_string(lo) + ", " +
                                                std::to_string(hi) + "] for " + name);
  return static_cast<int>(v);
}

// warpAffine(src: Uint8Array, w, h, srcChannels, dst: Float32Array, dstOffset,
//            outW, outH, dstChannels, matrix: Float64Array(6), contrast, brightness)
Napi::Value WarpAffine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, "warpAffine", [&]() -> Napi::Value {
    if (info.Length() < 12) throw Napi::TypeError::New(env, "warpAffine expects 12 arguments");
    auto int_arg = [&](int i, const char* name, int lo, int hi) { return integer_arg(info, i, name, lo, hi); };
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "Expected Uint8Array for src");
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, "Expected Float32Array for dst");
    if (!info[9].IsTypedArray() || info[9].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[9].As<Napi::TypedArray>().ElementLength() != 6)
      throw Napi::TypeError::New(env, "Expected Float64Array(6) for matrix");
    auto src = info[0].As<Napi::TypedArray>();
    auto dst = info[4].As<Napi::TypedArray>();
    const int w = int_arg(1, "w", 1, 1 << 16), h = int_arg(2, "h", 1, 1 << 16);
    const int src_c = int_arg(3, "srcChannels", 1, 4);
    const double offset = number_arg(info, 5, "dstOffset");
    const int out_w = int_arg(6, "outW", 1, 1 << 14), out_h = int_arg(7, "outH", 1, 1 << 14);
    const int dst_c = int_arg(8, "dstChannels", 1, 3);
    if (dst_c == 2) throw Napi::RangeError::New(env, "Expected 1 or 3 for dstChannels");
    adcorre::WarpParams p;
    p.contrast = static_cast<float>(number_arg(info, 10, "contrast"));
    p.brightness = static_cast<float>(number_arg(info, 11, "brightness"));
    // No JavaScript runs from here on: lengths and pointers stay valid.
    if (src.ElementLength() < static_cast<size_t>(w) * h * src_c)
      throw Napi::RangeError::New(env, "src is shorter than w*h*srcChannels");
    const size_t need = static_cast<size_t>(out_w) * out_h * dst_c;
    if (!(offset >= 0) || std::floor(offset) != offset || static_cast<size_t>(offset) + need > dst.ElementLength())
      throw Napi::RangeError::New(env, "dst is too short for dstOffset + outW*outH*dstChannels");
    const double* m = typed_data<double>(info[9].As<Napi::TypedArray>());
    std::copy(m, m + 6, p.m);
    adcorre::warp_affine(typed_data<uint8_t>(src), w, h, src_c, typed_data<float>(dst) + static_cast<size_t>(offset),
                         out_w, out_h, dst_c, p);
    return env.Undefined();
  });
}

// The largest scratch resample_rgb may allocate: its horizontal pass keeps
// every source row the vertical taps name, dw x 3 floats each. Beyond this the
// call is refused rather than left to an allocation that Linux grants and
// then kills the process for touching.
constexpr double kMaxResampleScratch = 4.0 * (1 << 30);

// resampleRgb(src: Uint8Array, sw, sh, x, y, width, height, dst: Float32Array, dw, dh,
//             border (0 edge, 1 reflect, 2 constant), constant, scale, bias)
// lib/pixels.ts validates the user-facing arguments; these checks keep memory safe.
Napi::Value ResampleRgb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, "resampleRgb", [&]() -> Napi::Value {
    if (info.Length() < 14) throw Napi::TypeError::New(env, "resampleRgb expects 14 arguments");
    auto number = [&](int i, const char* name) { return number_arg(info, i, name); };
    auto integer = [&](int i, const char* name, int lo, int hi) { return integer_arg(info, i, name, lo, hi); };
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "Expected Uint8Array for src");
    if (!info[7].IsTypedArray() || info[7].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, "Expected Float32Array for dst");
    auto src = info[0].As<Napi::TypedArray>();
    auto dst = info[7].As<Napi::TypedArray>();
    const int sw = integer(1, "sw", 1, 1 << 16), sh = integer(2, "sh", 1, 1 << 16);
    adcorre::ResampleWindow win;
    win.x = number(3, "x"), win.y = number(4, "y");
    win.width = number(5, "width"), win.height = number(6, "height");
    if (!(win.width > 0 && win.height > 0 && win.width <= 1 << 20 && win.height <= 1 << 20))
      throw Napi::RangeError::New(env, "Expected a window size in (0, 2^20]");
    const int dw = integer(8, "dw", 1, 1 << 14), dh = integer(9, "dh", 1, 1 << 14);
    win.border = static_cast<adcorre::Border>(integer(10, "border", 0, 2));
    win.constant = static_cast<float>(number(11, "constant"));
    win.scale = static_cast<float>(number(12, "scale"));
    win.bias = static_cast<float>(number(13, "bias"));
    // rows the vertical taps can name: 2 per output row when enlarging, the
    // window's rows (and one either side) when shrinking; never more than sh
    const double rows = std::min<double>(sh, std::max(2.0 * dh, std::ceil(win.height) + 2));
    const double scratch = rows * dw * 3 * sizeof(float);
    if (scratch > kMaxResampleScratch)
      throw Napi::RangeError::New(env,
                                  "Expected a resample needing at most 4 GiB of row scratch (rows x dw x 3 "
                                  "floats) but received sh " +
                                      std::to_string(sh) + ", height " + std::to_string(win.height) + ", dw " +
                                      std::to_string(dw) + ": " + std::to_string(scratch / (1 << 30)) + " GiB");
    if (src.ElementLength() < static_cast<size_t>(sw) * sh * 3)
      throw Napi::RangeError::New(env, "src is shorter than sw*sh*3");
    if (static_cast<size_t>(dw) * dh * 3 > dst.ElementLength())
      throw Napi::RangeError::New(env, "dst is shorter than dw*dh*3");
    adcorre::resample_rgb(typed_data<uint8_t>(src), sw, sh, win, typed_data<float>(dst), dw, dh);
    return env.Undefined();
  });
}

Napi::Value backend_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  adcorre::CudaInfo ci = adcorre::cuda_info();
  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", ci.compiled);
  cuda.Set("archs", ci.archs);
  cuda.Set("runtimeVersion", ci.runtime_version);
  cuda.Set("driverVersion", ci.driver_version);
  Napi::Array devices = Napi::Array::New(env, ci.devices.size());
  for (size_t i = 0; i < ci.devices.size(); ++i) {
    const auto& dv = ci.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", dv.index);
    o.Set("name", dv.name);
    o.Set("computeCapability", std::to_string(dv.major) + "." + std::to_string(dv.minor));
    o.Set("totalMemory", static_cast<double>(dv.total_memory));
    devices[i] = o;
  }
  cuda.Set("devices", devices);
  cuda.Set("usable", ci.error.empty() && !ci.devices.empty());
  if (!ci.error.empty()) cuda.Set("error", ci.error);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", adcorre::cpu_threads());
  cpu.Set("gemm", adcorre::engine::gemm_f32_isa());
  // bf16: the CPU has bf16 multiply-add instructions (AVX512-BF16 or AMX-BF16);
  // bf16Kernel: what precision 'bf16' runs here (gemm_bf16.h)
  cpu.Set("bf16", adcorre::engine::cpu_has_bf16());
  cpu.Set("bf16Kernel", adcorre::engine::gemm_bf16_kernel());
  Napi::Object out = Napi::Object::New(env);
  out.Set("cuda", cuda);
  out.Set("cpu", cpu);
  return out;
}

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  return guard(info.Env(), "backendInfo", [&] { return backend_info(info); });
}

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports);  // engine_binding.cpp

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitEngine(env, exports);
  exports.Set("loss", Napi::Function::New(env, Loss, "loss"));
  exports.Set("lossAsync", Napi::Function::New(env, LossAsync, "lossAsync"));
  exports.Set("findNonFinite", Napi::Function::New(env, FindNonFinite, "findNonFinite"));
  exports.Set("cudaTime", Napi::Function::New(env, CudaTime, "cudaTime"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("warpAffine", Napi::Function::New(env, WarpAffine, "warpAffine"));
  exports.Set("resampleRgb", Napi::Function::New(env, ResampleRgb, "resampleRgb"));
  return exports;
}

}  // namespace

NODE_API_MODULE(adcorre_native, Init)
