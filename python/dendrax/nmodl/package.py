"""An installable dendrax plugin package from a folder of NMODL files.

``write_package(files, out)`` writes::

    out/pyproject.toml           the distribution, with entry points dendrax.channels /
                                 dendrax.synapses naming each mechanism class
    out/README.md                what it holds and where it came from
    out/src/<package>/<mech>.py  the generated, readable source of each mechanism
    out/src/<package>/__init__.py
    out/tests/test_<package>.py  a test: every mechanism is found by name and runs

so ``pip install ./out`` makes ``cell.insert("NaTa_t")`` work in any environment with
dendrax. The generated modules need dendrax (not NEURON) at run time.
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

from .. import plugins
from ..version import __version__ as dendrax_version

from .codegen import generate
from .naming import class_name, identifier
from .describe import describe
from .source import read
from .description import NmodlError


def mod_files(paths) -> list[Path]:
    """The .mod files of ``paths`` (files, or folders whose *.mod are taken, sorted), each
    once (a file named twice, or also through its folder, is not two mechanisms)."""
    out, seen = [], set()
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.mod"))
            if not found:
                raise FileNotFoundError(f"no .mod files in {str(p)!r}")
        elif p.exists():
            found = [p]
        else:
            raise FileNotFoundError(f"no NMODL file {str(p)!r}")
        for f in found:
            if f.resolve() not in seen:
                seen.add(f.resolve())
                out.append(f)
    return out


def package_name(out: Path, name: str | None = None) -> str:
    """A Python package name: ``name`` or the output folder's name, as an identifier. A
    given ``name`` must be a valid distribution name (letters, digits, "-", "_", ".")."""
    if name is not None and not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
        raise ValueError(f"the package name {name!r} (--name) is not valid: use letters, "
                         "digits and '-', '_', '.' (not at either end)")
    raw = name or out.resolve().name
    ident = re.sub(r"\W+", "_", raw.replace("-", "_")).strip("_").lower()
    if not ident or ident[0].isdigit():
        ident = "nmodl_" + ident
    return ident


def write_package(files, out, *, name: str | None = None, skip_unsupported: bool = False
                  ) -> dict:
    """Write the plugin package of the NMODL ``files`` (paths or folders) into ``out``.

    Returns {"package", "channels": {name: module}, "synapses": {...}, "skipped":
    {file: NmodlError}}. Raises NmodlError (all files' problems) when a file is unsupported
    and not ``skip_unsupported``, and ValueError when two files define one name.
    """
    out = Path(out)
    pkg = package_name(out, name)
    dist = pkg.replace("_", "-")
    if pkg in sys.stdlib_module_names or pkg in SHADOWED:  # installing it would replace it
        owner = "Python's standard library" if pkg in sys.stdlib_module_names else "a package"
        raise ValueError(f"the package name {pkg!r} is {owner}'s: choose another (--name, or "
                         "the output folder's name)")
    ours = out / "pyproject.toml"
    if ours.exists() and MARKER not in ours.read_text(errors="replace"):
        raise ValueError(f"{out} holds a pyproject.toml dendrax nmodl did not write: write the "
                         "package into a new folder (-o)")
    generated, skipped, errors = {}, {}, []
    seen: dict[str, Path] = {}
    for f in mod_files(files):
        text, source = read(f)
        try:
            d = describe(text, source)
            code = generate(d)
        except NmodlError as err:
            if skip_unsupported:
                skipped[str(f)] = err
                continue
            errors.append(err)
            continue
        if d.name in seen:
            raise ValueError(f"{f} and {seen[d.name]} both define the mechanism {d.name!r}")
        group = "dendrax.synapses" if d.point else "dendrax.channels"
        taken = [q.package for q in plugins.providers(group).get(d.name, ())
                 if q.package.lower().replace("_", "-") != dist]
        if taken:  # installing it would make the name ambiguous for every user of it
            warnings.warn(f"{f}: {d.name!r} is already provided by {', '.join(taken)}; once "
                          f"this package is installed, cell.insert({d.name!r}) is ambiguous "
                          f"and needs '<package>:{d.name}' (e.g. '{dist}:{d.name}'). Rename "
                          "the SUFFIX / POINT_PROCESS to avoid that", UserWarning, stacklevel=2)
        clash = next((m for m in seen if _module_name(m) == _module_name(d.name)), None)
        if clash is not None:
            raise ValueError(f"{f} ({d.name}) and {seen[clash]} ({clash}) would be one module, "
                             f"{_module_name(d.name)}.py (names differing only in case): "
                             "rename one")
        seen[d.name] = f
        generated[d.name] = (d, code, f)
    if errors:
        problems = [(0, str(e)) for e in errors]
        raise NmodlError(", ".join(e.source for e in errors), problems)
    if not generated:
        raise ValueError("no supported NMODL file to package")
    src = out / "src" / pkg
    src.mkdir(parents=True, exist_ok=True)
    (out / "tests").mkdir(exist_ok=True)
    channels, synapses = {}, {}
    for mech, (d, code, f) in generated.items():
        module = _module_name(mech)
        (src / f"{module}.py").write_text(code)
        target = f"{pkg}.{module}:{class_name(mech)}"
        (synapses if d.point else channels)[mech] = target
    (src / "__init__.py").write_text(_init(pkg, generated))
    (out / "pyproject.toml").write_text(_pyproject(dist, pkg, channels, synapses))
    (out / "README.md").write_text(_readme(dist, generated))
    (out / "tests" / f"test_{pkg}.py").write_text(_test(pkg, generated))
    return {"package": dist, "module": pkg, "channels": channels, "synapses": synapses,
            "skipped": skipped, "files": {m: str(v[2]) for m, v in generated.items()}}


MARKER = "dendrax mechanisms generated from NMODL by dendrax nmodl"  # in pyproject.toml
SHADOWED = {"dendrax", "jax", "jaxlib", "numpy", "scipy", "neuron", "nest", "optax",
            "pytest", "hypothesis", "setuptools", "pip"}


def _module_name(mech: str) -> str:
    return identifier(mech).lower() if identifier(mech).lower() not in ("__init__",) else "m_init"


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _pyproject(dist, pkg, channels, synapses) -> str:
    lines = ["[build-system]", 'requires = ["setuptools>=61"]',
             'build-backend = "setuptools.build_meta"', "", "[project]", f'name = "{dist}"',
             'version = "0.1.0"',
             f'description = "{MARKER}"',
             'requires-python = ">=3.10"', f'dependencies = ["dendrax>={dendrax_version}"]', "",
             "[tool.setuptools.packages.find]", 'where = ["src"]', ""]
    for group, table in (("dendrax.channels", channels), ("dendrax.synapses", synapses)):
        if table:
            lines.append(f'[project.entry-points."{group}"]')
            lines += [f'{_toml_key(n)} = "{v}"' for n, v in table.items()]
            lines.append("")
    return "\n".join(lines)


def _init(pkg, generated) -> str:
    names = ", ".join(sorted(generated))
    imports = "\n".join(f"from .{_module_name(m)} import {class_name(m)}" for m in sorted(generated))
    return (f'"""dendrax mechanisms generated from NMODL by ``dendrax nmodl``: {names}."""\n\n'
            f"{imports}\n\n__all__ = {[class_name(m) for m in sorted(generated)]!r}\n")


def _readme(dist, generated) -> str:
    rows = "\n".join(f"| `{m}` | {'synapse' if d.point else 'channel'} | `{Path(f).name}` |"
                     for m, (d, _, f) in sorted(generated.items()))
    return (f"# {dist}\n\ndendrax mechanisms generated from NMODL files by `dendrax nmodl` "
            "(differentiable, jit-compiled; NEURON's integration methods).\n\n"
            "    pip install .\n\nthen `cell.insert(\"<name>\")` (channels and ion pools) or "
            "`cell.synapse(\"<name>\", ...)` (synapses).\n\n| name | kind | from |\n|---|---|---|\n"
            f"{rows}\n\nRegenerate from the .mod files rather than editing the Python.\n")


def _test(pkg, generated) -> str:
    items = ", ".join(f"({class_name(m)!r}, {d.point})" for m, (d, _, f) in sorted(generated.items()))
    return f'''"""Every mechanism of {pkg} imports, is registered by name, and runs finite."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

try:
    import {pkg}
except ImportError:  # not installed: the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import {pkg}
from dendrax.mechanisms.base import IONS, Channel

MECHANISMS = [{items}]


def env_for(mech, v):
    env = {{"celsius": jnp.asarray(34.0), "dt": 0.025, "diam": jnp.full_like(v, 2.0),
           "area": jnp.full_like(v, 100.0)}}
    for ion in getattr(mech, "ions", ()):
        info = IONS[ion]
        env.update({{f"e{{ion}}": jnp.full_like(v, info.e), f"{{ion}}i": jnp.full_like(v, info.ci),
                    f"{{ion}}o": jnp.full_like(v, info.co), f"i{{ion}}": jnp.zeros_like(v)}})
    return env


@pytest.mark.parametrize("name, point", MECHANISMS)
def test_runs(name, point):
    mech = getattr({pkg}, name)()
    v = jnp.linspace(-90.0, 30.0, 7)
    params = {{k: jnp.full_like(v, x) for k, x in mech.params.items()}}
    if point:  # a synapse is given its connection's weight (uS) and delay (ms) too
        params.update(weight=jnp.full_like(v, 0.001), delay=jnp.zeros_like(v))
    env = env_for(mech, v)
    states = mech.steady_state(v, params, env)
    new = jax.jit(mech.advance)(v, states, params, env, 0.025)
    queue = [k for k in mech.states if k.startswith("net_send_t")]  # +inf: a free slot
    assert all(np.isfinite(np.asarray(new[k])).all() for k in mech.states if k not in queue)
    if point or isinstance(mech, Channel):
        cur = mech.current(v, new, params, env)
        cur = cur if isinstance(cur, dict) else {{"": cur}}
        assert all(np.isfinite(np.asarray(c)).all() for c in cur.values())


@pytest.mark.parametrize("name, point", MECHANISMS)
def test_registered(name, point):
    from importlib import metadata

    if not any(d.metadata["Name"] == "{pkg.replace("_", "-")}" for d in metadata.distributions()):
        pytest.skip("the package is not installed (pip install .)")
    from dendrax.mechanisms import registry

    mech = (registry.synapse if point else registry.channel)(getattr({pkg}, name).name)
    assert type(mech).__name__ == name
'''
