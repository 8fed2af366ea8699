"""What this installation of dendrax can do: versions, solver, spike-delivery and HH-gate
backends."""

from __future__ import annotations

import platform
import sys

from .version import __version__


def report() -> str:
    import jax
    import jaxlib
    import numpy

    from .solver import native_available, native_unavailable_reason

    lines = [
        f"dendrax {__version__}",
        f"python {sys.version.split()[0]} ({platform.machine()}, {platform.system()})",
        f"jax {jax.__version__}, jaxlib {jaxlib.__version__}, numpy {numpy.__version__}",
        f"jax default backend: {jax.default_backend()}; devices: "
        + ", ".join(str(d) for d in jax.devices()),
        "Hines solve backends:",
        "  jax: available (pure JAX fallback)",
    ]
    for platform_name, label in (("cpu", "native cpu"), ("CUDA", "native cuda")):
        why = native_unavailable_reason(platform_name)
        lines.append(f"  {label}: " + ("available" if why is None else f"unavailable: {why}"))
    auto = "native" if native_available(jax.default_backend().replace("gpu", "CUDA")
                                        if jax.default_backend() != "cpu" else "cpu") else "jax"
    lines.append(f"  auto on the default backend -> {auto}")
    from .events import native_unavailable_reason as events_why

    lines.append("Spike delivery backends (dendrax.events):")
    lines.append("  jax: available (pure JAX twin)")
    for platform_name, label in (("cpu", "native cpu"), ("CUDA", "native cuda")):
        why = events_why(platform_name)
        lines.append(f"  {label}: " + ("available" if why is None else f"unavailable: {why}"))
    from .mechanisms.hh_kernel import EXTENSIONS as hh_gates

    why = hh_gates.unavailable_reason("cpu")
    lines.append("HH gate step (dendrax.mechanisms.hh_kernel):")
    lines.append("  jax: available (pure JAX twin; what a GPU runs)")
    lines.append("  native cpu: " + ("available" if why is None else f"unavailable: {why}"))
    return "\n".join(lines)
