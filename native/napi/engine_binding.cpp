// N-API glue for the training engine: class Engine(program, maxBatch) with
// trainStep / predict / parameter and optimizer-state access. Argument checks
// with user-facing messages live in lib/engine/engine.ts; these guarantee
// memory safety, also when the addon is called directly with a hand-made
// program. Every C++ exception leaves as a JavaScript error: guard() around
// each entry point, and node-addon-api's catch-all (defined before napi.h, as
// in binding.cpp) for anything outside one.
#define NODE_ADDON_API_CPP_EXCEPTIONS_ALL
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "../engine/engine.h"
#include "typed_array.h"

namespace {

using adcorre::engine::OpDesc;
using adcorre::engine::OpKind;
using adcorre::engine::ProgramDesc;
using adcorre::napi::guard;

template <typename T>
T* data_of(const Napi::TypedArray& arr) {
  return adcorre::napi::typed_data<T>(arr);
}

Napi::TypedArray typed(const Napi::Value& v, napi_typedarray_type type, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(v.Env(), std::string("Expected typed array for ") + name);
  return v.As<Napi::TypedArray>();
}

int int_of(const Napi::Object& o, const char* key, int fallback = -1) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

// A number as JavaScript would print it (no trailing zeros).
std::string number_text(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", x);
  return text;
}

// An integer in [lo, hi] (Int32Value would wrap 2^32 + 1 to 1 and read NaN as 0).
int64_t integer_in(const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi) {
  const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(x >= static_cast<double>(lo) && x <= static_cast<double>(hi)) || std::floor(x) != x)
    throw Napi::RangeError::New(v.Env(), "Expected integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                             "] for " + name + " but received " +
                                             (v.IsNumber() ? number_text(x) : std::string("a non-number")));
  return static_cast<int64_t>(x);
}

double num_of(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

// The step options are all required: the binding has no training defaults of
// its own (lib/engine/engine.ts fills what a caller leaves out from
// TRAINING_DEFAULTS, lib/train/defaults.ts), so that one layer owns each.
const char* type_name(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined:
      return "undefined";
    case napi_null:
      return "null";
    case napi_boolean:
      return "a boolean";
    case napi_number:
      return "a number";
    case napi_string:
      return "a string";
    default:
      return "an object";
  }
}

Napi::Value required_option(const Napi::Object& o, const char* key, bool ok(const Napi::Value&), const char* expected) {
  Napi::Value v = o.Get(key);
  if (!ok(v))
    throw Napi::TypeError::New(o.Env(), std::string("Expected ") + expected + " for options." + key + " but received " +
                                            type_name(v) + " (every step option is required here)");
  return v;
}

double required_number(const Napi::Object& o, const char* key) {
  return required_option(
             o, key, [](const Napi::Value& v) { return v.IsNumber(); }, "a number")
      .As<Napi::Number>()
      .DoubleValue();
}

bool required_boolean(const Napi::Object& o, const char* key) {
  return required_option(
             o, key, [](const Napi::Value& v) { return v.IsBoolean(); }, "a boolean")
      .As<Napi::Boolean>()
      .Value();
}

