"""Every python code block of docs/mechanisms.md runs, in order, in one namespace."""

from __future__ import annotations

import pathlib
import re

import pytest

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "mechanisms.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def blocks():
    return [(DOC.read_text()[:m.start()].count("\n") + 2, m.group(1))
            for m in BLOCK.finditer(DOC.read_text())]


def test_doc_has_examples():
    text = DOC.read_text()
    assert len(blocks()) >= 6
    for needed in ("class NaHH(Channel)", "class CaShell(IonPool)", "class ExpSynapse(Synapse)",
                   '[project.entry-points."dendrax.channels"]'):
        assert needed in text


def test_code_blocks_run():
    namespace: dict = {"__name__": "docs_mechanisms"}
    for line, code in blocks():
        try:
            exec(compile(code, f"{DOC}:{line}", "exec"), namespace)
        except Exception as err:  # report which block failed, with its line in the doc
            pytest.fail(f"docs/mechanisms.md block at line {line} failed: {type(err).__name__}: {err}")
    # what the synapse example's comment says it prints: -0.065 nA, inward
    syn = namespace["ExpSynapse"]()
    sp = {"tau": 2.0, "e": 0.0}
    g = syn.on_spike({"g": 0.0}, sp, 0.001)
    assert abs(float(syn.current(-65.0, g, sp)) + 0.065) < 1e-15
