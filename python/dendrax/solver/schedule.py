"""The branch-level schedule of the GPU Hines solve, built once per tree on the host.

A tree (forest) of N nodes, ``parent[i] < i`` (-1: a root), is cut into *branches*:
maximal unbranched runs of nodes, top to bottom, each node of a run the only child of
the one before. A branch's top is a root or a child of a branch point (a node with
several children); its bottom is a leaf or a branch point. The *level* of a branch is
its depth in branches (a root's branch: 0). The CUDA kernel (csrc/hines_schedule.h)
eliminates level by level from the deepest to 0 and back-substitutes from 0 down, one
thread per branch of a level, each solving its branch as a chain; a branch bottom pulls
its child branches in descending node order, the order of the CPU kernel, so both give
the same results bit for bit.

The schedule is computed from a concrete parent array (numpy: what lowering produces)
when ``hines_solve`` is traced, and travels to the kernel as one int32 operand (packed as
csrc/hines_schedule.h documents). The kernel trusts it: ``build_schedule`` validates the
parent array first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

HEADER = 4  # n, n_branches, n_levels, n_children


@dataclass(frozen=True, eq=False)
class Schedule:
    """One tree's schedule.

    Attributes:
        packed: int32 [K], the kernel operand: header (n, n_branches, n_levels,
            n_children), nodes [N], branch_ptr [B+1], level_ptr [L+1], child_ptr [B+1],
            child_top [C].
        width: the most branches of one level (threads a system can use at once).
    """

    packed: np.ndarray
    width: int

    def parts(self) -> dict[str, np.ndarray]:
        """The packed arrays by name (views): nodes, branch_ptr, level_ptr, child_ptr,
        child_top."""
        return unpack(self.packed)

    @property
    def n_levels(self) -> int:
        return int(self.packed[2])

    @property
    def n_branches(self) -> int:
        return int(self.packed[1])

    # hashable by content: a static argument of jax transformations
    def __hash__(self) -> int:
        return hash(self.packed.tobytes())

    def __eq__(self, other) -> bool:
        return isinstance(other, Schedule) and np.array_equal(self.packed, other.packed)


def unpack(packed: np.ndarray) -> dict[str, np.ndarray]:
    """Split a packed schedule into its arrays (views)."""
    n, b, lv, c = (int(v) for v in packed[:HEADER])
    sizes = {"nodes": n, "branch_ptr": b + 1, "level_ptr": lv + 1, "child_ptr": b + 1,
             "child_top": c}
    out, k = {}, HEADER
    for name, size in sizes.items():
        out[name] = packed[k:k + size]
        k += size
    if k != packed.size:
        raise ValueError(f"schedule: {packed.size} values, the header describes {k}")
    return out


def check_parent(parent) -> np.ndarray:
    """parent as int32 [N], or ValueError naming the first entry that breaks
    ``-1 <= parent[i] < i``."""
    p = np.asarray(parent)
    if p.ndim != 1 or not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"schedule: parent must be a 1-d integer array, got {p.dtype} {p.shape}")
    bad = np.flatnonzero((p < -1) | (p >= np.arange(p.size)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"schedule: parent[{i}] = {int(p[i])} breaks -1 <= parent[i] < i "
                         f"({bad.size} bad entries)")
    return p.astype(np.int32)


def build_schedule(parent) -> Schedule:
    """The schedule of one tree (cached by content: a simulation traces it once).

    Args:
        parent: int [N], ``-1 <= parent[i] < i``.

    Raises:
        ValueError: for a parent array that breaks that rule.
    """
    p = check_parent(parent)
    return _build(p.tobytes())


@lru_cache(maxsize=64)
def _build(key: bytes) -> Schedule:
    parent = np.frombuffer(key, np.int32)
    n = parent.size
    if n == 0:
        packed = np.array([0, 0, 0, 0, 0, 0, 0], np.int32)  # no branch, no level
        return Schedule(packed, 1)
    n_child = np.bincount(parent[parent >= 0], minlength=n)
    # a node starts a branch unless it is the only child of its parent
    top = (parent < 0) | (n_child[np.maximum(parent, 0)] != 1)
    # branch of each node, in node order (parents first: the parent's branch is known)
    branch = np.empty(n, np.int64)
    tops = np.flatnonzero(top)
    branch_id = np.full(n, -1, np.int64)
    branch_id[tops] = np.arange(tops.size)
    for i in range(n):  # O(N), once per tree
        branch[i] = branch_id[i] if top[i] else branch[parent[i]]
    nb = tops.size
    parent_branch = np.where(parent[tops] >= 0, branch[np.maximum(parent[tops], 0)], -1)
    level = np.zeros(nb, np.int64)
    for b in range(nb):  # tops ascend, so a parent branch comes first
        if parent_branch[b] >= 0:
            level[b] = level[parent_branch[b]] + 1
    length = np.bincount(branch, minlength=nb)
    # branches level by level, longest first, ties by top node
    order = np.lexsort((tops, -length, level))
    new_id = np.empty(nb, np.int64)
    new_id[order] = np.arange(nb)
    # nodes branch by branch; within a branch, node order = top to bottom
    nodes = np.argsort(new_id[branch], kind="stable")
    branch_ptr = np.r_[0, np.cumsum(length[order])]
    n_levels = int(level.max()) + 1
    level_ptr = np.searchsorted(level[order], np.arange(n_levels + 1))
    # children of each branch: tops whose parent branch it is, descending node index
    has_pb = parent_branch >= 0
    child_b = new_id[parent_branch[has_pb]]
    child_node = tops[has_pb]
    k = np.lexsort((-child_node, child_b))
    child_top = child_node[k]
    child_ptr = np.r_[0, np.cumsum(np.bincount(child_b, minlength=nb))]
    packed = np.concatenate([[n, nb, n_levels, child_top.size], nodes, branch_ptr, level_ptr,
                             child_ptr, child_top]).astype(np.int32)
    width = int(np.max(np.diff(level_ptr)))
    return Schedule(packed, width)


__all__ = ["Schedule", "build_schedule", "check_parent", "unpack"]
