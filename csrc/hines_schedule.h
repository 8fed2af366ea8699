// The branch-level schedule of the Hines solve: how the GPU solves one tree in parallel.
//
// A tree (forest) is cut into branches: maximal unbranched runs of nodes, top to bottom,
// each node of a run the only child of the one before. A branch's top is a root or a
// child of a branch point; its bottom is a leaf or a branch point, whose children are
// the tops of its child branches. The level of a branch is its depth in branches (roots'
// branches: level 0). The elimination (leaves to root) walks the levels from the deepest
// to 0, the back substitution from 0 to the deepest; within a level every branch is
// independent, solved as a chain by one thread, all branches of a level in parallel.
//
// Each node pulls its children's contributions (no thread writes another's node): a
// branch bottom sums its child branches in descending node order, the order in which the
// sequential kernels (hines_kernel.h, node i from N-1 down to 0) push them, and every
// product goes through `mul` (never fused with the following subtraction into an FMA).
// So the scheduled solve gives the same results as the CPU kernel, bit for bit.
//
// The schedule is built on the host from a concrete, validated parent array
// (dendrax/solver/schedule.py) and passed as one int32 operand, packed as
//   [0]          n            nodes
//   [1]          n_branches   B
//   [2]          n_levels     L
//   [3]          n_children   C: branches that have a parent branch
//   [4, 4+n)     nodes        node indices, branch by branch (top to bottom), branches
//                             level by level (within a level, longest first)
//   then         branch_ptr   [B+1]: branch b is nodes[branch_ptr[b] .. branch_ptr[b+1])
//   then         level_ptr    [L+1]: level l is branches level_ptr[l] .. level_ptr[l+1]
//   then         child_ptr    [B+1]: branch b's children are child_top[child_ptr[b] ..)
//   then         child_top    [C]: top node of each child branch, descending per branch
// The kernels trust it (and the parent array it was built from): nothing is checked on
// the device.
#pragma once

#include <cstdint>

#include "hines_kernel.h"

namespace dendrax {

constexpr int kScheduleHeader = 4;

struct Schedule {
  int32_t n = 0, n_branches = 0, n_levels = 0, n_children = 0;
  const int32_t* nodes = nullptr;
  const int32_t* branch_ptr = nullptr;
  const int32_t* level_ptr = nullptr;
  const int32_t* child_ptr = nullptr;
  const int32_t* child_top = nullptr;
};

// Number of int32 values of the packed schedule of a tree of n nodes and B branches in
// L levels, C of them with a parent branch.
DENDRAX_HD int64_t schedule_size(int64_t n, int64_t b, int64_t l, int64_t c) {
  return kScheduleHeader + n + (b + 1) + (l + 1) + (b + 1) + c;
}

DENDRAX_HD Schedule unpack_schedule(const int32_t* s) {
  Schedule S;
  S.n = s[0];
  S.n_branches = s[1];
  S.n_levels = s[2];
  S.n_children = s[3];
  S.nodes = s + kScheduleHeader;
  S.branch_ptr = S.nodes + S.n;
  S.level_ptr = S.branch_ptr + S.n_branches + 1;
  S.child_ptr = S.level_ptr + S.n_levels + 1;
  S.child_top = S.child_ptr + S.n_branches + 1;
  return S;
}

// The elimination of branch b of one system (column t of rows of stride nt), bottom to
// top: dinv = 1 / eliminated diagonal, x = eliminated right-hand side. Its child
// branches are eliminated already.
template <typename T>
DENDRAX_HD void factor_branch(const Schedule& S, int32_t b, const T* __restrict__ lo,
                              const T* __restrict__ d, const T* __restrict__ up,
                              const T* __restrict__ r, T* __restrict__ x, T* __restrict__ dinv,
                              int64_t nt, int64_t t) {
  const int32_t begin = S.branch_ptr[b], end = S.branch_ptr[b + 1];
  // the bottom: its child branches' tops, in descending node order
  int64_t i = S.nodes[end - 1];
  T di = d[i * nt + t], ri = r[i * nt + t];
  for (int32_t k = S.child_ptr[b]; k < S.child_ptr[b + 1]; ++k) {
    const int64_t c = S.child_top[k];
    const T f = mul(up[c * nt + t], dinv[c * nt + t]);
    di = di - mul(f, lo[c * nt + t]);
    ri = ri - mul(f, x[c * nt + t]);
  }
  T inv = T(1) / di;
  dinv[i * nt + t] = inv;
  x[i * nt + t] = ri;
  // up the chain: each node has one child, the node eliminated just before
  for (int32_t k = end - 2; k >= begin; --k) {
    const int64_t c = i;
    i = S.nodes[k];
    const T f = mul(up[c * nt + t], inv);
    di = d[i * nt + t] - mul(f, lo[c * nt + t]);
    ri = r[i * nt + t] - mul(f, ri);
    inv = T(1) / di;
    dinv[i * nt + t] = inv;
    x[i * nt + t] = ri;
  }
}

// The elimination of the right-hand side only (dinv given), as factor_branch.
template <typename T>
DENDRAX_HD void substitute_branch(const Schedule& S, int32_t b, const T* __restrict__ up,
                                  const T* __restrict__ dinv, const T* __restrict__ r,
                                  T* __restrict__ x, int64_t nt, int64_t t) {
  const int32_t begin = S.branch_ptr[b], end = S.branch_ptr[b + 1];
  int64_t i = S.nodes[end - 1];
  T ri = r[i * nt + t];
  for (int32_t k = S.child_ptr[b]; k < S.child_ptr[b + 1]; ++k) {
    const int64_t c = S.child_top[k];
    ri = ri - mul(mul(up[c * nt + t], dinv[c * nt + t]), x[c * nt + t]);
  }
  x[i * nt + t] = ri;
  for (int32_t k = end - 2; k >= begin; --k) {
    const int64_t c = i;
    i = S.nodes[k];
    ri = r[i * nt + t] - mul(mul(up[c * nt + t], dinv[c * nt + t]), ri);
    x[i * nt + t] = ri;
  }
}

// Back substitution of branch b, top to bottom: x = (y - lower x_parent) dinv, where y
// (the eliminated right-hand side) is in x. The parent branch is substituted already.
template <typename T>
DENDRAX_HD void back_branch(const Schedule& S, int32_t b, const int32_t* __restrict__ parent,
                            const T* __restrict__ lo, const T* __restrict__ dinv,
                            T* __restrict__ x, int64_t nt, int64_t t) {
  const int32_t begin = S.branch_ptr[b], end = S.branch_ptr[b + 1];
  int64_t i = S.nodes[begin];
  const int64_t p = parent[i];
  T xi = p < 0 ? x[i * nt + t] * dinv[i * nt + t]
               : (x[i * nt + t] - mul(lo[i * nt + t], x[p * nt + t])) * dinv[i * nt + t];
  x[i * nt + t] = xi;
  for (int32_t k = begin + 1; k < end; ++k) {
    i = S.nodes[k];
    xi = (x[i * nt + t] - mul(lo[i * nt + t], xi)) * dinv[i * nt + t];
    x[i * nt + t] = xi;
  }
}

}  // namespace dendrax
