// The op table: every op of the training engine's program declared once
// (ggml's rule): its name in the program, how many inputs and parameter
// tensors it takes, the rule that gives its output's shape, and its
// constants. The executor's shape pass (infer_shapes), the binding's program
// parser and, through the binding's opTable() and programShapes(), the
// TypeScript memory estimate (lib/memory.ts), ONNX exporter
// (lib/model/onnx.ts) and architecture (lib/model/architecture.ts) all read
// it; none of them writes a shape rule or a constant of its own.
#pragma once

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "ops.h"  // conv_out, same_pad_before: the window arithmetic the kernels themselves use

namespace adcorre::engine {

// ---- the ops' constants
constexpr double kInputEps = 1e-3;  // standardize: per image (x - mean) / sqrt(var + eps)
constexpr double kBnEps = 1e-3;     // batch norm: Keras' default
constexpr double kL2Eps = 1e-12;    // l2norm: x / sqrt(max(|x|^2, eps)) per row
// maxpool: 3x3 windows, stride 2, 'same' padding (as the kernels of ops_cpu_pool_dense.cpp and ops_cuda.cu pool)
constexpr int kPoolKernel = 3, kPoolStride = 2;

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
using ShapeRule = OpGeometry (*)(const OpDesc& op, const std::vector<Dims>& inputs);

// Inputs: the count an op takes, or kAnyInputs (one or more).
constexpr int kAnyInputs = -1;

// X(kind, name in the program, inputs, parameter tensors, shape rule)
// parameter tensors from the op's first (OpDesc::param): conv weight;
// bn gamma, beta, running mean, running variance; dense weight, bias.
#define ADCORRE_OPS(X)                                \
  X(Standardize, "standardize", 1, 0, keep_shape)     \
  X(Conv, "conv", 1, 1, conv_geometry)                \
  X(BatchNorm, "bn", 1, 4, keep_shape)                \
  X(Relu, "relu", 1, 0, keep_shape)                   \
  X(MaxPool, "maxpool", 1, 0, pool_geometry)          \
  X(Add, "add", 2, 0, keep_shape)                     \
  X(Gap, "gap", 1, 0, features_of_channels)           \
  X(Dense, "dense", 1, 2, dense_features)             \
  X(L2Norm, "l2norm", 1, 0, keep_shape)               \
  X(Concat, "concat", kAnyInputs, 0, concat_features) \
  X(Dropout, "dropout", 1, 0, keep_shape)             \
  X(Softmax, "softmax", 1, 0, keep_shape)

#define ADCORRE_OP_KIND(kind, name, inputs, params, rule) kind,
enum class OpKind { ADCORRE_OPS(ADCORRE_OP_KIND) };
#undef ADCORRE_OP_KIND

struct OpDesc {
  OpKind kind;
  std::string name;
  std::vector<int> inputs;  // tensor ids
  int output = -1;
  int param = -1;  // first parameter index (see ADCORRE_OPS)
  int in_c = 0, out_c = 0, kernel = 0, stride = 1;
  bool same = false, depthwise = false;
  double rate = 0;  // dropout
};

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
  return window(in[0], op.out_c, op.kernel, op.stride, op.same);
}

inline OpGeometry pool_geometry(const OpDesc&, const std::vector<Dims>& in) {
  return window(in[0], in[0].c, kPoolKernel, kPoolStride, true);
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
  int params;
  ShapeRule shape;
};

#define ADCORRE_OP_INFO(kind, name, inputs, params, rule) OpInfo{OpKind::kind, name, inputs, params, rule},
inline constexpr OpInfo kOpTable[] = {ADCORRE_OPS(ADCORRE_OP_INFO)};
#undef ADCORRE_OP_INFO

inline const OpInfo& op_info(OpKind kind) { return kOpTable[static_cast<size_t>(kind)]; }

// The op named `name` in a program, or null.
inline const OpInfo* find_op(const std::string& name) {
  for (const OpInfo& info : kOpTable)
    if (name == info.name) return &info;
  return nullptr;
}

// The geometry of op given every tensor's dims so far. Throws invalid_argument
// when the input is too small for the op's window.
inline OpGeometry op_geometry(const OpDesc& op, const std::vector<Dims>& tensors) {
  std::vector<Dims> in;
  in.reserve(op.inputs.size());
  for (int t : op.inputs) in.push_back(tensors.at(t));
  const OpGeometry g = op_info(op.kind).shape(op, in);
  if (g.out.h < 1 || g.out.w < 1) throw std::invalid_argument("input too small for the network at op " + op.name);
  return g;
}

}  // namespace adcorre::engine
