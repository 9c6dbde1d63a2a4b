// N-API glue for the training engine: class Engine(program, maxBatch) with
// trainStep / predict / parameter and optimizer-state access. Argument checks
// with user-facing messages live in lib/engine/engine.ts; these guarantee
// memory safety.
#include <napi.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "../engine/engine.h"
#include "typed_array.h"

namespace {

using adcorre::engine::OpDesc;
using adcorre::engine::OpKind;
using adcorre::engine::ProgramDesc;

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

double num_of(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

ProgramDesc parse_program(const Napi::Object& o) {
  static const std::map<std::string, OpKind> kinds = {{"standardize", OpKind::Standardize},
                                                      {"conv", OpKind::Conv},
                                                      {"bn", OpKind::BatchNorm},
                                                      {"relu", OpKind::Relu},
                                                      {"maxpool", OpKind::MaxPool},
                                                      {"add", OpKind::Add},
                                                      {"gap", OpKind::Gap},
                                                      {"dense", OpKind::Dense},
                                                      {"l2norm", OpKind::L2Norm},
                                                      {"concat", OpKind::Concat},
                                                      {"dropout", OpKind::Dropout},
                                                      {"softmax", OpKind::Softmax}};
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
    auto it = kinds.find(kind);
    if (it == kinds.end()) throw Napi::RangeError::New(env, "program: unknown op kind " + kind);
    d.kind = it->second;
    d.name = op.Get("name").ToString().Utf8Value();
    Napi::Array inputs = op.Get("inputs").As<Napi::Array>();
    for (uint32_t j = 0; j < inputs.Length(); ++j)
      d.inputs.push_back(in_range(inputs.Get(j).As<Napi::Number>().Int32Value()));
    if (d.inputs.empty()) throw Napi::RangeError::New(env, "program: op without inputs");
    d.output = in_range(int_of(op, "output"));
    d.param = int_of(op, "param");
    const int needed = d.kind == OpKind::Conv ? 1 : d.kind == OpKind::BatchNorm ? 4 : d.kind == OpKind::Dense ? 2 : 0;
    if (needed && (d.param < 0 || d.param + needed > static_cast<int>(p.param_sizes.size())))
      throw Napi::RangeError::New(env, "program: parameter index out of range at " + d.name);
    d.in_c = int_of(op, "inC", 0);
    d.out_c = int_of(op, "outC", 0);
    d.kernel = int_of(op, "kernel", 1);
    d.stride = int_of(op, "stride", 1);
    d.same = op.Get("same").ToBoolean().Value();
    d.depthwise = op.Get("depthwise").ToBoolean().Value();
    d.rate = num_of(op, "rate", 0);
    d.eps = num_of(op, "eps", 0);
    if (d.kind == OpKind::Standardize && !(d.eps > 0))
      throw Napi::RangeError::New(env, "program: standardize needs eps > 0 at " + d.name);
    p.ops.push_back(d);
  }
  return p;
}

class EngineWrap : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {
                           InstanceMethod("trainStep", &EngineWrap::TrainStep),
                           InstanceMethod("predict", &EngineWrap::Predict),
                           InstanceMethod("paramCount", &EngineWrap::ParamCount),
                           InstanceMethod("getParam", &EngineWrap::GetParam),
                           InstanceMethod("setParam", &EngineWrap::SetParam),
                           InstanceMethod("getGrad", &EngineWrap::GetGrad),
                           InstanceMethod("getMoments", &EngineWrap::GetMoments),
                           InstanceMethod("setMoments", &EngineWrap::SetMoments),
                           InstanceAccessor("steps", &EngineWrap::GetSteps, &EngineWrap::SetSteps),
                       });
  }

  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsNumber())
      throw Napi::TypeError::New(env, "Expected (program, maxBatch[, device])");
    // device: -1 the CPU, else the index of a CUDA device
    const int device = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    try {
      ProgramDesc program = parse_program(info[0].As<Napi::Object>());
      classes_ = program.classes;
      const int max_batch = info[1].As<Napi::Number>().Int32Value();
      engine_ = adcorre::engine::make_engine(std::move(program), max_batch, device);
    } catch (const std::bad_alloc&) {
      throw Napi::Error::New(env, "Out of memory allocating the engine's buffers (lower the batch size)");
    } catch (const std::invalid_argument& e) {
      throw Napi::RangeError::New(env, e.what());
    } catch (const adcorre::BackendError& e) { throw Napi::Error::New(env, e.what()); }
  }

 private:
  size_t index(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "Expected parameter index");
    const int64_t i = info[0].As<Napi::Number>().Int64Value();
    if (i < 0 || static_cast<size_t>(i) >= engine_->param_count())
      throw Napi::RangeError::New(info.Env(), "parameter index out of range");
    return static_cast<size_t>(i);
  }

  // A parameter-sized host array for parameter i.
  Napi::Float32Array fresh(Napi::Env env, size_t i) { return Napi::Float32Array::New(env, engine_->param_size(i)); }

  const float* sized(const Napi::Value& v, size_t i, const char* name) {
    auto arr = typed(v, napi_float32_array, name);
    if (arr.ElementLength() != engine_->param_size(i))
      throw Napi::RangeError::New(v.Env(), std::string("wrong length for ") + name);
    return data_of<float>(arr);
  }

  // Runs f, turning backend failures (CUDA errors) into JavaScript errors.
  template <typename F>
  auto guarded(Napi::Env env, F f) {
    try {
      return f();
    } catch (const std::invalid_argument& e) {
      throw Napi::RangeError::New(env, e.what());
    } catch (const adcorre::BackendError& e) { throw Napi::Error::New(env, e.what()); }
  }

  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto images = typed(info[0], napi_float32_array, "images");
    auto labels = typed(info[1], napi_int32_array, "labels");
    Napi::Object o = info[2].As<Napi::Object>();
    const int n = static_cast<int>(labels.ElementLength());
    if (n < 1 || n > engine_->max_batch()) throw Napi::RangeError::New(env, "batch size outside 1..maxBatch");
    const size_t per = images.ElementLength() / n;
    if (per * n != images.ElementLength())
      throw Napi::RangeError::New(env, "images length is not a multiple of the batch");
    adcorre::engine::StepOptions s;
    s.lambda_ce = num_of(o, "lambdaCE", 1);
    s.w_fd = num_of(o, "wFD", 1);
    s.w_md = num_of(o, "wMD", 1);
    s.w_ed = num_of(o, "wED", 1);
    s.adcorre = o.Get("adcorre").ToBoolean().Value();
    s.adam = o.Get("optimizer").ToString().Utf8Value() != "sgd";
    s.lr = num_of(o, "lr", 1e-3);
    s.momentum = num_of(o, "momentum", 0.9);
    s.weight_decay = num_of(o, "weightDecay", 0);
    s.bn_momentum = num_of(o, "bnMomentum", 0.99);
    s.dropout_seed = static_cast<uint32_t>(num_of(o, "seed", 0));
    Napi::Value acc = o.Get("classAccuracy");
    if (acc.IsTypedArray()) s.class_accuracy = data_of<float>(typed(acc, napi_float32_array, "classAccuracy"));
    Napi::Value targets = o.Get("targets");
    if (targets.IsTypedArray()) {
      auto t = typed(targets, napi_float32_array, "targets");
      if (t.ElementLength() != static_cast<size_t>(n) * classes_)
        throw Napi::RangeError::New(env, "targets must hold batch x classes values");
      s.targets = data_of<float>(t);
    }
    auto predictions = Napi::Int32Array::New(env, n);
    const adcorre::engine::StepResult r = guarded(env, [&] {
      return engine_->train_step(data_of<float>(images), data_of<int32_t>(labels), n, s, predictions.Data());
    });
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

  Napi::Value Predict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto images = typed(info[0], napi_float32_array, "images");
    const int n = info[1].As<Napi::Number>().Int32Value();
    const int classes = info[2].As<Napi::Number>().Int32Value();
    const int emb = info[3].As<Napi::Number>().Int32Value();
    if (n < 1) throw Napi::RangeError::New(env, "n must be >= 1");
    auto probs = Napi::Float32Array::New(env, static_cast<size_t>(n) * classes);
    auto embeddings = Napi::Float32Array::New(env, static_cast<size_t>(n) * emb);
    guarded(env, [&] { engine_->predict(data_of<float>(images), n, probs.Data(), embeddings.Data()); });
    Napi::Object out = Napi::Object::New(env);
    out.Set("probs", probs);
    out.Set("embeddings", embeddings);
    return out;
  }

  Napi::Value ParamCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine_->param_count()));
  }
  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    const size_t i = index(info);
    auto out = fresh(info.Env(), i);
    guarded(info.Env(), [&] { engine_->read_param(i, out.Data()); });
    return out;
  }
  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    const size_t i = index(info);
    auto out = fresh(info.Env(), i);
    guarded(info.Env(), [&] { engine_->read_grad(i, out.Data()); });
    return out;
  }
  void SetParam(const Napi::CallbackInfo& info) {
    const size_t i = index(info);
    const float* in = sized(info[1], i, "parameter");
    guarded(info.Env(), [&] { engine_->write_param(i, in); });
  }
  Napi::Value GetMoments(const Napi::CallbackInfo& info) {
    const size_t i = index(info);
    auto m = fresh(info.Env(), i), v = fresh(info.Env(), i);
    guarded(info.Env(), [&] { engine_->read_moments(i, m.Data(), v.Data()); });
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("m", m);
    out.Set("v", v);
    return out;
  }
  void SetMoments(const Napi::CallbackInfo& info) {
    const size_t i = index(info);
    const float* m = sized(info[1], i, "m");
    const float* v = sized(info[2], i, "v");
    guarded(info.Env(), [&] { engine_->write_moments(i, m, v); });
  }
  Napi::Value GetSteps(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(engine_->steps()));
  }
  void SetSteps(const Napi::CallbackInfo&, const Napi::Value& v) {
    engine_->set_steps(v.As<Napi::Number>().Int64Value());
  }

  std::unique_ptr<adcorre::engine::Executor> engine_;
  int classes_ = 0;
};

}  // namespace

void InitEngine(Napi::Env env, Napi::Object exports) { exports.Set("Engine", EngineWrap::Define(env)); }
