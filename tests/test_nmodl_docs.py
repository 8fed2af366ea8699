"""Every python code block of docs/nmodl.md runs, in order, in one namespace: loading a .mod
file, simulating, a gradient, training a parameter with optax, NEURON's shipped files and
building a plugin package from a folder."""

from __future__ import annotations

import pathlib
import re

import pytest

pytest.importorskip("neuron.nmodl", reason="NEURON's NMODL framework (dendrax[nmodl])")

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "nmodl.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks():
    text = DOC.read_text()
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


def test_code_blocks_run(capsys):
    from dendrax.nmodl import registry

    import contextlib
    import io

    namespace: dict = {"__name__": "docs_nmodl"}
    printed = {}  # each block's code -> what it printed
    try:
        for line, code in blocks():
            try:
                with contextlib.redirect_stdout(io.StringIO()) as buf:
                    exec(compile(code, f"{DOC}:{line}", "exec"), namespace)
                printed[code] = buf.getvalue()
                print(printed[code], end="")
            except Exception as err:  # which block failed, with its line in the doc
                pytest.fail(f"docs/nmodl.md block at line {line} failed: "
                            f"{type(err).__name__}: {err}")
    finally:
        registry.unregister()
    out = capsys.readouterr().out
    assert len(blocks()) >= 8
    # loading, simulating, a gradient, training a parameter (the loss falls: asserted in
    # the block), NEURON's shipped files, refusals, a plugin package from a folder
    assert "Channel kdr" in out and "d peak / d gbar" in out
    assert "kdr.gbar 0.02 -> 0.036" in out
    import neuron

    if (pathlib.Path(neuron.__file__).parent / ".data" / "share" / "modfile" / "hh.mod").is_file():
        assert "shipped vs built-in: max |dV|" in out
    assert "POINTER is not supported" in out and "'t' (time) in BREAKPOINT is not supported" in out
    assert '[project.entry-points."dendrax.channels"]' in out
    # the SHA-256 of the NMODL text is the loaded class's
    sha = [out for code, out in printed.items() if "mechanism_sha256(Kdr)" in code]
    assert sha == ["True\n"]
