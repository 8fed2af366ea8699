// Event delivery through a CSR connectivity, written once for the CPU and the GPU.
//
// Connections are sorted by source: those of source s are c in [ptr[s], ptr[s+1]).
// When source s fired, connection c adds weight[c] to the input ring
//     buffer[(step + delay[c]) mod D][0 if weight[c] >= 0 else 1][target[c]]
// (ring rows of D future steps; channel 0 excitatory, 1 inhibitory, by the sign of
// the weight). The work is one pass over `fired` plus one visit per connection of a
// fired source: O(S + spikes x fan-out), independent of the number of connections.
//
// Bad data never leads to an access out of bounds: ptr entries are clamped to
// [0, C] (a source whose clamped range is empty delivers nothing), and connections
// whose target lies outside [0, P) or whose delay lies outside [0, D) are skipped.
// The Python wrapper refuses such data whenever it is concrete; only traced data
// can reach the kernels unchecked.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DENDRAX_EV_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define DENDRAX_EV_HD inline __attribute__((always_inline))
#else
#define DENDRAX_EV_HD inline
#endif

namespace dendrax {
namespace events {

// Sizes of one delivery: ring rows D, pre-synaptic sources S, targets P, connections C.
struct Sizes {
  int64_t d = 0, s = 0, p = 0, c = 0;
};

// step mod D in [0, D) for any int32 step (negative steps included), D >= 1.
DENDRAX_EV_HD int64_t ring_row(int32_t step, int64_t d) {
  const int64_t r = static_cast<int64_t>(step) % d;
  return r < 0 ? r + d : r;
}

// ptr[i] clamped to [0, C].
DENDRAX_EV_HD int64_t clamped_ptr(const int32_t* ptr, int64_t i, int64_t c) {
  const int64_t v = ptr[i];
  return v < 0 ? 0 : (v > c ? c : v);
}

// The connections [begin, end) of one source, every `stride`-th from begin + lane:
// `add(address, value)` once for each valid one. (lane 0, stride 1: all of them in
// order, as the CPU does; a GPU warp splits them over its lanes.)
template <typename T, typename Add>
DENDRAX_EV_HD void deliver_range(const Sizes& n, int64_t row0, const int32_t* target,
                                 const int32_t* delay, const T* weight, int64_t begin,
                                 int64_t end, int64_t lane, int64_t stride, T* out, Add add) {
  for (int64_t c = begin + lane; c < end; c += stride) {
    const int32_t t = target[c], d = delay[c];
    if (t < 0 || t >= n.p || d < 0 || d >= n.d) continue;  // bad traced data: skipped
    int64_t row = row0 + d;
    if (row >= n.d) row -= n.d;
    const T w = weight[c];
    const int64_t ch = w >= T(0) ? 0 : 1;  // NaN counts as inhibitory, as in the JAX twin
    add(out + (row * 2 + ch) * n.p + t, w);
  }
}

// The source range [begin, end) of source s, clamped (empty when reversed).
DENDRAX_EV_HD void source_range(const int32_t* ptr, int64_t s, int64_t c, int64_t* begin,
                                int64_t* end) {
  *begin = clamped_ptr(ptr, s, c);
  *end = clamped_ptr(ptr, s + 1, c);
  if (*end < *begin) *end = *begin;
}

// CPU: prefetch the connection data [begin, end) (a hint; never dereferenced).
template <typename T>
inline void prefetch_range(const int32_t* target, const int32_t* delay, const T* weight,
                           int64_t begin, int64_t end) {
#if defined(__GNUC__) || defined(__clang__)
  for (int64_t c = begin; c < end; c += 16) {
    __builtin_prefetch(target + c);
    __builtin_prefetch(delay + c);
    __builtin_prefetch(weight + c);
  }
#else
  (void)target, (void)delay, (void)weight, (void)begin, (void)end;
#endif
}

// All fired sources in order, all their connections in order (the CPU kernel).
// The connection data of a fired source is rarely in cache (C is large, spikes are
// few), so the loop prefetches a chunk ahead, and the start of the next fired source.
template <typename T>
inline void deliver_all(const Sizes& n, const bool* fired, const int32_t* ptr,
                        const int32_t* target, const int32_t* delay, const T* weight,
                        int32_t step, T* out) {
  if (n.d <= 0 || n.p <= 0) return;
  constexpr int64_t kChunk = 64;
  const int64_t row0 = ring_row(step, n.d);
  const auto add = [](T* p, T v) { *p += v; };
  int64_t s = 0;
  while (s < n.s && !fired[s]) ++s;
  while (s < n.s) {
    int64_t next = s + 1;
    while (next < n.s && !fired[next]) ++next;
    int64_t b, e;
    source_range(ptr, s, n.c, &b, &e);
    if (next < n.s) {
      int64_t nb, ne;
      source_range(ptr, next, n.c, &nb, &ne);
      prefetch_range(target, delay, weight, nb, nb + kChunk < ne ? nb + kChunk : ne);
    }
    for (int64_t c = b; c < e; c += kChunk) {
      const int64_t c1 = c + kChunk < e ? c + kChunk : e;
      prefetch_range(target, delay, weight, c1, c1 + kChunk < e ? c1 + kChunk : e);
      deliver_range(n, row0, target, delay, weight, c, c1, 0, 1, out, add);
    }
    s = next;
  }
}

}  // namespace events
}  // namespace dendrax
