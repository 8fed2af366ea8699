"""docs/cells.md's examples run, in order, in one namespace."""

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cells_guide_examples_run():
    code = re.findall(r"```python\n(.*?)```", (DOCS / "cells.md").read_text(), re.S)
    assert len(code) >= 4
    namespace = {}
    for block in code:
        exec(compile(block, "docs/cells.md", "exec"), namespace)
    assert namespace["res"].traces.shape[0] == 1
    # what the comments say they print
    import numpy as np

    other = namespace["other"]
    assert abs(other.get("hh.gnabar")[0] - 0.12) < 1e-15 and other.get("cm")[0] == 1.0
    i_mem, injected = namespace["i_mem"], namespace["injected"]
    assert np.abs(injected).max() > 0.1
    assert np.abs(i_mem.sum(axis=0) - injected).max() < 1e-10  # "~2e-12 nA: Kirchhoff"


def test_cli_guide_config_is_accepted(tmp_path):
    from dendrax.cli import main

    toml = re.findall(r"```toml\n(.*?)```", (DOCS / "cli.md").read_text(), re.S)[0]
    (tmp_path / "cell.swc").write_text("1 1 0 0 0 8 -1\n2 3 0 8 0 1 1\n3 3 0 80 0 1 2\n")
    (tmp_path / "run.toml").write_text(toml.replace('"cell.swc"', f'"{tmp_path / "cell.swc"}"')
                                       .replace("t_stop = 100", "t_stop = 5"))
    assert main(["simulate", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path),
                 "--no-plot", "--quiet"]) == 0


def test_cli_guide_commands_run(tmp_path, monkeypatch):
    """The dendrax commands shown in docs/cli.md's ```bash blocks run as written."""
    import shlex
    import shutil
    import subprocess

    import numpy as np
    import pytest

    from dendrax.cli import main

    monkeypatch.chdir(tmp_path)
    text = (DOCS / "cli.md").read_text()
    for toml in re.findall(r"```toml\n(.*?)```", text, re.S):
        m = re.match(r"# (\w+\.toml)", toml)
        if m:  # a file the commands below use
            (tmp_path / m.group(1)).write_text(toml)
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = [line for b in blocks for line in b.splitlines() if line.startswith("dendrax ")]
    assert len(commands) >= 2
    for line in commands:
        if shutil.which("bash"):  # pasted into a shell it parses (quoted parentheses)
            assert subprocess.run(["bash", "-n", "-c", line]).returncode == 0, line
        assert not re.search(r"(^|\s)[^'\"\s]*[\[(]", line), f"quote locations: {line}"
        args = shlex.split(line)[1:]
        if "--nwb" in args:
            pytest.importorskip("pynwb")
        assert main(args) == 0, line
    first, again = np.load("run1/traces.npz"), np.load("run2/traces.npz")
    assert first["units"].tolist() == ["mV", "mA/cm2", "nA"]
    # the saved model reruns bit for bit (its recordings, then the added one)
    np.testing.assert_array_equal(first["traces"], again["traces"][:3])
    assert again["labels"].tolist()[-1] == "ik@soma(0.5)" and (tmp_path / "run2" / "run.nwb").exists()
    import dendrax as dx

    assert len(dx.load(tmp_path / "run2" / "model.dendrax.json").recordings) == 4  # and ik
    point = np.load("point_out/traces.npz")
    assert point["units"].tolist() == ["mV", "mV"] and point["spike_times"].size > 100
    assert point["labels"].tolist() == ["V_m@exc[0]", "V_m@exc[1]"]
