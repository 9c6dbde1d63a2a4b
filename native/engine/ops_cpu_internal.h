// What the CPU op files (ops_cpu_*.cpp, the kernels of ops.h) share: the
// thread pool and the split of memory-bound loops over it, the per-thread
// scratch vectors, and the attributes of the hot loops.
//
// Design note. The CPU ops are split by family, as llm.c keeps a layer's
// forward and backward together: ops_cpu_gemm.cpp (the GEMM every
// convolution and dense layer runs), ops_cpu_conv.cpp (convolutions, the largest
// share of a step's time), ops_cpu_norm.cpp (batch norm, L2
// normalisation), ops_cpu_pool_dense.cpp (max pool, global average pool,
// dense, softmax cross-entropy) and ops_cpu_elementwise.cpp (ReLU, adds,
// fills, the finiteness check, the optimizer updates). Everything is a
// template so the finite-difference tests run the same code in double; each
// file instantiates its own ops for float and double.
#pragma once

#include <algorithm>
#include <vector>

#include "../common/thread_pool.h"
#include "ops.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
#define ENGINE_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ENGINE_HOT
#endif
// Loops over a few dozen floats stay inline: GCC would turn them into memset
// and memcpy calls, whose call overhead is the cost at that length.
#if defined(__GNUC__) && !defined(__clang__)
#define ENGINE_INLINE_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define ENGINE_INLINE_LOOPS
#endif

namespace adcorre::engine {

// In an unnamed namespace, as they were in the single ops_cpu.cpp: internal
// linkage lets the compiler inline them into each op as before (it declines
// for an external template called from several places), and each file keeps
// its own scratch vectors (ops_cpu_gemm.cpp uses slots 0 and 1, ops_cpu_conv.cpp
// 2 and 3). Included only by the ops_cpu_*.cpp files.
namespace {

inline ThreadPool& pool() { return ThreadPool::global(); }

// Memory-bound loops over `count` items of `per_item` values each: split over
// the pool once there is enough to share (waking a thread costs about as much
// as touching 32K floats).
template <typename F>
void parallel_elementwise(size_t count, size_t per_item, F&& fn) {
  const size_t grain = std::max<size_t>(1, (size_t(1) << 15) / std::max<size_t>(per_item, 1));
  pool().parallel_for(count, grain, fn);
}

// Per-thread scratch vectors, reused across calls (fresh vectors cost page
// faults on every step). Slots 0 and 1: the portable GEMM's transposes; 2 and
// 3: the convolutions' packed outputs and partial weight gradients.
template <typename T>
std::vector<T>& scratch_buffer(int which) {
  thread_local std::vector<T> buffers[4];
  return buffers[which];
}

}  // namespace

}  // namespace adcorre::engine
