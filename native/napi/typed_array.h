// Shared N-API helper: the element pointer of a typed array.
#pragma once

#include <napi.h>

namespace adcorre::napi {

// napi_get_typedarray_info also works for arrays over a SharedArrayBuffer
// (the data loader's pixel cache), where TypedArray::ArrayBuffer() fails.
template <typename T>
T* typed_data(const Napi::TypedArray& arr) {
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  NAPI_THROW_IF_FAILED(arr.Env(), napi_get_typedarray_info(arr.Env(), arr, &type, &length, &data, &buffer, &offset),
                       nullptr);
  return static_cast<T*>(data);
}

}  // namespace adcorre::napi
