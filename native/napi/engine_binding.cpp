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
#include "args.h"
#include "program.h"

namespace {

using adcorre::engine::ProgramDesc;
using adcorre::napi::check_program;
using adcorre::napi::data_of;
using adcorre::napi::guard;
using adcorre::napi::integer_in;
using adcorre::napi::parse_program;
using adcorre::napi::type_name;
using adcorre::napi::typed;

// The step options are all required: the binding has no training defaults of
// its own (lib/engine/engine.ts fills what a caller leaves out from
// TRAINING_DEFAULTS, lib/train/defaults.ts), so that one layer owns each.
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

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("Engine", EngineWrap::Define(env));
  adcorre::napi::init_program_bindings(env, exports);
}
