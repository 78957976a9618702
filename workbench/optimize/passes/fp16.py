"""Half precision: weights and arithmetic in float16, inputs and outputs kept float32 by default.

Ops without a float16 kernel stay in float32 (ONNX Runtime's default block list), with casts
around them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.optimize.passes.base import ModelFacts, Pass, save


def run(
    *, source: str, target: str, keep_io_types: bool = True, external: bool = False
) -> dict[str, Any]:
    import onnx
    from onnxruntime.transformers import float16

    model = onnx.load(source)
    half = float16.convert_float_to_float16(model, keep_io_types=keep_io_types)
    save(half, target, external)
    return {"keep_io_types": keep_io_types}


def _check(facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
    if facts.quantized:
        return "the model is quantized to integers; fp16 applies to float models"
    if facts.half:
        return "the weights are float16 already"
    if not facts.float_weights and not facts.float_inputs:
        return "the model has no float32 weights or inputs: there is nothing to convert to fp16"
    return None


PASSES = [
    Pass(
        name="fp16",
        precision="fp16",
        tool="onnxruntime float16 converter",
        function=f"{__name__}:run",
        summary="float16 weights and arithmetic, float32 inputs and outputs",
        check=_check,
        defaults={"keep_io_types": True},
    )
]
