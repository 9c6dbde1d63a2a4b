// The compute precision of an engine's GEMM-based ops (convolutions other than
// depthwise, dense layers): fp32, or bf16 operands with fp32 accumulation
// (gemm_bf16.h). Everything else (depthwise convolutions, batch norm, the
// losses, weights, gradients, optimizer moments, the update) stays fp32.
#pragma once

#include <string>

namespace adcorre::engine {

enum class Precision { Fp32, Bf16 };

// "fp32" or "bf16"
const char* precision_name(Precision p);

// The precision an engine on `device` (-1: the CPU, else a CUDA device) runs
// for the option `requested`: "fp32", "bf16" (CPU only for now), or "auto"
// (bf16 where the CPU runs the AVX512-BF16 kernel, else fp32). Throws
// invalid_argument naming the option for anything else, and for bf16 on CUDA.
Precision resolve_precision(const std::string& requested, int device);

}  // namespace adcorre::engine
