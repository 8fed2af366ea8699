// Threads of the CPU kernels: how many a call may use, XLA's threads (which the FFI
// lends a handler), and a parallel loop over work items that never lets an exception
// leave a thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace dendrax {

// DENDRAX_NUM_THREADS if set, else the CPUs this process may run on (read once).
inline int max_threads() {
  static const int k = [] {
    if (const char* s = std::getenv("DENDRAX_NUM_THREADS")) {
      const int v = std::atoi(s);
      if (v >= 1) return std::min(v, 256);
    }
    int c = 0;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) c = CPU_COUNT(&set);
#endif
    if (c <= 0) c = static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, std::min(c, 64));
  }();
  return k;
}

// XLA's intra-op threads as a kernel's FFI handler gets them (ffi::ThreadPool), for the
// parallel_for calls this thread makes while the handler runs (ScopedThreads).
struct XlaThreads {
  void* pool = nullptr;
  void (*schedule)(void* pool, std::function<void()> task) = nullptr;
  int64_t (*count)(void* pool) = nullptr;  // its threads (asked only where a call splits)
};

inline XlaThreads& xla_threads() {
  thread_local XlaThreads threads;
  return threads;
}

template <typename ThreadPool>
class ScopedThreads {
 public:
  explicit ScopedThreads(ThreadPool& pool) : saved_(xla_threads()) {
    xla_threads() = {&pool,
                     [](void* p, std::function<void()> task) {
                       static_cast<ThreadPool*>(p)->Schedule(std::move(task));
                     },
                     [](void* p) { return static_cast<ThreadPool*>(p)->num_threads(); }};
  }
  ~ScopedThreads() { xla_threads() = saved_; }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  XlaThreads saved_;
};

// The state of a parallel_for, shared with its tasks on XLA's threads. A task may start
// after the call returned (the threads were busy): it finds no items left and never
// touches the call's body. The call waits for the tasks that took items.
struct SharedLoop {
  std::atomic<int64_t> next{0};
  int64_t items = 0;
  std::atomic<int> running{0};
  std::atomic<bool> failed{false};
  void* body = nullptr;
  void (*call)(void* body, int64_t item, int worker) = nullptr;
  std::mutex mutex;
  std::condition_variable finished;

  void work(int w) {
    try {
      for (int64_t k = next++; k < items; k = next++) call(body, k, w);
    } catch (...) {  // no exception may leave a thread: the caller rethrows
      failed = true;
      next = items;
    }
  }

  void task(int w) {
    ++running;
    work(w);
    if (--running == 0) {
      std::lock_guard<std::mutex> lock(mutex);
      finished.notify_all();
    }
  }
};

// Runs body(k, worker) for the work items k in [0, items) on up to max_workers
// threads (workers 0..threads-1, this thread being worker 0), at most one thread per
// min_work of `work` and no more than XLA lent the handler (ScopedThreads; none: this
// thread alone). Threads take items from a shared counter, so a thread slowed down by
// other processes, or one XLA starts late, simply takes fewer.
template <typename Body>
void parallel_for(int64_t items, int64_t work, int64_t min_work, int max_workers, Body body) {
  const XlaThreads& xla = xla_threads();
  int64_t threads = std::min<int64_t>({max_workers, items, work / min_work});
  if (threads > 1) threads = std::min<int64_t>(threads, xla.pool ? xla.count(xla.pool) : 1);
  if (threads <= 1) {
    for (int64_t k = 0; k < items; ++k) body(k, 0);
    return;
  }
  auto loop = std::make_shared<SharedLoop>();
  loop->items = items;
  loop->body = &body;
  loop->call = [](void* b, int64_t k, int w) { (*static_cast<Body*>(b))(k, w); };
  for (int j = 1; j < threads; ++j) xla.schedule(xla.pool, [loop, j] { loop->task(j); });
  loop->work(0);
  std::unique_lock<std::mutex> lock(loop->mutex);
  loop->finished.wait(lock, [&] { return loop->running == 0; });
  if (loop->failed) throw std::bad_alloc();  // the only exception bodies can raise
}

}  // namespace dendrax
