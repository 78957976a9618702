"""The ONNX reference evaluator: slow pure-numpy execution, the specification's own reading.

Useful to settle a disagreement between engines; never fast, so it is left out of the
default sweep and runs only when named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from workbench.runtimes.base import ModelRef, Runtime, RuntimeConfig, Session, SessionInfo

if TYPE_CHECKING:
    import numpy as np


class OnnxReference(Runtime):
    name = "onnx-reference"
    description = "ONNX reference evaluator (numpy; slow, for correctness)"
    module = "onnx"
    distributions = ("onnx",)
    install = "pip install onnx"
    in_default_sweep = False

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        import onnx
        from onnx.reference import ReferenceEvaluator

        # The artifact's folder was checked when it was loaded: external data stays inside it.
        proto = onnx.load(str(model.artifact.path))
        return _ReferenceSession(ReferenceEvaluator(proto), onnx.__version__)


class _ReferenceSession(Session):
    def __init__(self, evaluator: Any, version: str) -> None:
        self._evaluator = evaluator
        self._inputs = set(evaluator.input_names)
        self.info = SessionInfo(provider="numpy", threads=None, details={"onnx": version})

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        own = {name: value for name, value in feeds.items() if name in self._inputs}
        return list(self._evaluator.run(None, own))
