"""docs/networks.md's examples run, in order, in one namespace."""

import re
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_networks_guide_examples_run():
    code = re.findall(r"```python\n(.*?)```", (DOCS / "networks.md").read_text(), re.S)
    assert len(code) >= 4
    ns = {}
    for block in code:
        exec(compile(block, "docs/networks.md", "exec"), ns)
    res = ns["res"]
    # each of two Exp2Syn on one soma is recorded on its own (peak g = its weight, uS)
    g = np.asarray(ns["per_synapse"].traces).max(axis=1)
    np.testing.assert_allclose(g, [0.001, 0.003], rtol=0.01)
    assert [len(s) for s in res.spikes[:3]] == [1, 1, 1]  # the chain 0 -> 1 -> 2 fires once
    assert ns["big"].n_connections == 100 + len(ns["big"].wiring.blocks[1].post_cell) + 19
    r = np.asarray(ns["out"].traces[1])
    assert r.max() > 0.5 and r[0] < 0.01  # the graded plugin opened with cell 0's spikes
    assert np.all(np.isfinite(np.asarray(ns["grads"]["synapses"]["Exp2Syn"]["weight"])))
    # gap junctions: cell 1 fires through the junction alone; one g per half
    assert np.asarray(ns["coupled"].traces[0]).max() > 0.0
    np.testing.assert_array_equal(ns["ring"].params["synapses"]["GapJunction"]["g"],
                                  [0.02, 0.02, 0.003, 0.003])
