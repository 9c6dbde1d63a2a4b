#include "thread_pool.h"

#include <algorithm>
#include <cstdlib>

namespace adcorre {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

static inline void chunk_range(size_t count, int chunks, int id, size_t* begin, size_t* end) {
  *begin = count * static_cast<size_t>(id) / static_cast<size_t>(chunks);
  *end = count * static_cast<size_t>(id + 1) / static_cast<size_t>(chunks);
}

void ThreadPool::worker_loop(int id) {
  unsigned long seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t)>* job;
    size_t count;
    int chunks;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      count = count_;
      chunks = chunks_;
    }
    if (id < chunks) {
      size_t b, e;
      chunk_range(count, chunks, id, &b, &e);
      if (b < e) (*job)(b, e);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (count == 0) return;
  size_t by_grain = grain ? count / grain : count;
  int chunks = static_cast<int>(std::min<size_t>(static_cast<size_t>(size()), std::max<size_t>(by_grain, 1)));
  if (chunks <= 1) {
    fn(0, count);
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    count_ = count;
    chunks_ = chunks;
    pending_ = chunks - 1;
    ++generation_;
  }
  wake_.notify_all();
  size_t b, e;
  chunk_range(count, chunks, 0, &b, &e);
  fn(b, e);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
}

int cpu_threads() {
  static const int threads = [] {
    if (const char* env = std::getenv("ADCORRE_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) return std::min(v, 256);
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw ? static_cast<int>(std::min(hw, 256u)) : 1;
  }();
  return threads;
}

ThreadPool& ThreadPool::global() {
  // Leaked on purpose: joining threads from a static destructor at process
  // exit can deadlock inside Node's teardown.
  static ThreadPool* pool = new ThreadPool(cpu_threads());
  return *pool;
}

}  // namespace adcorre
