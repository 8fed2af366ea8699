"""The code examples of docs/morphology.md run (in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "morphology.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_docs_examples_run(capsys):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 4
    namespace: dict = {"__name__": "docs_morphology"}
    for k, code in enumerate(blocks):
        try:
            exec(compile(code, f"{DOC.name}[block {k}]", "exec"), namespace)
        except Exception as err:
            raise AssertionError(f"docs/morphology.md python block {k} failed:\n{code}") from err
    assert namespace["morph"].n_sections == 3
    assert namespace["d_diams"].shape == namespace["morph"].point_diameters.shape
