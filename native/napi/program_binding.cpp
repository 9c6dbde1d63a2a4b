// N-API glue for the engine's program and the op table: the program parser
// and checks the Engine constructor runs, and the bindings that hand the op
// table to TypeScript (opTable, programShapes, windowGeometry).
//
// Design note. Nothing here names an op: each op's fields are read, typed and
// range-checked by its field list in the op table (native/engine/op_table.h),
// its inputs counted by the table's arity, its shape checked by the table's
// shape rule (op_geometry) and its parameters' sizes by the table's shapes.
// A new op row needs no code here.
#define NODE_ADDON_API_CPP_EXCEPTIONS_ALL  // as binding.cpp: every C++ exception leaves as a JavaScript error
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "../engine/engine.h"
#include "args.h"
#include "program.h"

namespace adcorre::napi {

using namespace adcorre::engine;

namespace {

int int_of(const Napi::Object& o, const char* key, int fallback = -1) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : fallback;
}

// Reads field f of the program's op object into d, as the op table types it.
void read_field(const Napi::Object& op, const OpField& f, OpDesc& d) {
  Napi::Env env = op.Env();
  const Napi::Value v = op.Get(f.name);
  const std::string what = std::string(f.name) + " of " + d.name;
  switch (f.type) {
    case FieldType::Count:
      d.*f.count =
          static_cast<int>(integer_in(v, what, static_cast<int64_t>(f.min), static_cast<int64_t>(f.max), "program: "));
      return;
    case FieldType::Real: {
      const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
      if (!(x >= f.min && x < f.max))
        throw Napi::RangeError::New(env, "program: Expected a number in [" + number_text(f.min) + ", " +
                                             number_text(f.max) + ") for " + what + " but received " +
                                             (v.IsNumber() ? number_text(x) : std::string(type_name(v))));
      d.*f.real = x;
      return;
    }
    case FieldType::Flag:
      if (!v.IsBoolean())
        throw Napi::TypeError::New(env, "program: Expected a boolean for " + what + " but received " + type_name(v));
      d.*f.flag = v.As<Napi::Boolean>().Value();
      return;
    case FieldType::Padding: {
      const std::string padding = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      if (padding != "valid" && padding != "same")
        throw Napi::TypeError::New(env, "program: Expected 'valid' or 'same' for " + what + " but received " +
                                            (v.IsString() ? "'" + padding + "'" : std::string(type_name(v))));
      d.*f.flag = padding == "same";
      return;
    }
  }
}

}  // namespace

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
    const OpInfo* info = find_op(kind);
    if (!info) throw Napi::RangeError::New(env, "program: unknown op kind " + kind);
    d.kind = info->kind;
    d.name = op.Get("name").ToString().Utf8Value();
    Napi::Array inputs = op.Get("inputs").As<Napi::Array>();
    for (uint32_t j = 0; j < inputs.Length(); ++j)
      d.inputs.push_back(in_range(inputs.Get(j).As<Napi::Number>().Int32Value()));
    if (d.inputs.empty()) throw Napi::RangeError::New(env, "program: op without inputs");
    d.output = in_range(int_of(op, "output"));
    d.param = int_of(op, "param");
    const int needed = info->params.size;
    if (needed && (d.param < 0 || d.param + needed > static_cast<int>(p.param_sizes.size())))
      throw Napi::RangeError::New(env, "program: parameter index out of range at " + d.name);
    for (const OpField& f : info->fields) read_field(op, f, d);
    p.ops.push_back(d);
  }
  return p;
}

// The executor trusts its program (lib/engine/engine.ts builds it from the
// model definition); a hand-made one reaches it only through this addon, so
// everything the executor indexes with is checked here: sizes its arithmetic
// can take (a stride of 0 divides by zero, a tensor count of 2^31 asks for
// 24 GB of bookkeeping; the fields' ranges, read by parse_program), ops
// reading only tensors already written, and parameters as long as the ops
// read them.
void check_program(Napi::Env env, const ProgramDesc& p) {
  auto fail = [&](const std::string& what) { throw Napi::RangeError::New(env, "program: " + what); };
  auto in = [&](int v, int lo, int hi, const std::string& name) {
    if (v < lo || v > hi)
      fail("Expected integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "] for " + name +
           " but received " + std::to_string(v));
  };
  if (p.ops.empty()) fail("Expected at least one op but received none");
  // every tensor but the input is some op's output
  in(p.tensors, 1, static_cast<int>(std::min<size_t>(p.ops.size() + 1, kMaxInt)), "tensors (ops + 1 at most)");
  in(p.channels, 1, kMaxSide, "channels");
  in(p.size, 1, kMaxSide, "size");
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
    const OpInfo& info = op_info(op.kind);
    if (info.inputs != kAnyInputs && op.inputs.size() != static_cast<size_t>(info.inputs))
      fail("Expected " + std::to_string(info.inputs) + " input" + (info.inputs == 1 ? "" : "s") + " for " + info.name +
           " " + op.name + " but received " + std::to_string(op.inputs.size()));
  }
  if (!written[p.embeddings] || !written[p.logits] || !written[p.probs])
    fail("Expected ops writing the embeddings, logits and probs tensors");
  const TensorShapes sh = infer_shapes(p);  // the shape rules check each op against its inputs
  for (const OpDesc& op : p.ops) {
    const OpInfo& info = op_info(op.kind);
    for (int i = 0; i < info.params.size; ++i) {
      const double want = param_floats(info, info.params[i], op);
      const size_t got = p.param_sizes[static_cast<size_t>(op.param + i)];
      if (static_cast<double>(got) != want)
        fail("Expected paramSizes[" + std::to_string(op.param + i) + "] = " + number_text(want) + " for " + op.name +
             " but received " + std::to_string(got));
    }
  }
  if (sh.per_sample[p.embeddings] != static_cast<size_t>(p.k) * p.d)
    fail("Expected the embeddings tensor to hold k x d values per sample");
  if (sh.per_sample[p.logits] != static_cast<size_t>(p.classes) || sh.per_sample[p.probs] != sh.per_sample[p.logits])
    fail("Expected the logits and probs tensors to hold classes values per sample");
}

