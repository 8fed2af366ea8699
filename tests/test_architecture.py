"""The package's architecture (README, "Layout"): imports flow one way, without cycles,
and no module imports another's private names. Read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "dendrax"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """(imported module, imported names) of every relative import in a module, at any
    depth (function-level imports dodge no cycle here)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            yield target, [a.name for a in node.names]


def _edges() -> dict[str, set[str]]:
    edges = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            for t in subs + ([target] if len(subs) < len(names) else []):
                if t in MODULES and t != name:
                    edges[name].add(t)
    return edges


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def test_the_module_list_is_the_package():
    assert {"dendrax.cell", "dendrax.lowering", "dendrax.simulation", "dendrax.step",
            "dendrax.state", "dendrax.solver.hines"} <= set(MODULES)


def test_no_import_cycles():
    assert _cycles(_edges()) == []


@pytest.mark.parametrize("lower,upper", [
    ("dendrax.lowering", "dendrax.cell"), ("dendrax.lowering", "dendrax.network"),
    ("dendrax.layout", "dendrax.cell"), ("dendrax.simulation", "dendrax.cell"),
    ("dendrax.simulation", "dendrax.network"), ("dendrax.simulation", "dendrax.lowering"),
    ("dendrax.solver.hines", "dendrax.simulation"), ("dendrax.events.delivery", "dendrax.simulation"),
    ("dendrax.step", "dendrax.simulation"), ("dendrax.step", "dendrax.lowering"),
    ("dendrax.state", "dendrax.step"), ("dendrax.state", "dendrax.simulation"),
])
def test_imports_flow_one_way(lower, upper):
    """Lowering reads descriptions through its contract (``CellLike``), the loop reads a
    lowered model, kernels know no loop: none of them imports what sits above it."""
    edges = _edges()
    seen, todo = set(), [lower]
    while todo:
        m = todo.pop()
        for t in edges[m] - seen:
            seen.add(t)
            todo.append(t)
    assert upper not in seen, f"{lower} imports {upper} (directly or through others)"


def test_no_private_imports_across_modules():
    """``from .x import _y`` only inside one package's own private modules (a package
    importing its ``_native`` / ``_reference`` kernels is its own business)."""
    bad = []
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            home = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
            for n in names:
                private_module = f"{target}.{n}" in MODULES and n.startswith("_") \
                    and target != home
                private_name = n.startswith("_") and n != "__version__" and \
                    f"{target}.{n}" not in MODULES
                if private_name or private_module or (
                        target.rsplit(".", 1)[-1].startswith("_") and
                        target.rsplit(".", 1)[0] != home):
                    bad.append(f"{name}: from {target} import {n}")
    assert bad == []
