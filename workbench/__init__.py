"""Export, check, optimize and benchmark ONNX models from a notebook or a shell.

Importing the package imports no engine: every name below is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench._version import __version__

if TYPE_CHECKING:
    from workbench.api import RuntimeList, export, inspect, load, runtimes
    from workbench.artifact import Artifact, TensorSpec
    from workbench.bench.measurement import Measurement
    from workbench.compare import Comparison, compare
    from workbench.errors import (
        ExportError,
        InputError,
        ModelFileError,
        RuntimeNotAvailableError,
        StoreError,
        UnknownRuntimeError,
        WorkbenchError,
        WorkbenchWarning,
    )
    from workbench.export.parity import ParityReport
    from workbench.inspect.summary import Summary
    from workbench.jupyter.dashboard import Dashboard
    from workbench.jupyter.training import TrainingPlot
    from workbench.optimize.lab import optimize
    from workbench.optimize.search import Tuning, autotune
    from workbench.optimize.sensitivity import sensitivity
    from workbench.optimize.sensitivity_result import Sensitivity
    from workbench.optimize.variant import Variant, Variants
    from workbench.profile import Profile, profile
    from workbench.results import Results
    from workbench.runtimes import Runtime, RuntimeConfig, register
    from workbench.store.sqlite import Store, open_store
    from workbench.studies import Study
    from workbench.study import benchmark

_WHERE = {
    "export": "workbench.api",
    "load": "workbench.api",
    "inspect": "workbench.api",  # the folder workbench/inspect/ is callable too
    "benchmark": "workbench.study",
    "profile": "workbench.profile",  # the module workbench/profile.py is callable too
    "Profile": "workbench.profile",
    "runtimes": "workbench.api",  # the folder workbench/runtimes/ is callable too
    "RuntimeList": "workbench.api",
    "Artifact": "workbench.artifact",
    "TensorSpec": "workbench.artifact",
    "ParityReport": "workbench.export.parity",
    "Summary": "workbench.inspect.summary",
    "Results": "workbench.results",
    "compare": "workbench.compare",  # the module workbench/compare.py is callable too
    "Comparison": "workbench.compare",
    "Measurement": "workbench.bench.measurement",
    "Runtime": "workbench.runtimes",
    "RuntimeConfig": "workbench.runtimes",
    "register": "workbench.runtimes",
    "WorkbenchError": "workbench.errors",
    "WorkbenchWarning": "workbench.errors",
    "ExportError": "workbench.errors",
    "InputError": "workbench.errors",
    "ModelFileError": "workbench.errors",
    "RuntimeNotAvailableError": "workbench.errors",
    "UnknownRuntimeError": "workbench.errors",
    "Dashboard": "workbench.jupyter.dashboard",
    "TrainingPlot": "workbench.jupyter.training",
    "Study": "workbench.studies",
    "Store": "workbench.store.sqlite",
    "open_store": "workbench.store.sqlite",
    "StoreError": "workbench.errors",
    # The callable package itself, so that workbench.optimize.sensitivity(...) works too.
    "optimize": "workbench.optimize",
    "autotune": "workbench.optimize.search",
    "Tuning": "workbench.optimize.search",
    "sensitivity": "workbench.optimize.sensitivity",
    "Sensitivity": "workbench.optimize.sensitivity_result",
    "Variant": "workbench.optimize.variant",
    "Variants": "workbench.optimize.variant",
}

__all__ = [
    "Artifact",
    "Comparison",
    "Dashboard",
    "ExportError",
    "InputError",
    "Measurement",
    "ModelFileError",
    "ParityReport",
    "Profile",
    "Results",
    "Runtime",
    "RuntimeConfig",
    "RuntimeList",
    "RuntimeNotAvailableError",
    "Sensitivity",
    "Store",
    "StoreError",
    "Study",
    "Summary",
    "TensorSpec",
    "TrainingPlot",
    "Tuning",
    "UnknownRuntimeError",
    "Variant",
    "Variants",
    "WorkbenchError",
    "WorkbenchWarning",
    "__version__",
    "autotune",
    "benchmark",
    "compare",
    "export",
    "inspect",
    "load",
    "open_store",
    "optimize",
    "profile",
    "register",
    "runtimes",
    "sensitivity",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        module = importlib.import_module(_WHERE[name])
        value = module if module.__name__ == f"workbench.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench``: registers the ``%wb`` magics; no engine is imported."""
    from workbench.jupyter.magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext workbench``: removes the ``%wb`` magics."""
    from workbench.jupyter.magics import unregister

    unregister(ipython)