ProgramDesc parse_program(const Napi::Object& o) {
  Napi::Env env = o.Env();
  ProgramDesc p;
  p.tensors = int_of(o, "tensors");
  p.input = int_of(o, "input");
  p.embeddings = int_of(o, "embeddings");
  p.logits = int_of(o, "logits");
  p.probs = int_of(o, "probs");
  p.channels = int_of(o, "channels");
  p.size = int_of(o, "size");
  p.k = int_of(o, "k");
  p.d = int_of(o, "d");
  p.classes = int_of(o, "classes");
  auto in_range = [&](int t) {
    if (t < 0 || t >= p.tensors) throw Napi::RangeError::New(env, "program: tensor id out of range");
    return t;
  };
  in_range(p.input), in_range(p.embeddings), in_range(p.logits), in_range(p.probs);
  Napi::Array sizes = o.Get("paramSizes").As<Napi::Array>();
  Napi::Array trainable = o.Get("trainable").As<Napi::Array>();
  Napi::Array decay = o.Get("decay").As<Napi::Array>();
  for (uint32_t i = 0; i < sizes.Length(); ++i) {
    p.param_sizes.push_back(static_cast<size_t>(sizes.Get(i).As<Napi::Number>().Int64Value()));
    p.trainable.push_back(trainable.Get(i).ToBoolean().Value());
    p.decay.push_back(decay.Get(i).ToBoolean().Value());
  }
  Napi::Array ops = o.Get("ops").As<Napi::Array>();
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    Napi::Object op = ops.Get(i).As<Napi::Object>();
    OpDesc d;
    const std::string kind = op.Get("kind").ToString().Utf8Value();
    const adcorre::engine::OpInfo* info = adcorre::engine::find_op(kind);
    if (!info) throw Napi::RangeError::New(env, "program: unknown op kind " + kind);
    d.kind = info->kind;
    d.name = op.Get("name").ToString().Utf8Value();
    Napi::Array inputs = op.Get("inputs").As<Napi::Array>();
    for (uint32_t j = 0; j < inputs.Length(); ++j)
      d.inputs.push_back(in_range(inputs.Get(j).As<Napi::Number>().Int32Value()));
    if (d.inputs.empty()) throw Napi::RangeError::New(env, "program: op without inputs");
    d.output = in_range(int_of(op, "output"));
    d.param = int_of(op, "param");
    const int needed = info->params;
    if (needed && (d.param < 0 || d.param + needed > static_cast<int>(p.param_sizes.size())))
      throw Napi::RangeError::New(env, "program: parameter index out of range at " + d.name);
    d.in_c = int_of(op, "inC", 0);
    d.out_c = int_of(op, "outC", 0);
    d.kernel = int_of(op, "kernel", 1);
    d.stride = int_of(op, "stride", 1);
    d.same = op.Get("same").ToBoolean().Value();
    d.depthwise = op.Get("depthwise").ToBoolean().Value();
    d.rate = num_of(op, "rate", 0);
    p.ops.push_back(d);
  }
  return p;
}

