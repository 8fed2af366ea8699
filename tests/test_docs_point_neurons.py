"""docs/point_neurons.md's examples run, in order, in one namespace."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "point_neurons.md"


def test_point_neuron_guide_examples_run():
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(code) >= 2
    ns = {}
    for block in code:
        exec(compile(block, "docs/point_neurons.md", "exec"), ns)
    assert ns["res"].rates().mean() > 1.0
    assert ns["both"].spikes[0].size >= 1
    assert float(ns["learned"].traces[0][-1]) > 40.0
