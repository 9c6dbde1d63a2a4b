# CPU-only build of the addon for node-gyp / prebuildify (npm run prebuild:cpu),
# for platforms where cmake or nvcc is not available. The main build is
# CMakeLists.txt (cmake-js), which adds the CUDA kernels when nvcc is found.
{
  "targets": [
    {
      "target_name": "adcorre_native",
      "sources": [
        "native/loss/adcorre_cpu.cpp",
        "native/data/augment.cpp",
        "native/data/resample.cpp",
        "native/common/thread_pool.cpp",
        "native/engine/executor.cpp",
        "native/engine/executor_plan.cpp",
        "native/engine/backend_cpu.cpp",
        "native/engine/host_loss.cpp",
        "native/engine/ops_cpu_gemm.cpp",
        "native/engine/ops_cpu_conv.cpp",
        "native/engine/ops_cpu_norm.cpp",
        "native/engine/ops_cpu_pool_dense.cpp",
        "native/engine/ops_cpu_elementwise.cpp",
        "native/engine/gemm_cpu.cpp",
        "native/engine/gemm_bf16.cpp",
        "native/napi/engine_binding.cpp",
        "native/napi/program_binding.cpp",
        "native/common/cuda_devices_absent.cpp",
        "native/engine/backend_cuda_absent.cpp",
        "native/napi/binding.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fopenmp-simd"],
      "cflags_cc!": ["-fno-exceptions"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"]
      },
      "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17"]}}
    }
  ]
}