// The executor trusts its program (lib/engine/engine.ts builds it from the
// model definition); a hand-made one reaches it only through this addon, so
// everything the executor indexes with is checked here: sizes its arithmetic
// can take (a stride of 0 divides by zero, a tensor count of 2^31 asks for
// 24 GB of bookkeeping), ops reading only tensors already written, and
// parameters as long as the ops read them.
void check_program(Napi::Env env, const ProgramDesc& p) {
  auto fail = [&](const std::string& what) { throw Napi::RangeError::New(env, "program: " + what); };
  auto in = [&](int v, int lo, int hi, const std::string& name) {
    if (v < lo || v > hi)
      fail("Expected integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] for " + name +
           " but received " + std::to_string(v));
  };
  constexpr int kSide = 1 << 16, kMaxInt = 2147483647;
  if (p.ops.empty()) fail("Expected at least one op but received none");
  // every tensor but the input is some op's output
  in(p.tensors, 1, static_cast<int>(std::min<size_t>(p.ops.size() + 1, kMaxInt)), "tensors (ops + 1 at most)");
  in(p.channels, 1, kSide, "channels");
  in(p.size, 1, kSide, "size");
  in(p.k, 1, kMaxInt, "k");
  in(p.d, 1, kMaxInt, "d");
  in(p.classes, 1, kMaxInt, "classes");
  for (size_t i = 0; i < p.param_sizes.size(); ++i)
    if (p.param_sizes[i] < 1 || p.param_sizes[i] > static_cast<size_t>(kMaxInt))
      fail("Expected paramSizes[" + std::to_string(i) + "] in [1, 2147483647] but received " +
           std::to_string(static_cast<int64_t>(p.param_sizes[i])));
  std::vector<bool> written(p.tensors, false);
  written[p.input] = true;
  for (const OpDesc& op : p.ops) {
    for (int t : op.inputs)
      if (!written[t]) fail("op " + op.name + " reads tensor " + std::to_string(t) + " before any op writes it");
    written[op.output] = true;
    if (op.kind == OpKind::Conv) {
      in(op.out_c, 1, kSide, "outC of " + op.name);
      in(op.kernel, 1, kSide, "kernel of " + op.name);
      in(op.stride, 1, kSide, "stride of " + op.name);
    }
    if (op.kind == OpKind::BatchNorm) in(op.out_c, 1, kSide, "outC of " + op.name);
    if (op.kind == OpKind::Dense) {
      in(op.in_c, 1, kMaxInt, "inC of " + op.name);
      in(op.out_c, 1, kMaxInt, "outC of " + op.name);
    }
    const int arity = adcorre::engine::op_info(op.kind).inputs;
    if (arity != adcorre::engine::kAnyInputs && op.inputs.size() != static_cast<size_t>(arity))
      fail("Expected " + std::to_string(arity) + " input" + (arity == 1 ? "" : "s") + " for " +
           adcorre::engine::op_info(op.kind).name + " " + op.name + " but received " +
           std::to_string(op.inputs.size()));
  }
  if (!written[p.embeddings] || !written[p.logits] || !written[p.probs])
    fail("Expected ops writing the embeddings, logits and probs tensors");
  const adcorre::engine::TensorShapes sh = adcorre::engine::infer_shapes(p);
  auto param = [&](int i) { return p.param_sizes[static_cast<size_t>(i)]; };
  // n in double: outC x inC x kernel^2 of out-of-range values would wrap in size_t
  auto expect_param = [&](const OpDesc& op, int i, double n) {
    if (static_cast<double>(param(op.param + i)) != n)
      fail("Expected paramSizes[" + std::to_string(op.param + i) + "] = " + number_text(n) + " for " + op.name +
           " but received " + std::to_string(param(op.param + i)));
  };
  for (const OpDesc& op : p.ops) {
    const int x = op.inputs[0];
    const size_t c = static_cast<size_t>(sh.c[x]);
    switch (op.kind) {
      case OpKind::Conv:
        if (op.depthwise && static_cast<size_t>(op.out_c) != c) fail("Expected outC = inC for depthwise " + op.name);
        expect_param(op, 0, double(op.out_c) * (op.depthwise ? 1.0 : double(c)) * op.kernel * op.kernel);
        break;
      case OpKind::BatchNorm:
        if (static_cast<size_t>(op.out_c) != c) fail("Expected outC = the input's channels for " + op.name);
        for (int i = 0; i < 4; ++i) expect_param(op, i, op.out_c);
        break;
      case OpKind::Dense:
        if (static_cast<size_t>(op.in_c) != sh.per_sample[x])
          fail("Expected inC = the input's features for " + op.name);
        expect_param(op, 0, double(op.out_c) * op.in_c);
        expect_param(op, 1, op.out_c);
        break;
      case OpKind::Add:
        if (sh.per_sample[op.inputs[1]] != sh.per_sample[x]) fail("Expected inputs of one size for " + op.name);
        break;
      default:
        break;
    }
  }
  if (sh.per_sample[p.embeddings] != static_cast<size_t>(p.k) * p.d)
    fail("Expected the embeddings tensor to hold k x d values per sample");
  if (sh.per_sample[p.logits] != static_cast<size_t>(p.classes) || sh.per_sample[p.probs] != sh.per_sample[p.logits])
    fail("Expected the logits and probs tensors to hold classes values per sample");
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod("trainStep", &EngineWrap::TrainStep),
                           InstanceMethod("trainStepAsync", &EngineWrap::TrainStepAsync),
                           InstanceMethod("predict", &EngineWrap::Predict),
                           InstanceMethod("paramCount", &EngineWrap::ParamCount),
                           InstanceMethod("getParam", &EngineWrap::GetParam),
                           InstanceMethod("setParam", &EngineWrap::SetParam),
                           InstanceMethod("getGrad", &EngineWrap::GetGrad),
                           InstanceMethod("getMoments", &EngineWrap::GetMoments),
                           InstanceMethod("setMoments", &EngineWrap::SetMoments),
                           InstanceAccessor("steps", &EngineWrap::GetSteps, &EngineWrap::SetSteps),
                           InstanceAccessor("precision", &EngineWrap::GetPrecision, nullptr),
                       });
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "Expected (program, maxBatch[, device[, precision]])");
    guard(env, "Engine", [&] {
      const int max_batch = static_cast<int>(integer_in(info[1], "maxBatch", 1, 2147483647));
      // device: -1 the CPU, else the index of a CUDA device
      const int device =
          info.Length() > 2 && !info[2].IsUndefined() ? static_cast<int>(integer_in(info[2], "device", -1, 1023)) : -1;
      // precision: 'fp32' (default), 'bf16' or 'auto' (native/engine/precision.h)
      if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsString())
        throw Napi::TypeError::New(env, "Expected precision 'fp32', 'bf16' or 'auto'");
      const auto precision = adcorre::engine::resolve_precision(
          info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "fp32", device);
      ProgramDesc program = parse_program(info[0].As<Napi::Object>());
      check_program(env, program);
      classes_ = program.classes;
      embedding_size_ = static_cast<size_t>(program.k) * program.d;
      image_size_ = static_cast<size_t>(program.channels) * program.size * program.size;
      try {
        engine_ = adcorre::engine::make_engine(std::move(program), max_batch, device, precision);
      } catch (const std::bad_alloc&) {
        throw Napi::Error::New(env, "Out of memory allocating the engine's buffers (lower the batch size)");
      }
    });
  }

 private:
  size_t index(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected parameter index");
    return static_cast<size_t>(
        integer_in(info[0], "parameter index", 0, static_cast<int64_t>(engine_->param_count()) - 1));
  }

  // A parameter-sized host array for parameter i.
  Napi::Float32Array fresh(Napi::Env env, size_t i) { return Napi::Float32Array::New(env, engine_->param_size(i)); }

  const float* sized(const Napi::Value& v, size_t i, const char* name) {
    auto arr = typed(v, napi_float32_array, name);
    if (arr.ElementLength() != engine_->param_size(i))
      throw Napi::RangeError::New(v.Env(), std::string("wrong length for ") + name);
    return data_of<float>(arr);
  }

  // Runs f, turning backend failures (CUDA errors) and any other C++ exception into JavaScript errors.
  template <typename F>
  auto guarded(Napi::Env env, F f) {
    return guard(env, "Engine", f);
  }

  // A training step's inputs as read from JavaScript. The synchronous step
  // points into the caller's arrays; the asynchronous one copies them first
  // (own()): a reference keeps an ArrayBuffer object alive, not its memory,
  // and a transfer (postMessage, structuredClone) detaches it and hands the
  // memory to a new owner that may free it while the step runs (issue #26,
  // as the asynchronous loss in binding.cpp).
  struct StepRequest {
    adcorre::engine::StepOptions options;
    const float* images = nullptr;
    const int32_t* labels = nullptr;
    int n = 0;
    size_t image_floats = 0, classes = 0;
    std::vector<float> images_copy, accuracy_copy, targets_copy;
    std::vector<int32_t> labels_copy;

    void own() {
      images_copy.assign(images, images + static_cast<size_t>(n) * image_floats);
      labels_copy.assign(labels, labels + n);
      images = images_copy.data();
      labels = labels_copy.data();
      if (options.class_accuracy) {
        accuracy_copy.assign(options.class_accuracy, options.class_accuracy + classes);
        options.class_accuracy = accuracy_copy.data();
      }
      if (options.targets) {
        targets_copy.assign(options.targets, options.targets + static_cast<size_t>(n) * classes);
        options.targets = targets_copy.data();
      }
    }
  };

  StepRequest read_step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[2].IsObject()) throw Napi::TypeError::New(env, "Expected options object");
    Napi::Object o = info[2].As<Napi::Object>();
    // The options first: a getter runs JavaScript, which could detach or
    // shrink an array already measured. No JavaScript runs after them.
    StepRequest r;
    adcorre::engine::StepOptions& s = r.options;
    s.lambda_ce = required_number(o, "lambdaCE");
    s.w_fd = required_number(o, "wFD");
    s.w_md = required_number(o, "wMD");
    s.w_ed = required_number(o, "wED");
    s.adcorre = required_boolean(o, "adcorre");
    const Napi::Value optimizer = o.Get("optimizer");
    const std::string optimizer_name = optimizer.IsString() ? optimizer.As<Napi::String>().Utf8Value() : "";
    if (optimizer_name != "adam" && optimizer_name != "sgd")
      throw Napi::TypeError::New(env, std::string("Expected 'adam' or 'sgd' for options.optimizer but received ") +
                                          (optimizer.IsString() ? "'" + optimizer_name + "'" : type_name(optimizer)) +
                                          " (every step option is required here)");
    s.adam = optimizer_name == "adam";
    s.lr = required_number(o, "lr");
    s.momentum = required_number(o, "momentum");
    s.nesterov = required_boolean(o, "nesterov");
    s.weight_decay = required_number(o, "weightDecay");
    s.bn_momentum = required_number(o, "bnMomentum");
    s.dropout_seed =
        static_cast<uint32_t>(integer_in(required_option(
                                             o, "seed", [](const Napi::Value& v) { return v.IsNumber(); }, "a number"),
                                         "options.seed", 0, 4294967295));
    const Napi::Value acc = o.Get("classAccuracy");
    const Napi::Value targets = o.Get("targets");

    auto images = typed(info[0], napi_float32_array, "images");
    auto labels = typed(info[1], napi_int32_array, "labels");
    const int n = static_cast<int>(std::min<size_t>(labels.ElementLength(), 2147483647));
    if (n < 1 || n > engine_->max_batch()) throw Napi::RangeError::New(env, "batch size outside 1..maxBatch");
    if (images.ElementLength() != static_cast<size_t>(n) * image_size_)
      throw Napi::RangeError::New(env, "Expected images of length n x channels x size x size = " +
                                           std::to_string(static_cast<size_t>(n) * image_size_) + " but received " +
                                           std::to_string(images.ElementLength()));
    if (acc.IsTypedArray()) {
      auto a = typed(acc, napi_float32_array, "classAccuracy");
      if (a.ElementLength() != static_cast<size_t>(classes_))
        throw Napi::RangeError::New(env, "Expected classAccuracy of length classes = " + std::to_string(classes_));
      s.class_accuracy = data_of<float>(a);
    }
    if (targets.IsTypedArray()) {
      auto t = typed(targets, napi_float32_array, "targets");
      if (t.ElementLength() != static_cast<size_t>(n) * classes_)
        throw Napi::RangeError::New(env, "targets must hold batch x classes values");
      s.targets = data_of<float>(t);
    }
    r.images = data_of<float>(images);
    r.labels = data_of<int32_t>(labels);
    r.n = n;
    r.image_floats = image_size_;
    r.classes = static_cast<size_t>(classes_);
    return r;
  }

  static Napi::Object step_result(Napi::Env env, const adcorre::engine::StepResult& r,
                                  const Napi::Int32Array& predictions) {
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", r.loss);
    out.Set("ce", r.ce);
    out.Set("fd", r.fd);
    out.Set("md", r.md);
    out.Set("ed", r.ed);
    out.Set("correct", r.correct);
    out.Set("finite", r.finite);
    if (!r.bad_layer.empty()) out.Set("badLayer", r.bad_layer);
    out.Set("predictions", predictions);
    return out;
  }

  // While an asynchronous step runs on a worker thread, the engine is its
  // alone: every other call is refused rather than raced.
  void check_idle(Napi::Env env, const char* call) const {
    if (busy_)
      throw Napi::Error::New(env, std::string("Expected no trainStepAsync running on this engine for ") + call +
                                      " but one is: await its promise first (one step at a time per engine)");
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_idle(env, "trainStep");
    return guarded(env, [&]() -> Napi::Value {
      const StepRequest r = read_step(info);
      auto predictions = Napi::Int32Array::New(env, r.n);
      const adcorre::engine::StepResult result =
          engine_->train_step(r.images, r.labels, r.n, r.options, predictions.Data());
      return step_result(env, result, predictions);
    });
  }

  // The step on libuv's pool (sharp's pattern): the inputs copied at the
  // call, the engine marked busy and its JavaScript object held until the
  // promise settles, the result built back on the JavaScript thread.
  class StepWorker : public Napi::AsyncWorker {
   public:
    StepWorker(Napi::Env env, EngineWrap* engine, StepRequest request)
        : Napi::AsyncWorker(env, "adcorre:trainStep"),
          deferred_(Napi::Promise::Deferred::New(env)),
          engine_(engine),
          request_(std::move(request)),
          predictions_(request_.n) {
      engine_->busy_ = true;
      engine_->Ref();  // the engine outlives the step even if JavaScript drops it
    }
    Napi::Promise promise() { return deferred_.Promise(); }

    void Execute() override {
      try {
        result_ = engine_->engine_->train_step(request_.images, request_.labels, request_.n, request_.options,
                                               predictions_.data());
      } catch (...) {
        error_ = std::current_exception();  // turned into the synchronous step's JavaScript error in OnOK
      }
    }
    void OnOK() override {
      Napi::Env env = Env();
      release();
      try {
        if (error_) guard(env, "Engine", [&] { std::rethrow_exception(error_); });
        auto predictions = Napi::Int32Array::New(env, predictions_.size());
        std::copy(predictions_.begin(), predictions_.end(), predictions.Data());
        deferred_.Resolve(step_result(env, result_, predictions));
      } catch (const Napi::Error& e) { deferred_.Reject(e.Value()); }
    }
    void OnError(const Napi::Error& e) override {
      release();
      deferred_.Reject(e.Value());
    }

   private:
    void release() {
      engine_->busy_ = false;
      engine_->Unref();
    }

    Napi::Promise::Deferred deferred_;
    EngineWrap* engine_;
    StepRequest request_;
    std::vector<int32_t> predictions_;
    adcorre::engine::StepResult result_;
    std::exception_ptr error_;
  };

  Napi::Value TrainStepAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_idle(env, "trainStepAsync");
    return guarded(env, [&]() -> Napi::Value {
      StepRequest r = read_step(info);
      r.own();
      auto* worker = new StepWorker(env, this, std::move(r));
      Napi::Promise promise = worker->promise();
      worker->Queue();
      return promise;
    });
  }

  // predict(images, n, classes, embeddingSize): classes and embeddingSize
  // must be the program's (they size the outputs the engine writes).
  Napi::Value Predict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    check_idle(env, "predict");
    return guarded(env, [&]() -> Napi::Value {
      auto images = typed(info[0], napi_float32_array, "images");
      const int n = static_cast<int>(integer_in(info[1], "n", 1, 2147483647));
      integer_in(info[2], "classes", classes_, classes_);
      integer_in(info[3], "embeddingSize", static_cast<int64_t>(embedding_size_),
                 static_cast<int64_t>(embedding_size_));
      if (images.ElementLength() != static_cast<size_t>(n) * image_size_)
        throw Napi::RangeError::New(env, "Expected images of length n x channels x size x size = " +
                                             std::to_string(static_cast<size_t>(n) * image_size_) + " but received " +
                                             std::to_string(images.ElementLength()));
      auto probs = Napi::Float32Array::New(env, static_cast<size_t>(n) * classes_);
      auto embeddings = Napi::Float32Array::New(env, static_cast<size_t>(n) * embedding_size_);
      engine_->predict(data_of<float>(images), n, probs.Data(), embeddings.Data());
      Napi::Object out = Napi::Object::New(env);
      out.Set("probs", probs);
      out.Set("embeddings", embeddings);
      return out;
    });
  }

  Napi::Value ParamCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine_->param_count()));
  }
  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "getParam");
    const size_t i = index(info);
    auto out = fresh(info.Env(), i);
    guarded(info.Env(), [&] { engine_->read_param(i, out.Data()); });
    return out;
  }
  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "getGrad");
    const size_t i = index(info);
    auto out = fresh(info.Env(), i);
    guarded(info.Env(), [&] { engine_->read_grad(i, out.Data()); });
    return out;
  }
  void SetParam(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "setParam");
    const size_t i = index(info);
    const float* in = sized(info[1], i, "parameter");
    guarded(info.Env(), [&] { engine_->write_param(i, in); });
  }
  Napi::Value GetMoments(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "getMoments");
    const size_t i = index(info);
    auto m = fresh(info.Env(), i), v = fresh(info.Env(), i);
    guarded(info.Env(), [&] { engine_->read_moments(i, m.Data(), v.Data()); });
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("m", m);
    out.Set("v", v);
    return out;
  }
  void SetMoments(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "setMoments");
    const size_t i = index(info);
    const float* m = sized(info[1], i, "m");
    const float* v = sized(info[2], i, "v");
    guarded(info.Env(), [&] { engine_->write_moments(i, m, v); });
  }
  // what the GEMM-based ops compute in, 'auto' resolved: "fp32" or "bf16" (fixed at construction)
  Napi::Value GetPrecision(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), adcorre::engine::precision_name(engine_->backend().precision()));
  }
  Napi::Value GetSteps(const Napi::CallbackInfo& info) {
    check_idle(info.Env(), "steps");
    return Napi::Number::New(info.Env(), static_cast<double>(engine_->steps()));
  }
  void SetSteps(const Napi::CallbackInfo&, const Napi::Value& v) {
    check_idle(v.Env(), "steps");
    engine_->set_steps(integer_in(v, "steps", 0, int64_t{1} << 53));
  }

  std::unique_ptr<adcorre::engine::Executor> engine_;
  int classes_ = 0;
  size_t embedding_size_ = 0;  // k x d
  size_t image_size_ = 0;      // channels x size x size
  bool busy_ = false;          // a trainStepAsync holds the engine
};

