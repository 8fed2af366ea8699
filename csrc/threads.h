// Threads of the CPU kernels: how many a call may use, and a parallel loop over work
// items that never lets an exception leave a thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

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

// Runs body(k, worker) for the work items k in [0, items) on up to max_workers
// threads (workers 0..threads-1, this thread being worker 0), at most one thread per
// min_work of `work`. Threads take items from a shared counter, so a thread
// slowed down by other processes simply takes fewer.
template <typename Body>
void parallel_for(int64_t items, int64_t work, int64_t min_work, int max_workers, Body body) {
  const int threads = static_cast<int>(std::max<int64_t>(
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
  std::vector<std::thread> pool;
  try {
      for (int j = 1; j < threads; ++j) pool.emplace_back(worker, j);
  } catch (const std::system_error&) {
    // no more threads: the ones started and this one do the work
  }
  worker(0);
  for (auto& t : pool) t.join();
  if (failed) throw std::bad_alloc();  // the only exception bodies can raise
}

}  // namespace dendrax
