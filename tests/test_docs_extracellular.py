"""docs/extracellular.md's examples run, in order, in one namespace."""

import re
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_extracellular_guide_examples_run():
    code = re.findall(r"```python\n(.*?)```", (DOCS / "extracellular.md").read_text(), re.S)
    assert len(code) >= 5
    namespace = {}
    for block in code:
        exec(compile(block, "docs/extracellular.md", "exec"), namespace)
    assert namespace["res"]["lfp"].shape == (9, 401)
    assert namespace["per_cell"].shape == (3, 3, 401)
    assert namespace["eeg"].shape == (2, 401) and namespace["b"].shape == (1, 3, 401)
    assert namespace["inner"].shape == (7, 401)
    assert np.all(np.isfinite(np.asarray(namespace["delta"])))
