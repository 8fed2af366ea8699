// Threads of the CPU kernels: how many a call may use, the threads kept between calls,
// and a parallel loop over work items that never lets an exception leave a thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

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

// The threads parallel_for runs on besides the caller's: started on first use and kept,
// waiting on a condition variable between calls (waking one costs a few microseconds;
// starting one costs tens, which made calls of under ~0.5 ms run on one thread). One
// call at a time: a call that finds the pool busy (another XLA thread in the same
// kernel library) starts threads of its own. After fork() the child builds a new pool
// (the parent's threads do not exist there); pools are never destroyed, so that no
// thread is joined while the process exits.
class Pool {
 public:
  // The pool of this process (one per extension module), or nullptr where no thread
  // could be started.
  static Pool* get() {
    static std::atomic<Pool*> pool{nullptr};
    static std::atomic<int> owner{0};
    Pool* p = pool.load(std::memory_order_acquire);
    const int pid = static_cast<int>(getpid());
    if (p != nullptr && owner.load(std::memory_order_acquire) == pid) return p;
    static std::mutex making;
    std::lock_guard<std::mutex> lock(making);
    p = pool.load(std::memory_order_acquire);
    if (p != nullptr && owner.load(std::memory_order_acquire) == pid) return p;
    p = new (std::nothrow) Pool(max_threads() - 1);  // the old one (a parent's) leaks
    if (p != nullptr && p->workers_ == 0) p = nullptr;
    pool.store(p, std::memory_order_release);
    owner.store(pid, std::memory_order_release);
    return p;
  }

  // Runs job(w) for w in [0, threads) (threads - 1 <= workers), job(0) on this thread;
  // false (nothing run) where the pool is busy.
  template <typename Job>
  bool run(int threads, Job& job) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      call_ = [](void* j, int w) { (*static_cast<Job*>(j))(w); };
      job_ = &job;
      active_ = threads - 1;
      pending_ = threads - 1;
      ++generation_;
    }
    wake_.notify_all();
    job(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    return true;
  }

  int workers() const { return workers_; }

 private:
  explicit Pool(int workers) {
    for (int w = 1; w <= workers; ++w) {
      try {
        std::thread([this, w] { loop(w); }).detach();
        ++workers_;
      } catch (const std::system_error&) {
        break;
      }
    }
  }

  void loop(int w) {
    uint64_t seen = 0;
    for (;;) {
      void (*call)(void*, int);
      void* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (w > active_) continue;  // not needed for this call
        call = call_;
        job = job_;
      }
      call(job, w);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex busy_;   // held for a whole call
  std::mutex mutex_;  // guards the fields below
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  int active_ = 0, pending_ = 0, workers_ = 0;
  void (*call_)(void*, int) = nullptr;
  void* job_ = nullptr;
};

// Runs body(k, worker) for the work items k in [0, items) on up to max_workers
// threads (workers 0..threads-1, this thread being worker 0), at most one thread per
// min_work of `work`. Threads take items from a shared counter, so a thread
// slowed down by other processes simply takes fewer.
template <typename Body>
void parallel_for(int64_t items, int64_t work, int64_t min_work, int max_workers, Body body) {
  int threads = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>({max_workers, items, work / min_work})));
  if (threads <= 1) {
    for (int64_t k = 0; k < items; ++k) body(k, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&](int w) {
    try {
      for (int64_t k = next++; k < items; k = next++) body(k, w);
    } catch (...) {  // no exception may leave a thread: the caller rethrows below
      failed = true;
      next = items;
    }
  };
  Pool* pool = Pool::get();
  if (pool != nullptr && pool->run(std::min(threads, pool->workers() + 1), worker)) {
    if (failed) throw std::bad_alloc();
    return;
  }
  std::vector<std::thread> own;  // the pool is busy (or none): threads of this call's own
  try {
    for (int j = 1; j < threads; ++j) own.emplace_back(worker, j);
  } catch (const std::system_error&) {
    // no more threads: the ones started and this one do the work
  }
  worker(0);
  for (auto& t : own) t.join();
  if (failed) throw std::bad_alloc();  // the only exception bodies can raise
}

}  // namespace dendrax
