// The Hines tree solve, written once for the CPU and the GPU.
//
// A forest of tree-structured linear systems, node axis first: node i couples to
// parent[i] < i (-1 marks a root). Row i holds diag[i] and lower[i] (at column
// parent[i]); row parent[i] holds upper[i] (at column i). Systems of one call share
// the node layout [N, T]: element (i, t) sits at i * T + t, so for a fixed node the
// T systems are contiguous (SIMD on the CPU, coalesced reads on the GPU).
//
// The factorization eliminates children into parents (leaves first) and keeps
// dinv = 1 / (eliminated diagonal): with it, `substitute` solves A x = b again and,
// with lower and upper swapped, the transposed system A^T x = b (both eliminations
// produce the same diagonal), with one multiplication per node instead of a division.
//
// Two formulations with the same arithmetic (same results bit for bit):
//  * factor_solve / substitute: plain loops over [t0, t1), for any device (one
//    thread per system on the GPU where the parent array is traced or the systems
//    fill the device; else hines_schedule.h). A first pass copies diag and rhs to the
//    outputs.
//  * factor_solve_rows / substitute_rows (CPU): the same elimination without the
//    copy pass. Per-node flags (tree_flags) say which child updates its parent first,
//    so that child reads the parent's diag and rhs straight from the inputs, and a
//    leaf is read from the inputs where its row was never updated. factor_solve_one /
//    substitute_one do the same for one system (nt = 1).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DENDRAX_HD __host__ __device__ __forceinline__
#define DENDRAX_INLINE __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
// always_inline: the CPU handlers compile these bodies once per instruction set
// (a function with __attribute__((target)) only vectorizes what is inlined into it).
#define DENDRAX_HD inline __attribute__((always_inline))
#define DENDRAX_INLINE inline __attribute__((always_inline))
#else
#define DENDRAX_HD inline
#define DENDRAX_INLINE inline
#endif

namespace dendrax {

// a * b, never contracted with a following addition into an FMA (nvcc contracts by
// default; the host builds have no FMA): the GPU rounds as the CPU does, bit for bit.
DENDRAX_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
DENDRAX_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

// True when every parent[i] lies in [-1, i).
DENDRAX_HD bool valid_parents(const int32_t* parent, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (parent[i] < -1 || parent[i] >= i) return false;
  }
  return true;
}

// --- any device: one system (or a range of systems) at a time ----------------

// Full solve of the systems t in [t0, t1): writes the solution to x and the
// reciprocal of the eliminated diagonal to dinv.
template <typename T>
DENDRAX_HD void factor_solve(const int32_t* __restrict__ parent, const T* __restrict__ lower,
                             const T* __restrict__ diag, const T* __restrict__ upper,
                             const T* __restrict__ rhs, T* __restrict__ x,
                             T* __restrict__ dinv, int64_t n, int64_t nt, int64_t t0,
                             int64_t t1) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = t0; t < t1; ++t) {
      dinv[i * nt + t] = diag[i * nt + t];
      x[i * nt + t] = rhs[i * nt + t];
    }
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i];
    for (int64_t t = t0; t < t1; ++t) {
      const T inv = T(1) / dinv[i * nt + t];
      dinv[i * nt + t] = inv;
      if (p >= 0) {
        const T f = mul(upper[i * nt + t], inv);
        dinv[p * nt + t] = dinv[p * nt + t] - mul(f, lower[i * nt + t]);
        x[p * nt + t] = x[p * nt + t] - mul(f, x[i * nt + t]);
      }
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    if (p < 0) {
      for (int64_t t = t0; t < t1; ++t) x[i * nt + t] = x[i * nt + t] * dinv[i * nt + t];
    } else {
      for (int64_t t = t0; t < t1; ++t)
        x[i * nt + t] = (x[i * nt + t] - mul(lower[i * nt + t], x[p * nt + t])) * dinv[i * nt + t];
    }
  }
}

// Solve with the dinv of factor_solve on the same tree: only the right-hand side
// is eliminated. With lower and upper swapped this solves the transposed system.
template <typename T>
DENDRAX_HD void substitute(const int32_t* __restrict__ parent, const T* __restrict__ lower,
                           const T* __restrict__ upper, const T* __restrict__ dinv,
                           const T* __restrict__ rhs, T* __restrict__ x, int64_t n,
                           int64_t nt, int64_t t0, int64_t t1) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = t0; t < t1; ++t) x[i * nt + t] = rhs[i * nt + t];
  }
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t p = parent[i];
    if (p < 0) continue;
    for (int64_t t = t0; t < t1; ++t) {
      const T f = mul(upper[i * nt + t], dinv[i * nt + t]);
      x[p * nt + t] = x[p * nt + t] - mul(f, x[i * nt + t]);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    if (p < 0) {
      for (int64_t t = t0; t < t1; ++t) x[i * nt + t] = x[i * nt + t] * dinv[i * nt + t];
    } else {
      for (int64_t t = t0; t < t1; ++t)
        x[i * nt + t] = (x[i * nt + t] - mul(lower[i * nt + t], x[p * nt + t])) * dinv[i * nt + t];
    }
  }
}

