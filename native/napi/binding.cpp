// N-API glue: unpacks JavaScript arguments into raw pointers, calls the
// backend, packs the result. Validation with user-facing messages lives in
// lib/validate.ts; the checks here only guarantee memory safety if this module
// is called directly, and name the argument when they fail.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../common/thread_pool.h"
#include "../data/augment.h"
#include "../data/resample.h"
#include "../loss/adcorre.h"
#include "typed_array.h"

namespace {

using adcorre::LossParts;
using adcorre::Shape;
using adcorre::Weights;

struct Request {
  Shape shape;
  Weights weights;
  const float* E = nullptr;
  const int32_t* labels = nullptr;
  std::vector<float> rho;  // empty: uniform attention
  bool want_grad = false;
  bool cuda = false;
};

using adcorre::napi::typed_data;

int positive_int(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("Expected number for ") + key);
  double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= 1 && x <= 2147483647.0) || std::floor(x) != x)
    throw Napi::RangeError::New(o.Env(), std::string("Expected positive integer for ") + key);
  return static_cast<int>(x);
}

// Parses {embeddings, labels, classAccuracy, k, n, d, numClasses, weights, grad, device}.
Request parse_request(const Napi::Object& o) {
  Napi::Env env = o.Env();
  Request r;
  r.shape.k = positive_int(o, "k");
  r.shape.n = positive_int(o, "n");
  r.shape.d = positive_int(o, "d");
  r.shape.c = positive_int(o, "numClasses");
  const size_t count = static_cast<size_t>(r.shape.k) * r.shape.n * r.shape.d;

  Napi::Value e = o.Get("embeddings");
  if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "Expected Float32Array for embeddings");
  auto emb = e.As<Napi::TypedArray>();
  if (emb.ElementLength() != count) throw Napi::RangeError::New(env, "Expected embeddings of length k*n*d");
  r.E = typed_data<float>(emb);

  Napi::Value l = o.Get("labels");
  if (!l.IsTypedArray() || l.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(env, "Expected Int32Array for labels");
  auto lab = l.As<Napi::TypedArray>();
  if (lab.ElementLength() != static_cast<size_t>(r.shape.n))
    throw Napi::RangeError::New(env, "Expected labels of length n");
  r.labels = typed_data<int32_t>(lab);
  for (int a = 0; a < r.shape.n; ++a)
    if (r.labels[a] < 0 || r.labels[a] >= r.shape.c)
      throw Napi::RangeError::New(env, "Expected labels in [0, numClasses)");

  Napi::Value acc = o.Get("classAccuracy");
  if (!acc.IsUndefined() && !acc.IsNull()) {
    if (!acc.IsTypedArray() || acc.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, "Expected Float32Array for classAccuracy");
    auto arr = acc.As<Napi::TypedArray>();
    if (arr.ElementLength() != static_cast<size_t>(r.shape.c))
      throw Napi::RangeError::New(env, "Expected classAccuracy of length numClasses");
    const float* a = typed_data<float>(arr);
    r.rho.resize(r.shape.c);
    for (int c = 0; c < r.shape.c; ++c) {
      if (!(a[c] >= 0.f && a[c] <= 1.f)) throw Napi::RangeError::New(env, "Expected classAccuracy values in [0, 1]");
      r.rho[c] = 1.f - a[c];
    }
  }

  Napi::Value w = o.Get("weights");
  if (!w.IsTypedArray() || w.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      w.As<Napi::TypedArray>().ElementLength() != 3)
    throw Napi::TypeError::New(env, "Expected Float64Array(3) for weights");
  const double* wv = typed_data<double>(w.As<Napi::TypedArray>());
  r.weights.fd = wv[0];
  r.weights.md = wv[1];
  r.weights.ed = wv[2];

  r.want_grad = o.Get("grad").ToBoolean().Value();
  std::string device = o.Get("device").ToString().Utf8Value();
  if (device != "cpu" && device != "cuda") throw Napi::RangeError::New(env, "Expected device 'cpu' or 'cuda'");
  r.cuda = device == "cuda";
  return r;
}

// Runs on any thread: no N-API calls in here.
LossParts compute(const Request& r, float* grad) {
  const float* rho = r.rho.empty() ? nullptr : r.rho.data();
  if (r.cuda) return adcorre::cuda_loss_host(r.E, r.labels, rho, r.shape, r.weights, grad);
  // One workspace per thread, reused across calls (the JS thread and libuv's pool).
  thread_local adcorre::CpuLoss cpu;
  LossParts parts = cpu.forward(r.E, r.labels, rho, r.shape, r.weights);
  if (grad) cpu.backward(grad);
  return parts;
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

// The gradient's output: request.gradOut when given (a Float32Array of
// k*n*d, reused across steps to spare the allocation), else a new array.
Napi::Float32Array grad_output(const Napi::Object& request, const Shape& s) {
  Napi::Env env = request.Env();
  const size_t count = static_cast<size_t>(s.k) * s.n * s.d;
  Napi::Value out = request.Get("gradOut");
  if (out.IsUndefined() || out.IsNull()) return Napi::Float32Array::New(env, count);
  if (!out.IsTypedArray() || out.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      out.As<Napi::TypedArray>().ElementLength() != count)
    throw Napi::TypeError::New(env, "Expected Float32Array of length k*n*d for gradOut");
  return out.As<Napi::Float32Array>();
}

Napi::Value Loss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected request object");
  Request r = parse_request(info[0].As<Napi::Object>());
  Napi::Value grad = env.Undefined();
  float* grad_ptr = nullptr;
  if (r.want_grad) {
    auto g = grad_output(info[0].As<Napi::Object>(), r.shape);
    grad_ptr = g.Data();
    grad = g;
  }
  try {
    return pack(env, compute(r, grad_ptr), grad);
  } catch (const adcorre::BackendError& e) { throw Napi::Error::New(env, e.what()); }
}

