// The Hines tree solve, written once for the CPU and the GPU.
//
// A forest of tree-structured linear systems, node axis first: node i couples to
// parent[i] < i (-1 marks a root). Row i holds diag[i] and lower[i] (at column
// parent[i]); row parent[i] holds upper[i] (at column i). Systems of one call share
// the node layout [N, T]: element (i, t) sits at i * T + t, so for a fixed node the
// T systems are contiguous (SIMD on the CPU, coalesced reads on the GPU).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DENDRAX_HD __host__ __device__ __forceinline__
#else
#define DENDRAX_HD inline
#endif

namespace dendrax {

// True when every parent[i] lies in [-1, i).
DENDRAX_HD bool valid_parents(const int32_t* parent, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (parent[i] < -1 || parent[i] >= i) return false;
  }
  return true;
}

// Full solve of the systems t in [t0, t1): eliminates children into parents
// (leaves first), then substitutes from the roots. Writes the solution to x and
// the eliminated diagonal to dred, which solves the transposed system too.
template <typename T>
DENDRAX_HD void factor_solve(const int32_t* __restrict__ parent, const T* __restrict__ lower,
                             const T* __restrict__ diag, const T* __restrict__ upper,
                             const T* __restrict__ rhs, T* __restrict__ x,
                             T* __restrict__ dred, int64_t n, int64_t nt, int64_t t0,
                             int64_t t1) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = t0; t < t1; ++t) {
      dred[i * nt + t] = diag[i * nt + t];
      x[i * nt + t] = rhs[i * nt + t];
    }
  }
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t p = parent[i];
    if (p < 0) continue;
    for (int64_t t = t0; t < t1; ++t) {
      const T f = upper[i * nt + t] / dred[i * nt + t];
      dred[p * nt + t] -= f * lower[i * nt + t];
      x[p * nt + t] -= f * x[i * nt + t];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    if (p < 0) {
      for (int64_t t = t0; t < t1; ++t) x[i * nt + t] /= dred[i * nt + t];
    } else {
      for (int64_t t = t0; t < t1; ++t)
        x[i * nt + t] = (x[i * nt + t] - lower[i * nt + t] * x[p * nt + t]) / dred[i * nt + t];
    }
  }
}

// Solve with an already eliminated diagonal (from factor_solve on the same
// tree): only the right-hand side is eliminated. With lower and upper swapped
// this solves the transposed system, which shares dred.
template <typename T>
DENDRAX_HD void substitute(const int32_t* __restrict__ parent, const T* __restrict__ lower,
                           const T* __restrict__ upper, const T* __restrict__ dred,
                           const T* __restrict__ rhs, T* __restrict__ x, int64_t n,
                           int64_t nt, int64_t t0, int64_t t1) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = t0; t < t1; ++t) x[i * nt + t] = rhs[i * nt + t];
  }
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t p = parent[i];
    if (p < 0) continue;
    for (int64_t t = t0; t < t1; ++t)
      x[p * nt + t] -= upper[i * nt + t] / dred[i * nt + t] * x[i * nt + t];
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    if (p < 0) {
      for (int64_t t = t0; t < t1; ++t) x[i * nt + t] /= dred[i * nt + t];
    } else {
      for (int64_t t = t0; t < t1; ++t)
        x[i * nt + t] = (x[i * nt + t] - lower[i * nt + t] * x[p * nt + t]) / dred[i * nt + t];
    }
  }
}

}  // namespace dendrax