// --- CPU: whole rows, no copy pass ---------------------------------------------

enum : uint8_t {
  kHasChild = 1,    // some node has this one as its parent
  kFirstChild = 2,  // the largest child of its parent: eliminated into it first
};

// Flags of one parent array (valid: see valid_parents), shared by all its systems.
inline void tree_flags(const int32_t* parent, int64_t n, uint8_t* flags) {
  for (int64_t i = 0; i < n; ++i) flags[i] = 0;
  for (int64_t i = n - 1; i >= 0; --i) {
    const int32_t p = parent[i];
    if (p < 0) continue;
    if (!(flags[p] & kHasChild)) flags[i] |= kFirstChild;
    flags[p] |= kHasChild;
  }
}

// --- CPU: one system, flags given, no copy pass ----------------------------------
//
// factor_solve and substitute of one system (nt = 1) whose tree_flags are given: a leaf
// reads its diag and rhs from the inputs, and the first child of p to be eliminated
// starts p's accumulation from them, so no pass copies diag and rhs first. The same
// arithmetic in the same order (the same bits). 985-node tree, one thread: 3.1 -> 2.5 ns
// per node; computing the flags costs ~0.9 ns per node, so this pays where entries share
// them (a vmapped batch of one cell).

template <typename T>
DENDRAX_INLINE void back_substitute_one(const int32_t* __restrict__ parent,
                                        const T* __restrict__ lower, const T* __restrict__ dinv,
                                        T* __restrict__ x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i];
    x[i] = p < 0 ? x[i] * dinv[i] : (x[i] - mul(lower[i], x[p])) * dinv[i];
  }
}

template <typename T>
DENDRAX_INLINE void factor_solve_one(const int32_t* __restrict__ parent,
                                     const uint8_t* __restrict__ flags,
                                     const T* __restrict__ lower, const T* __restrict__ diag,
                                     const T* __restrict__ upper, const T* __restrict__ rhs,
                                     T* __restrict__ x, T* __restrict__ dinv, int64_t n) {
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i];
    const bool leaf = !(flags[i] & kHasChild);
    const T ri = leaf ? rhs[i] : x[i];
    const T inv = T(1) / (leaf ? diag[i] : dinv[i]);
    dinv[i] = inv;
    x[i] = ri;
    if (p >= 0) {
      const bool first = flags[i] & kFirstChild;
      const T f = mul(upper[i], inv);
      dinv[p] = (first ? diag[p] : dinv[p]) - mul(f, lower[i]);
      x[p] = (first ? rhs[p] : x[p]) - mul(f, ri);
    }
  }
  back_substitute_one(parent, lower, dinv, x, n);
}

template <typename T>
DENDRAX_INLINE void substitute_one(const int32_t* __restrict__ parent,
                                   const uint8_t* __restrict__ flags,
                                   const T* __restrict__ lower, const T* __restrict__ upper,
                                   const T* __restrict__ dinv, const T* __restrict__ rhs,
                                   T* __restrict__ x, int64_t n) {
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i];
    const T ri = flags[i] & kHasChild ? x[i] : rhs[i];
    x[i] = ri;
    if (p >= 0) {
      const T f = mul(upper[i], dinv[i]);
      x[p] = (flags[i] & kFirstChild ? rhs[p] : x[p]) - mul(f, ri);
    }
  }
  back_substitute_one(parent, lower, dinv, x, n);
}

