"""NEST's connection rules as index pairs: which presynaptic and postsynaptic neurons (or
cells) a rule connects, drawn reproducibly from a key.

Each rule returns ``(i, j)``, int arrays [C]: connection c runs from pre ``i[c]`` to post
``j[c]`` (indices into the pre and post groups). The random rules draw from ``rng(key)``:
the same key gives the same connections.
"""

from __future__ import annotations

import numpy as np


def rng(key) -> np.random.Generator:
    """A numpy generator seeded by a JAX PRNG key (typed or raw) or an int seed >= 0: the
    same key gives the same draws."""
    import jax

    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if key < 0:
            raise ValueError(f"key: an int seed is >= 0, got {key}")
        return np.random.default_rng(int(key))
    if not isinstance(key, jax.Array) or not (jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
                                              or key.dtype == np.uint32):
        raise ValueError(f"key must be an int seed >= 0 or a JAX PRNG key "
                         f"(jax.random.PRNGKey(seed)), got {key!r}")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key).astype(np.uint64).ravel().tolist())


# the most connections one call makes (two int64 indices each, and the block's values:
# ~40 bytes a connection, 20 GB here), and the random numbers drawn at once
MAX_CONNECTIONS = 5 * 10 ** 8
_ROWS_OF = 2 ** 24


def _check_count(n: float, rule: str) -> None:
    if n > MAX_CONNECTIONS:
        raise ValueError(f"{rule} would make {n:.3g} connections in one call (at most "
                         f"{MAX_CONNECTIONS:.0e}): connect smaller blocks of neurons")


def all_to_all(n_pre: int, n_post: int):
    """Every pre to every post, pre-major."""
    _check_count(float(n_pre) * n_post, "all_to_all")
    return np.repeat(np.arange(n_pre), n_post), np.tile(np.arange(n_post), n_pre)


def one_to_one(n_pre: int, n_post: int):
    """Pre k to post k (equal sizes)."""
    if n_pre != n_post:
        raise ValueError(f"one_to_one needs equal sizes, got {n_pre} and {n_post}")
    return np.arange(n_pre), np.arange(n_post)


def pairwise_bernoulli(n_pre: int, n_post: int, p, key):
    """Each pair independently with probability p (NEST's pairwise_bernoulli; autapses
    included)."""
    if key is None:
        raise ValueError("p= needs key= (a JAX PRNG key or an int seed)")
    _check_count(float(p) * n_pre * n_post, f"p = {p:g}")
    # drawn in blocks of rows, the same numbers as one [n_pre, n_post] draw
    gen, step = rng(key), max(1, _ROWS_OF // max(n_post, 1))
    pre, post = [], []
    for start in range(0, n_pre, step):
        i, j = np.nonzero(gen.random((min(step, n_pre - start), n_post)) < p)
        pre.append(i + start)
        post.append(j)
    if not pre:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(pre), np.concatenate(post)


def fixed_indegree(n_pre: int, n_post: int, indegree, key):
    """``indegree`` sources drawn uniformly with replacement for every target (NEST's
    fixed_indegree with autapses and multapses allowed)."""
    if key is None:
        raise ValueError("indegree= needs key= (a JAX PRNG key or an int seed)")
    if not isinstance(indegree, (int, np.integer)) or isinstance(indegree, bool) or indegree < 0:
        raise ValueError(f"indegree must be a whole number >= 0, got {indegree!r}")
    if n_pre == 0 and n_post and indegree:
        raise ValueError(f"indegree={indegree} needs sources to draw from: none are selected")
    _check_count(float(n_post) * indegree, f"indegree = {indegree}")
    j = np.repeat(np.arange(n_post), int(indegree))
    i = rng(key).integers(0, n_pre, j.size) if n_pre else np.zeros(0, int)
    return i, j
