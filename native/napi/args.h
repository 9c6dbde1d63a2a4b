// Argument readers the engine's bindings share (engine_binding.cpp,
// program_binding.cpp): typed arrays of one element type, integers in a
// range, and the words their messages use.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "typed_array.h"

namespace adcorre::napi {

template <typename T>
T* data_of(const Napi::TypedArray& arr) {
  return typed_data<T>(arr);
}

inline Napi::TypedArray typed(const Napi::Value& v, napi_typedarray_type type, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(v.Env(), std::string("Expected typed array for ") + name);
  return v.As<Napi::TypedArray>();
}

// A number as JavaScript would print it (no trailing zeros).
inline std::string number_text(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", x);
  return text;
}

// What a value is, for "but received ...".
inline const char* type_name(const Napi::Value& v) {
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

// An integer in [lo, hi] (Int32Value would wrap 2^32 + 1 to 1 and read NaN as 0);
// the RangeError's message starts with `prefix`.
inline int64_t integer_in(const Napi::Value& v, const std::string& name, int64_t lo, int64_t hi,
                          const std::string& prefix = "") {
  const double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!(x >= static_cast<double>(lo) && x <= static_cast<double>(hi)) || std::floor(x) != x)
    throw Napi::RangeError::New(v.Env(), prefix + "Expected integer in [" + std::to_string(lo) + ", " +
                                             std::to_string(hi) + "] for " + name + " but received " +
                                             (v.IsNumber() ? number_text(x) : std::string("a non-number")));
  return static_cast<int64_t>(x);
}

}  // namespace adcorre::napi