namespace {

const char* type_text(FieldType type) {
  switch (type) {
    case FieldType::Count:
      return "count";
    case FieldType::Real:
      return "real";
    case FieldType::Flag:
      return "flag";
    case FieldType::Padding:
      return "padding";
  }
  return "";
}

const char* init_text(ParamInit init) {
  switch (init) {
    case ParamInit::He:
      return "he";
    case ParamInit::Glorot:
      return "glorot";
    case ParamInit::One:
      return "one";
    case ParamInit::Zero:
      return "zero";
  }
  return "";
}

Napi::Object field_object(Napi::Env env, const OpField& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", f.name);
  o.Set("type", type_text(f.type));
  if (f.type == FieldType::Count || f.type == FieldType::Real) {
    o.Set("min", f.min);
    o.Set("max", f.max);
  }
  if (f.match != FieldMatch::None)
    o.Set("equals", f.match == FieldMatch::InputChannels ? "inputChannels" : "inputFeatures");
  return o;
}

Napi::Object param_object(Napi::Env env, const OpParam& p) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", p.name);
  o.Set("init", init_text(p.init));
  o.Set("trainable", p.role != ParamRole::Running);
  o.Set("decay", p.role == ParamRole::Decayed);
  Napi::Array shape = Napi::Array::New(env);
  for (int d = 0; d < p.rank(); ++d) {
    Napi::Object side = Napi::Object::New(env);
    side.Set("field", p.shape[d].field);
    if (p.shape[d].one_if) side.Set("oneIf", p.shape[d].one_if);
    shape.Set(shape.Length(), side);
  }
  o.Set("shape", shape);
  return o;
}

// opTable(): the op table for the TypeScript layer (lib/model/ops.ts's OpTable
// documents the fields); scripts/gen-ops.js writes it out as
// lib/model/ops.generated.ts.
Napi::Value OpTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array ops = Napi::Array::New(env);
  for (const OpInfo& op : kOpTable) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", op.name);
    o.Set("inputs", op.inputs);
    Napi::Array fields = Napi::Array::New(env), params = Napi::Array::New(env);
    for (const OpField& f : op.fields) fields.Set(fields.Length(), field_object(env, f));
    for (const OpParam& p : op.params) params.Set(params.Length(), param_object(env, p));
    o.Set("fields", fields);
    o.Set("params", params);
    ops.Set(ops.Length(), o);
  }
  Napi::Object constants = Napi::Object::New(env);
  constants.Set("inputEps", kInputEps);
  constants.Set("bnEps", kBnEps);
  constants.Set("l2Eps", kL2Eps);
  constants.Set("poolKernel", kPoolKernel);
  constants.Set("poolStride", kPoolStride);
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
    const TensorShapes sh = infer_shapes(program);
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
      const OpGeometry& g = sh.ops[i];
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
    const int side = static_cast<int>(integer_in(info[0], "side", 1, kMaxSide));
    const int kernel = static_cast<int>(integer_in(info[1], "kernel", 1, kMaxSide));
    const int stride = static_cast<int>(integer_in(info[2], "stride", 1, kMaxSide));
    if (!info[3].IsBoolean()) throw Napi::TypeError::New(env, "Expected a boolean for same");
    const OpGeometry g = window(Dims{1, side, side}, 1, kernel, stride, info[3].As<Napi::Boolean>().Value());
    Napi::Object out = Napi::Object::New(env);
    out.Set("out", g.out.h);
    out.Set("before", g.pad_top);
    out.Set("after", g.pad_bottom);
    return out;
  });
}

}  // namespace

void init_program_bindings(Napi::Env env, Napi::Object exports) {
  exports.Set("opTable", Napi::Function::New(env, OpTable, "opTable"));
  exports.Set("programShapes", Napi::Function::New(env, ProgramShapes, "programShapes"));
  exports.Set("windowGeometry", Napi::Function::New(env, WindowGeometry, "windowGeometry"));
}

}  // namespace adcorre::napi
