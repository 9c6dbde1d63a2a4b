// Shared N-API helpers: the element pointer of a typed array, and the guard
// that turns C++ exceptions into JavaScript errors.
#pragma once

#include <napi.h>

#include <new>
#include <stdexcept>
#include <string>

#include "../common/backend_error.h"

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

// Runs an entry point's body. A C++ exception that leaves a binding ends the
// process (std::terminate: 'terminate called after throwing std::bad_alloc'),
// so every one becomes a JavaScript error here: out of memory named as such,
// std::invalid_argument (the engine's checks) a RangeError, backend failures
// (CUDA errors) with their own message, anything else with its what().
// NODE_ADDON_API_CPP_EXCEPTIONS_ALL in the .cpp files is the backstop for code
// outside a guard.
template <typename F>
auto guard(Napi::Env env, const char* where, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;  // already a JavaScript error (Napi::Error derives from std::exception)
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, std::string("Out of memory in ") + where +
                                    ": the arguments ask for more memory than the machine can give");
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(env, e.what());
  } catch (const adcorre::BackendError& e) { throw Napi::Error::New(env, e.what()); } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(where) + " failed: " + e.what());
  } catch (...) { throw Napi::Error::New(env, std::string(where) + " failed with a native exception"); }
}

}  // namespace adcorre::napi