// opTable(): the op table (native/engine/op_table.h) for the TypeScript layer:
// { ops: [{ name, inputs (-1: one or more), params }], constants: { inputEps,
// bnEps, l2Eps, poolKernel, poolStride } }.
Napi::Value OpTable(const Napi::CallbackInfo& info) {
  namespace e = adcorre::engine;
  Napi::Env env = info.Env();
  Napi::Array ops = Napi::Array::New(env);
  for (const e::OpInfo& op : e::kOpTable) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", op.name);
    o.Set("inputs", op.inputs);
    o.Set("params", op.params);
    ops.Set(ops.Length(), o);
  }
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("inputEps", e::kInputEps);
  constants.Set("bnEps", e::kBnEps);
  constants.Set("l2Eps", e::kL2Eps);
  constants.Set("poolKernel", e::kPoolKernel);
  constants.Set("poolStride", e::kPoolStride);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ops", ops);
  out.Set("constants", constants);
  return out;
}

// programShapes(program): every tensor's channels, height and width (Int32Arrays
// by tensor id) and every op's padding [top, left, bottom, right] (an
// Int32Array of 4 per op), by the op table's shape rules: what the executor
// plans its buffers with. The program is checked as the Engine checks it.
Napi::Value ProgramShapes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Expected (program)");
  return guard(env, "programShapes", [&]() -> Napi::Value {
    const ProgramDesc program = parse_program(info[0].As<Napi::Object>());
    check_program(env, program);
    const adcorre::engine::TensorShapes sh = adcorre::engine::infer_shapes(program);
    const size_t tensors = sh.c.size(), ops = sh.ops.size();
    auto c = Napi::Int32Array::New(env, tensors), h = Napi::Int32Array::New(env, tensors),
         w = Napi::Int32Array::New(env, tensors);
    for (size_t t = 0; t < tensors; ++t) {
      c[t] = sh.c[t];
      h[t] = sh.h[t];
      w[t] = sh.w[t];
    }
    auto pads = Napi::Int32Array::New(env, 4 * ops);
    for (size_t i = 0; i < ops; ++i) {
      const adcorre::engine::OpGeometry& g = sh.ops[i];
      pads[4 * i] = g.pad_top;
      pads[4 * i + 1] = g.pad_left;
      pads[4 * i + 2] = g.pad_bottom;
      pads[4 * i + 3] = g.pad_right;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("c", c);
    out.Set("h", h);
    out.Set("w", w);
    out.Set("pads", pads);
    return out;
  });
}

