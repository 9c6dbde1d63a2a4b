// A small persistent thread pool with a blocking parallel_for. Hand-written
// because the addon must not depend on an OpenMP runtime (the prebuilt binary
// has to load on any Linux/macOS/Windows Node), and std::async spawns a thread
// per call, which costs more than the whole loss at the paper's size.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace adcorre {

// Threads the CPU kernels use (ADCORRE_NUM_THREADS or the hardware's count).
int cpu_threads();

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, count) split into contiguous chunks, one per
  // thread (the caller runs one of them). Runs inline when count is below
  // `grain` items per thread or the pool has one thread. Calls from several
  // JS threads at once are serialised.
  void parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn);

  static ThreadPool& global();

 private:
  void worker_loop(int id);

  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // one parallel_for at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t count_ = 0;
  int chunks_ = 0;
  int pending_ = 0;
  unsigned long generation_ = 0;
  bool stop_ = false;
};

}  // namespace adcorre
