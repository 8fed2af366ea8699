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


def test_cli_guide_config_is_accepted(tmp_path):
    from dendrax.cli import main

    toml = re.findall(r"```toml\n(.*?)```", (DOCS / "cli.md").read_text(), re.S)[0]
    (tmp_path / "cell.swc").write_text("1 1 0 0 0 8 -1\n2 3 0 8 0 1 1\n3 3 0 80 0 1 2\n")
    (tmp_path / "run.toml").write_text(toml.replace('"cell.swc"', f'"{tmp_path / "cell.swc"}"')
                                       .replace("t_stop = 100", "t_stop = 5"))
    assert main(["simulate", "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path),
                 "--no-plot", "--quiet"]) == 0
