"""README.md's examples run, and its test command is the one .ci/run runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_python_examples_run():
    code = blocks("python")
    assert code, "README.md has no python example"
    for source in code:
        exec(compile(source, "README.md", "exec"), {})


def test_ci_runs_the_readme_test_command():
    commands = [c.strip() for c in blocks("bash")]
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text()