namespace rows {

// Node i of the elimination, w systems. A leaf reads diag and rhs from the inputs,
// other nodes the values their children accumulated into the outputs; the first
// child of p starts p's accumulation from the inputs.
template <typename T, bool kLeaf, bool kRoot, bool kFirst>
DENDRAX_INLINE void factor_node(int64_t w, const T* __restrict__ lo_i, const T* __restrict__ up_i,
                                const T* __restrict__ d_i, const T* __restrict__ r_i,
                                T* __restrict__ dinv_i, const T* __restrict__ x_i,
                                const T* __restrict__ d_p, const T* __restrict__ r_p,
                                T* __restrict__ dinv_p, T* __restrict__ x_p) {
  // Systems in descending order: the elimination walks the nodes backwards, so the
  // whole pass is one descending stream of addresses, which the hardware prefetchers
  // follow (2-3x faster than ascending rows visited in descending order when rows are
  // short and the data is not in cache).
  for (int64_t t = w - 1; t >= 0; --t) {
    const T di = kLeaf ? d_i[t] : dinv_i[t];
    const T ri = kLeaf ? r_i[t] : x_i[t];
    const T inv = T(1) / di;
    dinv_i[t] = inv;
    if (!kRoot) {
      const T f = up_i[t] * inv;
      dinv_p[t] = (kFirst ? d_p[t] : dinv_p[t]) - f * lo_i[t];
      x_p[t] = (kFirst ? r_p[t] : x_p[t]) - f * ri;
    }
  }
}

template <typename T, bool kLeaf, bool kFirst>
DENDRAX_INLINE void substitute_node(int64_t w, const T* __restrict__ up_i,
                                    const T* __restrict__ dinv_i, const T* __restrict__ r_i,
                                    const T* __restrict__ x_i, const T* __restrict__ r_p,
                                    T* __restrict__ x_p) {
  for (int64_t t = w - 1; t >= 0; --t) {  // descending: see factor_node
    const T ri = kLeaf ? r_i[t] : x_i[t];
    const T f = up_i[t] * dinv_i[t];
    x_p[t] = (kFirst ? r_p[t] : x_p[t]) - f * ri;
  }
}

// Back substitution of node i: x_i = (y_i - lower_i x_p) dinv_i, where y_i is the
// eliminated right-hand side (the input itself at a leaf).
template <typename T, bool kLeaf, bool kRoot>
DENDRAX_INLINE void back_node(int64_t w, const T* __restrict__ lo_i, const T* __restrict__ dinv_i,
                              const T* __restrict__ r_i, T* __restrict__ x_i,
                              const T* __restrict__ x_p) {
  for (int64_t t = 0; t < w; ++t) {
    const T y = kLeaf ? r_i[t] : x_i[t];
    x_i[t] = kRoot ? y * dinv_i[t] : (y - lo_i[t] * x_p[t]) * dinv_i[t];
  }
}

template <typename T>
DENDRAX_INLINE void back_substitute(const int32_t* parent, const uint8_t* flags, const T* lo,
                                    const T* dinv, const T* r, T* x, int64_t n, int64_t nt,
                                    int64_t t0, int64_t w) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = parent[i], oi = i * nt + t0, op = (p < 0 ? 0 : p) * nt + t0;
    const bool leaf = !(flags[i] & kHasChild);
    if (p < 0) {
      if (leaf) back_node<T, true, true>(w, lo + oi, dinv + oi, r + oi, x + oi, x + op);
      else back_node<T, false, true>(w, lo + oi, dinv + oi, r + oi, x + oi, x + op);
    } else {
      if (leaf) back_node<T, true, false>(w, lo + oi, dinv + oi, r + oi, x + oi, x + op);
      else back_node<T, false, false>(w, lo + oi, dinv + oi, r + oi, x + oi, x + op);
    }
  }
}

}  // namespace rows

// factor_solve for the systems [t0, t1) of rows of stride nt, without a copy pass.
template <typename T>
DENDRAX_INLINE void factor_solve_rows(const int32_t* parent, const uint8_t* flags, const T* lo,
                                      const T* d, const T* up, const T* r, T* x, T* dinv,
                                      int64_t n, int64_t nt, int64_t t0, int64_t t1) {
  const int64_t w = t1 - t0;
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i], oi = i * nt + t0, op = (p < 0 ? 0 : p) * nt + t0;
    const int kind = (flags[i] & kHasChild ? 0 : 1) | (p < 0 ? 2 : 0) |
                     (flags[i] & kFirstChild ? 4 : 0);
#define DENDRAX_FACTOR_NODE(leaf, root, first)                                                 \
  rows::factor_node<T, leaf, root, first>(w, lo + oi, up + oi, d + oi, r + oi, dinv + oi, x + oi, \
                                          d + op, r + op, dinv + op, x + op)
    switch (kind) {
      case 0: DENDRAX_FACTOR_NODE(false, false, false); break;
      case 1: DENDRAX_FACTOR_NODE(true, false, false); break;
      case 4: DENDRAX_FACTOR_NODE(false, false, true); break;
      case 5: DENDRAX_FACTOR_NODE(true, false, true); break;
      case 2: case 6: DENDRAX_FACTOR_NODE(false, true, false); break;
      default: DENDRAX_FACTOR_NODE(true, true, false); break;  // 3, 7: an isolated node
    }
#undef DENDRAX_FACTOR_NODE
  }
  rows::back_substitute(parent, flags, lo, dinv, r, x, n, nt, t0, w);
}

// substitute for the systems [t0, t1) of rows of stride nt, without a copy pass.
template <typename T>
DENDRAX_INLINE void substitute_rows(const int32_t* parent, const uint8_t* flags, const T* lo,
                                    const T* up, const T* dinv, const T* r, T* x, int64_t n,
                                    int64_t nt, int64_t t0, int64_t t1) {
  const int64_t w = t1 - t0;
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t p = parent[i], oi = i * nt + t0, op = p * nt + t0;
    if (p < 0) continue;
    const bool leaf = !(flags[i] & kHasChild), first = flags[i] & kFirstChild;
    if (leaf) {
      if (first) rows::substitute_node<T, true, true>(w, up + oi, dinv + oi, r + oi, x + oi, r + op, x + op);
      else rows::substitute_node<T, true, false>(w, up + oi, dinv + oi, r + oi, x + oi, r + op, x + op);
    } else {
      if (first) rows::substitute_node<T, false, true>(w, up + oi, dinv + oi, r + oi, x + oi, r + op, x + op);
      else rows::substitute_node<T, false, false>(w, up + oi, dinv + oi, r + oi, x + oi, r + op, x + op);
    }
  }
  rows::back_substitute(parent, flags, lo, dinv, r, x, n, nt, t0, w);
}

}  // namespace dendrax
