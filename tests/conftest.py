"""The suite checks NEURON agreement in float64: turn JAX's 64-bit mode on, as the
README tells users to (importing dendrax does not; see tests/test_precision.py)."""

import gc
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def run_in_processes(tmp_path):
    """``run(script, runs) -> {name: {key: array}}``: ``script`` (Python source that saves an
    .npz at sys.argv[1]) run once per entry of ``runs`` (name -> environment variables to
    set), each in a fresh process: for settings a kernel reads once per process."""

    def run(script: str, runs: dict) -> dict:
        out = {}
        for name, env in runs.items():
            path = tmp_path / f"{name}.npz"
            proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                                  text=True, timeout=300, env={**os.environ, **env})
            assert proc.returncode == 0, proc.stderr[-3000:]
            out[name] = dict(np.load(path))
        return out

    return run


@pytest.fixture(autouse=True)
def _exact_hh_rates_in_neuron():
    """Every test starts with NEURON's hh computing its rates exactly (usetable_hh = 0, as
    dendrax does): a test that runs NEURON with its tables (the benchmarks' "user" runs)
    sets them itself, and one that fails midway must not leave them on for the next."""
    if "neuron" in sys.modules:
        from neuron import h

        if hasattr(h, "usetable_hh"):
            h.usetable_hh = 0
    yield


@pytest.fixture(autouse=True, scope="module")
def _compiled_code_freed_per_module():
    """JAX keeps what it compiled outside dendrax.compiled (the tests' own jitted functions
    and op-by-op shapes) for the life of the process, each a few memory mappings, and Linux
    allows a process 65530 (vm.max_map_count): the whole suite in one process came near
    and crashed inside XLA. Each test module's compiled code is dropped after it."""
    yield
    jax.clear_caches()
    gc.collect()