// The async variant holds references to the input arrays (and the output
// gradient, allocated up front) until the worker has finished.
class LossWorker : public Napi::AsyncWorker {
 public:
  LossWorker(Napi::Env env, Napi::Object request, Request r)
      : Napi::AsyncWorker(env, "adcorre:loss"), deferred_(Napi::Promise::Deferred::New(env)), request_(std::move(r)) {
    keep_ = Napi::Persistent(request);
    if (request_.want_grad) {
      auto g = grad_output(request, request_.shape);
      grad_ptr_ = g.Data();
      grad_ = Napi::Persistent(static_cast<Napi::Object>(g));
    }
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      parts_ = compute(request_, grad_ptr_);
    } catch (const std::exception& e) { SetError(e.what()); }
  }
  void OnOK() override {
    Napi::Env env = Env();
    deferred_.Resolve(pack(env, parts_, grad_.IsEmpty() ? env.Undefined() : grad_.Value()));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Request request_;
  Napi::ObjectReference keep_;
  Napi::ObjectReference grad_;
  float* grad_ptr_ = nullptr;
  LossParts parts_;
};

Napi::Value LossAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected request object");
  Napi::Object request = info[0].As<Napi::Object>();
  Request r = parse_request(request);
  auto* worker = new LossWorker(env, request, std::move(r));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// Index of the first NaN or +-Infinity in a Float32Array, or -1.
Napi::Value FindNonFinite(const Napi::CallbackInfo& info) {
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

// Benchmark helper: GPU microseconds of `reps` runs (CUDA events, inputs
// already on the device): cudaTime(request, reps, graph).
Napi::Value CudaTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsNumber() || !info[2].IsBoolean())
    throw Napi::TypeError::New(env, "Expected (request, reps, graph)");
  Request r = parse_request(info[0].As<Napi::Object>());
  const int reps = std::max(1, info[1].As<Napi::Number>().Int32Value());
  try {
    std::vector<double> times =
        adcorre::cuda_time_loss(r.E, r.labels, r.rho.empty() ? nullptr : r.rho.data(), r.shape, r.weights, r.want_grad,
                                reps, info[2].As<Napi::Boolean>().Value());
    auto out = Napi::Float64Array::New(env, times.size());
    std::copy(times.begin(), times.end(), out.Data());
    return out;
  } catch (const adcorre::BackendError& e) { throw Napi::Error::New(env, e.what()); }
}

// Positional number arguments of the data bindings: finite, and for integers within [lo, hi].
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
    throw Napi::RangeError::New(info.Env(), std::string("Expected integer in range for ") + name);
  return static_cast<int>(v);
}

// warpAffine(src: Uint8Array, w, h, srcChannels, dst: Float32Array, dstOffset,
//            outW, outH, dstChannels, matrix: Float64Array(6), contrast, brightness)
Napi::Value WarpAffine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
  const double offset = info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : -1;
  const int out_w = int_arg(6, "outW", 1, 1 << 14), out_h = int_arg(7, "outH", 1, 1 << 14);
  const int dst_c = int_arg(8, "dstChannels", 1, 3);
  if (dst_c == 2) throw Napi::RangeError::New(env, "Expected 1 or 3 for dstChannels");
  if (src.ElementLength() < static_cast<size_t>(w) * h * src_c)
    throw Napi::RangeError::New(env, "src is shorter than w*h*srcChannels");
  const size_t need = static_cast<size_t>(out_w) * out_h * dst_c;
  if (!(offset >= 0) || std::floor(offset) != offset || static_cast<size_t>(offset) + need > dst.ElementLength())
    throw Napi::RangeError::New(env, "dst is too short for dstOffset + outW*outH*dstChannels");
  adcorre::WarpParams p;
  const double* m = typed_data<double>(info[9].As<Napi::TypedArray>());
  std::copy(m, m + 6, p.m);
  p.contrast = static_cast<float>(info[10].ToNumber().DoubleValue());
  p.brightness = static_cast<float>(info[11].ToNumber().DoubleValue());
  adcorre::warp_affine(typed_data<uint8_t>(src), w, h, src_c, typed_data<float>(dst) + static_cast<size_t>(offset),
                       out_w, out_h, dst_c, p);
  return env.Undefined();
}

// resampleRgb(src: Uint8Array, sw, sh, x, y, width, height, dst: Float32Array, dw, dh,
//             border (0 edge, 1 reflect, 2 constant), constant, scale, bias)
// lib/pixels.ts validates the user-facing arguments; these checks keep memory safe.
Napi::Value ResampleRgb(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
  if (src.ElementLength() < static_cast<size_t>(sw) * sh * 3)
    throw Napi::RangeError::New(env, "src is shorter than sw*sh*3");
  if (static_cast<size_t>(dw) * dh * 3 > dst.ElementLength())
    throw Napi::RangeError::New(env, "dst is shorter than dw*dh*3");
  adcorre::resample_rgb(typed_data<uint8_t>(src), sw, sh, win, typed_data<float>(dst), dw, dh);
  return env.Undefined();
}

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
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
  Napi::Object out = Napi::Object::New(env);
  out.Set("cuda", cuda);
  out.Set("cpu", cpu);
  return out;
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
