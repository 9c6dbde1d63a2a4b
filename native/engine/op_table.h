// The op table: every op of the training engine's program declared once
// (ggml's rule): its name in the program, how many inputs it takes, its
// fields (what the program gives it beyond its tensors), its parameter
// tensors (names, order, shapes, initialisation, role), the rule that gives
// its output's shape, and the ops' constants. The executor's shape pass
// (infer_shapes), the binding's program parser and checks, and, through the
// binding's opTable() and lib/model/ops.generated.ts (scripts/gen-ops.js
// writes it from opTable(); test/op-table.test.js fails while it is stale),
// the TypeScript op types (lib/model/ops.ts), parameter lists
// (lib/model/architecture.ts), native program (lib/model/program.ts),
// memory estimate and ONNX exporter all read it; none of them writes a field
// list, a parameter list, a shape rule or a constant of its own.
//
// Adding an op: native/README.md.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops.h"  // conv_out, same_pad_before: the window arithmetic the kernels themselves use

namespace adcorre::engine {

// ---- the ops' constants
constexpr double kInputEps = 1e-3;  // standardize: per image (x - mean) / sqrt(var + eps), the eps it is given
constexpr double kBnEps = 1e-3;     // batch norm: Keras' default
constexpr double kL2Eps = 1e-12;    // l2norm: x / sqrt(max(|x|^2, eps)) per row
// maxpool: 3x3 windows, stride 2, 'same' padding (as the kernels of ops_cpu_pool_dense.cpp and ops_cuda_pool_dense.cu)
constexpr int kPoolKernel = 3, kPoolStride = 2;
// The largest channel count, kernel side and stride a program may give (the sizes the kernels' int arithmetic takes).
constexpr int kMaxSide = 1 << 16, kMaxInt = 2147483647;

// Channels, height and width of one sample of a tensor (features: c x 1 x 1).
struct Dims {
  int c = 0, h = 1, w = 1;
};

// What an op's shape rule gives: its output's dims and, for a window op
// (conv, maxpool), the padding around its input ('same': the odd pixel after).
struct OpGeometry {
  Dims out;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

struct OpDesc;
// An op's output geometry from its inputs' dims; throws invalid_argument where the inputs do not fit the op.
using ShapeRule = OpGeometry (*)(const OpDesc& op, const std::vector<Dims>& inputs);

// Inputs: the count an op takes, or kAnyInputs (one or more).
constexpr int kAnyInputs = -1;

// X(kind, name in the program, inputs, fields, parameter tensors, shape rule)
#define ADCORRE_OPS(X)                                                        \
  X(Standardize, "standardize", 1, kStandardizeFields, kNoParams, keep_shape) \
  X(Conv, "conv", 1, kConvFields, kConvParams, conv_geometry)                 \
  X(BatchNorm, "bn", 1, kBatchNormFields, kBatchNormParams, keep_shape)       \
  X(Relu, "relu", 1, kNoFields, kNoParams, keep_shape)                        \
  X(MaxPool, "maxpool", 1, kNoFields, kNoParams, pool_geometry)               \
  X(Add, "add", 2, kNoFields, kNoParams, sum_of_equal_sizes)                  \
  X(Gap, "gap", 1, kNoFields, kNoParams, features_of_channels)                \
  X(Dense, "dense", 1, kDenseFields, kDenseParams, dense_features)            \
  X(L2Norm, "l2norm", 1, kNoFields, kNoParams, keep_shape)                    \
  X(Concat, "concat", kAnyInputs, kNoFields, kNoParams, concat_features)      \
  X(Dropout, "dropout", 1, kDropoutFields, kNoParams, keep_shape)             \
  X(Softmax, "softmax", 1, kNoFields, kNoParams, keep_shape)

#define ADCORRE_OP_KIND(kind, name, inputs, fields, params, rule) kind,
enum class OpKind { ADCORRE_OPS(ADCORRE_OP_KIND) };
#undef ADCORRE_OP_KIND

// One op of a program. The members below `param` are the ops' fields, filled
// by the binding from the program as each op's field list (below) names them.
struct OpDesc {
  OpKind kind;
  std::string name;
  std::vector<int> inputs;  // tensor ids
  int output = -1;
  int param = -1;  // index of the op's first parameter tensor; the others follow in the op's order
  int in_c = 0, out_c = 0, kernel = 0, stride = 1;
  bool same = false, depthwise = false;
  double rate = 0;         // dropout
  double eps = kInputEps;  // standardize
};

// A read-only view of a constexpr array (an op's fields or parameters).
template <typename T>
struct List {
  const T* items = nullptr;
  int size = 0;
  constexpr List() = default;
  template <size_t N>
  constexpr List(const T (&array)[N]) : items(array), size(static_cast<int>(N)) {}
  constexpr const T* begin() const { return items; }
  constexpr const T* end() const { return items + size; }
  constexpr const T& operator[](int i) const { return items[i]; }
};

// ---- fields: what the program gives an op beyond its tensors, by their name
// there (lib/model/ops.ts's Op has the same names)
enum class FieldType {
  Count,    // an integer in [min, max]
  Real,     // a number in [min, max)
  Flag,     // a boolean
  Padding,  // 'valid' or 'same' (the flag: same)
};
// What a count must equal once the shapes are known (checked by op_geometry).
enum class FieldMatch { None, InputChannels, InputFeatures };

struct OpField {
  const char* name;
  FieldType type;
  int OpDesc::*count = nullptr;    // Count
  double OpDesc::*real = nullptr;  // Real
  bool OpDesc::*flag = nullptr;    // Flag, Padding
  double min = 0, max = 0;
  FieldMatch match = FieldMatch::None;
};

constexpr OpField count_field(const char* name, int OpDesc::*member, int max, FieldMatch match = FieldMatch::None) {
  return {name, FieldType::Count, member, nullptr, nullptr, 1, static_cast<double>(max), match};
}
constexpr OpField real_field(const char* name, double OpDesc::*member, double min, double max) {
  return {name, FieldType::Real, nullptr, member, nullptr, min, max, FieldMatch::None};
}
constexpr OpField flag_field(const char* name, bool OpDesc::*member, FieldType type = FieldType::Flag) {
  return {name, type, nullptr, nullptr, member, 0, 0, FieldMatch::None};
}

// ---- parameter tensors: named "<op name>.<name>", stored from OpDesc::param on in the op's order
enum class ParamInit { He, Glorot, One, Zero };  // He-normal fan-in, Glorot-uniform, ones, zeros
enum class ParamRole {
  Decayed,  // trained, with weight decay (convolution and dense weights)
  Trained,  // trained, no weight decay
  Running,  // not trained: running statistics the batch norm commits
};
// One side of a parameter's shape: the value of the op's count `field`, or 1 where its flag `one_if` is set.
struct ParamDim {
  const char* field = nullptr;
  const char* one_if = nullptr;
};
constexpr int kMaxParamRank = 4;
struct OpParam {
  const char* name;
  ParamInit init;
  ParamRole role;
  ParamDim shape[kMaxParamRank];  // up to the first without a field
  constexpr int rank() const {
    int r = 0;
    while (r < kMaxParamRank && shape[r].field) ++r;
    return r;
  }
};

// ---- each op's fields and parameters (the X-macro's columns)
constexpr List<OpField> kNoFields{};
constexpr List<OpParam> kNoParams{};

constexpr OpField kStandardizeFields[] = {real_field("eps", &OpDesc::eps, 1e-12, 1)};

constexpr OpField kConvFields[] = {
    count_field("inC", &OpDesc::in_c, kMaxSide, FieldMatch::InputChannels),
    count_field("outC", &OpDesc::out_c, kMaxSide),
    count_field("kernel", &OpDesc::kernel, kMaxSide),
    count_field("stride", &OpDesc::stride, kMaxSide),
    flag_field("padding", &OpDesc::same, FieldType::Padding),
    flag_field("depthwise", &OpDesc::depthwise),
};
// OIHW; depthwise: one input channel per group
constexpr OpParam kConvParams[] = {
    {"weight", ParamInit::He, ParamRole::Decayed, {{"outC"}, {"inC", "depthwise"}, {"kernel"}, {"kernel"}}},
};

constexpr OpField kBatchNormFields[] = {
    count_field("channels", &OpDesc::out_c, kMaxSide, FieldMatch::InputChannels),
};
constexpr OpParam kBatchNormParams[] = {
    {"gamma", ParamInit::One, ParamRole::Trained, {{"channels"}}},
    {"beta", ParamInit::Zero, ParamRole::Trained, {{"channels"}}},
    {"mean", ParamInit::Zero, ParamRole::Running, {{"channels"}}},
    {"var", ParamInit::One, ParamRole::Running, {{"channels"}}},
};
// the kernels' names for them: OpDesc::param + bn_param::beta is the beta
namespace bn_param {
enum : int { gamma, beta, mean, var };
}

constexpr OpField kDenseFields[] = {
    count_field("inF", &OpDesc::in_c, kMaxInt, FieldMatch::InputFeatures),
    count_field("outF", &OpDesc::out_c, kMaxInt),
};
constexpr OpParam kDenseParams[] = {
    {"weight", ParamInit::Glorot, ParamRole::Decayed, {{"outF"}, {"inF"}}},  // [out][in]
    {"bias", ParamInit::Zero, ParamRole::Trained, {{"outF"}}},
};
namespace dense_param {
enum : int { weight, bias };
}

constexpr OpField kDropoutFields[] = {real_field("rate", &OpDesc::rate, 0, 1)};

// ---- shape rules
inline OpGeometry keep_shape(const OpDesc&, const std::vector<Dims>& in) { return {in[0]}; }

// A window of side k moved by stride over the input, padded TensorFlow's way when same.
inline OpGeometry window(Dims in, int channels, int k, int stride, bool same) {
  OpGeometry g{{channels, conv_out(in.h, k, stride, same), conv_out(in.w, k, stride, same)}};
  if (same) {
    // the input extent the windows cover, less the input: the padding, split before and after
    g.pad_top = same_pad_before(in.h, k, stride);
    g.pad_left = same_pad_before(in.w, k, stride);
    g.pad_bottom = std::max((g.out.h - 1) * stride + k - in.h, 0) - g.pad_top;
    g.pad_right = std::max((g.out.w - 1) * stride + k - in.w, 0) - g.pad_left;
  }
  return g;
}

inline OpGeometry conv_geometry(const OpDesc& op, const std::vector<Dims>& in) {
  if (op.depthwise && op.out_c != in[0].c) throw std::invalid_argument("Expected outC = inC for depthwise " + op.name);
  return window(in[0], op.out_c, op.kernel, op.stride, op.same);
}

inline OpGeometry pool_geometry(const OpDesc&, const std::vector<Dims>& in) {
  return window(in[0], in[0].c, kPoolKernel, kPoolStride, true);
}

inline size_t values_of(const Dims& d) { return static_cast<size_t>(d.c) * d.h * d.w; }

// an elementwise sum: inputs of as many values, the first's shape
inline OpGeometry sum_of_equal_sizes(const OpDesc& op, const std::vector<Dims>& in) {
  for (const Dims& d : in)
    if (values_of(d) != values_of(in[0])) throw std::invalid_argument("Expected inputs of one size for " + op.name);
  return {in[0]};
}

// global average pooling: a channel becomes a feature
inline OpGeometry features_of_channels(const OpDesc&, const std::vector<Dims>& in) { return {{in[0].c, 1, 1}}; }

inline OpGeometry dense_features(const OpDesc& op, const std::vector<Dims>&) { return {{op.out_c, 1, 1}}; }

// along the features
inline OpGeometry concat_features(const OpDesc&, const std::vector<Dims>& in) {
  int c = 0;
  for (const Dims& d : in) c += d.c;
  return {{c, 1, 1}};
}

// ---- the table
struct OpInfo {
  OpKind kind;
  const char* name;
  int inputs;  // or kAnyInputs
  List<OpField> fields;
  List<OpParam> params;
  ShapeRule shape;
};

#define ADCORRE_OP_INFO(kind, name, inputs, fields, params, rule) \
  OpInfo{OpKind::kind, name, inputs, fields, params, rule},
inline constexpr OpInfo kOpTable[] = {ADCORRE_OPS(ADCORRE_OP_INFO)};
#undef ADCORRE_OP_INFO

inline const OpInfo& op_info(OpKind kind) { return kOpTable[static_cast<size_t>(kind)]; }

// The op named `name` in a program, or null.
inline const OpInfo* find_op(const std::string& name) {
  for (const OpInfo& info : kOpTable)
    if (name == info.name) return &info;
  return nullptr;
}

constexpr bool same_text(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// The field of `info` named `name`, or null.
constexpr const OpField* find_field(const OpInfo& info, const char* name) {
  for (const OpField& f : info.fields)
    if (same_text(f.name, name)) return &f;
  return nullptr;
}

// The table's promises, checked by the compiler: rows in OpKind order; a
// parameter's sides name counts (and flags) of its own op; the kernels' names
// of the parameters (bn_param, dense_param) in the table's order.
constexpr bool table_is_consistent() {
  int row = 0;
  for (const OpInfo& info : kOpTable) {
    if (static_cast<int>(info.kind) != row++) return false;
    for (const OpParam& p : info.params)
      for (int d = 0; d < p.rank(); ++d) {
        const OpField* side = find_field(info, p.shape[d].field);
        if (!side || side->type != FieldType::Count) return false;
        if (p.shape[d].one_if) {
          const OpField* flag = find_field(info, p.shape[d].one_if);
          if (!flag || flag->type != FieldType::Flag) return false;
        }
      }
  }
  return same_text(kBatchNormParams[bn_param::gamma].name, "gamma") &&
         same_text(kBatchNormParams[bn_param::beta].name, "beta") &&
         same_text(kBatchNormParams[bn_param::mean].name, "mean") &&
         same_text(kBatchNormParams[bn_param::var].name, "var") &&
         same_text(kDenseParams[dense_param::weight].name, "weight") &&
         same_text(kDenseParams[dense_param::bias].name, "bias");
}
static_assert(table_is_consistent(), "the op table: see table_is_consistent()");

// Floats of parameter p of op by its shape (in double: sides out of range would wrap in size_t).
inline double param_floats(const OpInfo& info, const OpParam& p, const OpDesc& op) {
  double n = 1;
  for (int d = 0; d < p.rank(); ++d) {
    const char* one_if = p.shape[d].one_if;
    if (one_if && op.*(find_field(info, one_if)->flag)) continue;
    n *= op.*(find_field(info, p.shape[d].field)->count);
  }
  return n;
}

// The geometry of op given every tensor's dims so far. Throws invalid_argument
// when the input is too small for the op's window or does not fit its fields.
inline OpGeometry op_geometry(const OpDesc& op, const std::vector<Dims>& tensors) {
  std::vector<Dims> in;
  in.reserve(op.inputs.size());
  for (int t : op.inputs) in.push_back(tensors.at(t));
  const OpInfo& info = op_info(op.kind);
  for (const OpField& f : info.fields) {
    if (f.match == FieldMatch::None) continue;
    const bool channels = f.match == FieldMatch::InputChannels;
    const size_t want = channels ? static_cast<size_t>(in[0].c) : values_of(in[0]);
    if (static_cast<size_t>(op.*f.count) != want)
      throw std::invalid_argument(std::string("Expected ") + f.name + " = the input's " +
                                  (channels ? "channels" : "features") + " (" + std::to_string(want) + ") for " +
                                  op.name + " but received " + std::to_string(op.*f.count));
  }
  const OpGeometry g = info.shape(op, in);
  if (g.out.h < 1 || g.out.w < 1) throw std::invalid_argument("input too small for the network at op " + op.name);
  return g;
}

}  // namespace adcorre::engine
