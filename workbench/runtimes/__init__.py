"""The table of runtimes: built-in ones, those other packages add, and those registered in code.

Other packages add a runtime through the ``workbench.runtimes`` entry-point group, pointing at a
:class:`Runtime` subclass. One that fails to import is listed with the reason, not dropped.
"""

from __future__ import annotations

import importlib.metadata
import logging

from workbench._callable import make_callable
from workbench.errors import UnknownRuntimeError
from workbench.runtimes.base import (
    Availability,
    ModelRef,
    Runtime,
    RuntimeConfig,
    Session,
    SessionInfo,
)
from workbench.runtimes.onnx_reference import OnnxReference
from workbench.runtimes.openvino_runtime import OpenVino
from workbench.runtimes.ort import OnnxRuntime
from workbench.runtimes.torch_eager import TorchEager

__all__ = [
    "Availability",
    "ModelRef",
    "Runtime",
    "RuntimeConfig",
    "Session",
    "SessionInfo",
    "get",
    "register",
    "registry",
    "unregister",
]

log = logging.getLogger(__name__)
# NOTE: workbench.runtimes() lists the runtimes even after this folder has been imported.
make_callable(__name__, "workbench.api:runtimes")
ENTRY_POINT_GROUP = "workbench.runtimes"

_BUILT_IN: tuple[type[Runtime], ...] = (TorchEager, OnnxRuntime, OpenVino, OnnxReference)
_registered: dict[str, Runtime] = {}
_plugins: dict[str, Runtime] | None = None


class _BrokenRuntime(Runtime):
    """Stands in for a runtime whose plug-in could not be imported, and says why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.description = "plug-in that failed to load"
        self._reason = reason

    def available(self) -> Availability:
        return Availability(ok=False, reason=self._reason)

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        raise UnknownRuntimeError(f"The runtime {self.name!r} cannot load: {self._reason}.")


def register(runtime: Runtime) -> None:
    """Add a runtime under its name, replacing one of the same name.

    Workers receive registered runtimes by value, so a class defined in a notebook works.
    """
    if not isinstance(runtime, Runtime) or not runtime.name:
        raise TypeError("register() takes a Runtime instance whose class sets a name.")
    _registered[runtime.name] = runtime


def unregister(name: str) -> None:
    _registered.pop(name, None)


def registry() -> dict[str, Runtime]:
    """Every known runtime by name, available or not."""
    table: dict[str, Runtime] = {cls.name: cls() for cls in _BUILT_IN}
    table.update(_load_plugins())
    table.update(_registered)
    return table


def get(name: str) -> Runtime:
    table = registry()
    if name not in table:
        raise UnknownRuntimeError(
            f"There is no runtime called {name!r}; the known runtimes are: "
            f"{', '.join(sorted(table))}."
        )
    return table[name]


def _load_plugins() -> dict[str, Runtime]:
    global _plugins  # noqa: PLW0603 - entry points are read once per process
    if _plugins is None:
        _plugins = {}
        for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                runtime = entry.load()()
                _plugins[runtime.name or entry.name] = runtime
            except Exception as exc:  # noqa: BLE001 - a broken plug-in is listed with its reason
                log.warning("the runtime plug-in %s failed to load: %s", entry.name, exc)
                _plugins[entry.name] = _BrokenRuntime(entry.name, f"{type(exc).__name__}: {exc}")
    return _plugins
