"""Registering compiled XLA FFI handlers with JAX, lazily and once per platform.

An extension module (``dendrax._hines_cpu``, ``dendrax._events_cuda``, ...) exports
``registrations()``: handler name -> PyCapsule. ``Extensions`` registers them the first time
a platform's kernel is asked for, so importing dendrax never touches a device and never
fails because an extension is missing; what went wrong is kept as the reason.
"""

from __future__ import annotations

import importlib
import threading

import jax


class Extensions:
    """The extension module of each platform ("cpu", "CUDA") of one kind of kernel."""

    def __init__(self, modules: dict[str, str]):
        self.modules = modules
        self._lock = threading.Lock()
        self._status: dict[str, str | None] = {}  # platform -> None if registered, else why not

    def _register(self, platform: str) -> str | None:
        if platform == "CUDA":
            try:
                jax.devices("cuda")
            except RuntimeError as err:
                return f"JAX has no CUDA backend here ({err})"
        try:
            module = importlib.import_module(self.modules[platform])
        except ImportError as err:
            return f"extension {self.modules[platform]} not importable ({err})"
        try:
            for name, capsule in module.registrations().items():
                jax.ffi.register_ffi_target(name, capsule, platform=platform)
        except Exception as err:  # noqa: BLE001 - any failure means "not available"
            return f"registering the {platform} handlers failed ({type(err).__name__}: {err})"
        return None

    def unavailable_reason(self, platform: str) -> str | None:
        """None when the native kernel for ``platform`` ("cpu" or "CUDA"; any case, "gpu"
        for "CUDA") is registered; a ValueError for another platform."""
        platform = {"cpu": "cpu", "cuda": "CUDA", "gpu": "CUDA"}.get(str(platform).lower(),
                                                                      platform)
        if platform not in self.modules:
            raise ValueError(f"platform {platform!r}: the native kernels are for "
                             f"{sorted(self.modules)}")
        with self._lock:
            if platform not in self._status:
                self._status[platform] = self._register(platform)
            return self._status[platform]

    def available(self, platform: str) -> bool:
        return self.unavailable_reason(platform) is None
