"""onnxslim: constant folding, dead-node removal and pattern fusions in plain ONNX operators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.optimize.passes.base import ModelFacts, Pass, save


def run(*, source: str, target: str, external: bool = False) -> dict[str, Any]:
    import onnx
    import onnxslim

    before = onnx.load(source)
    nodes_before = len(before.graph.node)
    slimmed = onnxslim.slim(before)
    save(slimmed, target, external)
    return {
        "nodes_before": nodes_before,
        "nodes_after": len(slimmed.graph.node),
        "onnxslim": onnxslim.__version__,
    }


def _check(facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
    if facts.quantized:
        return "the model is already quantized; simplify before quantizing"
    return None


PASSES = [
    Pass(
        name="slim",
        precision="fp32",
        tool="onnxslim",
        function=f"{__name__}:run",
        summary="onnxslim simplification: constants folded, dead nodes removed, patterns fused",
        check=_check,
    )
]