// windowGeometry(side, kernel, stride, same): along one axis, the output side
// of a window op (conv, maxpool) and its padding before and after, by the op
// table's window rule.
Napi::Value WindowGeometry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, "windowGeometry", [&]() -> Napi::Value {
    constexpr int64_t kSide = 1 << 16;
    const int side = static_cast<int>(integer_in(info[0], "side", 1, kSide));
    const int kernel = static_cast<int>(integer_in(info[1], "kernel", 1, kSide));
    const int stride = static_cast<int>(integer_in(info[2], "stride", 1, kSide));
    if (!info[3].IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for same");
    const adcorre::engine::OpGeometry g = adcorre::engine::window(adcorre::engine::Dims{1, side, side}, 1, kernel,
                                                                  stride, info[3].As<Napi::Boolean>().Value());
    Napi::Object out = Napi::Object::New(env);
    out.Set("out", g.out.h);
    out.Set("before", g.pad_top);
    out.Set("after", g.pad_bottom);
    return out;
  });
}

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Define(env));
  exports.Set("opTable", Napi::Function::New(env, OpTable, "opTable"));
  exports.Set("programShapes", Napi::Function::New(env, ProgramShapes, "programShapes"));
  exports.Set("windowGeometry", Napi::Function::New(env, WindowGeometry, "windowGeometry"));
}
