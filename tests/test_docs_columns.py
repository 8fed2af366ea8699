"""docs/columns.md's examples run, in order, in one namespace (the TOML example saved as
column.toml in the directory they run in, as the docs say)."""

import re
from pathlib import Path

import numpy as np

DOC = Path(__file__).resolve().parents[1] / "docs" / "columns.md"


def test_columns_guide_examples_run(capsys, tmp_path, monkeypatch):
    text = DOC.read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)
    toml = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(code) >= 8 and len(toml) == 1
    monkeypatch.chdir(tmp_path)  # the TOML example saved as the docs say, where they run
    (tmp_path / "column.toml").write_text(toml[0])
    ns = {}
    for block in code:
        exec(compile(block, "docs/columns.md", "exec"), ns)
    assert ns["sig"].units["LFP"] == "proxy" and ns["sig"].units["V_m"] == "mV"
    assert ns["out"].results["rate_E"] > 0
    res, rate0 = ns["res"], ns["rate0"]
    assert abs(res.readouts["rate"] - 2 * rate0) < 0.2 * 2 * rate0  # the fit reached the target
    assert ns["phys"].units["LFP"] == "uV" and np.all(np.isfinite(ns["phys"].LFP))
    out = capsys.readouterr().out
    assert "physical" in out and "unknown layer 'L9'" in out
    for needle in ("must sum to 1", "unknown emitter family", "unknown preset",
                   "unknown probe modes", "unknown connectivity keywords", "duration_ms",
                   "unknown metric"):
        assert needle in out, needle
    assert "raster.png" in out and "readouts.json" in out and "lfp.png" in out
