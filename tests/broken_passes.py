"""Passes that go wrong on purpose, registered only by the tests that need them.

Workers import this module from the test process's ``sys.path``.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from workbench.optimize.passes import Pass


def zero_weights(*, source: str, target: str, external: bool = False) -> dict[str, Any]:
    """A "pass" that keeps the graph and zeroes every weight: fast, and wrong."""
    model = onnx.load(source)
    for tensor in model.graph.initializer:
        zeros = np.zeros_like(numpy_helper.to_array(tensor))
        tensor.CopyFrom(numpy_helper.from_array(zeros, tensor.name))
    onnx.save(model, target)
    return {"zeroed": len(model.graph.initializer)}


def crash(*, source: str, target: str, external: bool = False) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def _always(facts: Any, options: Any) -> None:
    return None


ZERO = Pass(
    name="zero-weights",
    precision="fp32",
    tool="a test pass that zeroes weights",
    function=f"{__name__}:zero_weights",
    summary="every weight set to zero",
    check=_always,
)
ZERO_INT8 = Pass(
    name="zero-int8",
    precision="int8",
    tool="a test pass that zeroes weights and claims int8",
    function=f"{__name__}:zero_weights",
    summary="every weight set to zero",
    check=_always,
)
CRASH = Pass(
    name="crash",
    precision="fp32",
    tool="a test pass that crashes",
    function=f"{__name__}:crash",
    summary="a segmentation fault",
    check=_always,
)
