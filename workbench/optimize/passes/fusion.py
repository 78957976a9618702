"""ONNX Runtime's transformer fusions: attention, layer norm, GELU and bias-add into single ops.

Heads and width are read from the graph unless given. When no pattern matches the model is left
as it was, and the pass says so instead of making a copy under a new name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.optimize.passes.base import ModelFacts, NotApplicable, Pass


def run(
    *,
    source: str,
    target: str,
    model_type: str = "bert",
    num_heads: int = 0,
    hidden_size: int = 0,
    external: bool = False,
) -> dict[str, Any]:
    import logging

    from onnxruntime.transformers import optimizer

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    model = optimizer.optimize_model(
        source,
        model_type=model_type,
        num_heads=num_heads,
        hidden_size=hidden_size,
        opt_level=0,
    )
    fused = {op: count for op, count in model.get_fused_operator_statistics().items() if count}
    if not fused:
        raise NotApplicable(
            f"ONNX Runtime's {model_type} fusions matched no pattern in this graph, so the "
            "fused model would be the same"
        )
    model.save_model_to_file(target, use_external_data_format=external)
    return {"model_type": model_type, "fused": fused}


def _check(facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
    if not facts.transformer:
        return "not a transformer: the graph has no attention (no Softmax between MatMuls)"
    if facts.quantized:
        return "the model is already quantized; fuse before quantizing"
    return None


PASSES = [
    Pass(
        name="fusion",
        precision="fp32",
        tool="onnxruntime transformer optimizer",
        function=f"{__name__}:run",
        summary="ONNX Runtime transformer fusions (attention, layer norm, GELU)",
        check=_check,
        defaults={"model_type": "bert"},
        engines=("onnxruntime",),
    )
]
