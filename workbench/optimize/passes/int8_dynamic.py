"""int8 dynamic quantization: int8 weights, activations quantized on the fly at each call.

ONNX Runtime's quantizer leaves ``Gemm`` alone, and exporters emit ``Gemm`` for every linear
layer, so the pass first rewrites each ``Gemm`` with a constant weight into ``MatMul`` + ``Add``
(with ONNX Runtime's own rewrite); otherwise the "quantized" model would stay mostly fp32.
A ``Gemm`` named in ``nodes_to_exclude`` stays fp32: its ``MatMul`` is excluded in its place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.optimize.passes.base import ModelFacts, NotApplicable, Pass, save

QUANTIZED_BY_DYNAMIC = ("MatMulInteger", "ConvInteger", "DynamicQuantizeMatMul", "QAttention")
_WEIGHT_OPS = ("MatMul", "Gemm", "Conv", "Attention", "Gather", "LSTM")


def run(
    *,
    source: str,
    target: str,
    per_channel: bool = False,
    op_types: Sequence[str] | None = None,
    nodes_to_exclude: Sequence[str] = (),
    external: bool = False,
) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.onnx_model import ONNXModel

    model = ONNXModel(onnx.load(source))
    gemms = sum(node.op_type == "Gemm" for node in model.nodes())
    excluded_outputs = [
        node.output[0]
        for node in model.nodes()
        if node.op_type == "Gemm" and node.name and node.name in nodes_to_exclude
    ]
    model.replace_gemm_with_matmul()
    nodes_to_exclude = [*nodes_to_exclude, *_matmuls_making(model.nodes(), excluded_outputs)]
    rewritten = Path(target).with_suffix(".gemm.onnx")
    save(model.model, str(rewritten), external)
    try:
        quantize_dynamic(
            rewritten,
            target,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            op_types_to_quantize=list(op_types) if op_types else None,
            nodes_to_exclude=list(nodes_to_exclude) or None,
            use_external_data_format=external,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        for leftover in rewritten.parent.glob(rewritten.name + "*"):
            leftover.unlink()
    result = onnx.load(target, load_external_data=False)
    counts = dict.fromkeys(QUANTIZED_BY_DYNAMIC, 0)
    for node in result.graph.node:
        if node.op_type in counts:
            counts[node.op_type] += 1
    quantized = {op: count for op, count in counts.items() if count}
    if not quantized:
        Path(target).unlink()
        raise NotApplicable("ONNX Runtime's dynamic quantizer found no weight to quantize")
    return {"quantized": quantized, "gemm_rewritten": gemms, "per_channel": per_channel}


def _matmuls_making(nodes: Sequence[Any], outputs: Sequence[str]) -> list[str]:
    """The names of the MatMul nodes the rewrite put in place of the Gemm making each output.

    NOTE: found through the tensors, so this holds however the rewrite names its nodes. A Gemm
    becomes ``MatMul`` alone, or ``MatMul`` then ``Add`` when it has a bias.
    """
    producer = {output: node for node in nodes for output in node.output}
    found = []
    for output in outputs:
        node = producer.get(output)
        if node is not None and node.op_type == "Add":
            feeding = [producer[name] for name in node.input if name in producer]
            node = next((item for item in feeding if item.op_type == "MatMul"), None)
        if node is not None and node.op_type == "MatMul" and node.name:
            found.append(node.name)
    return found


def _check(facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
    if facts.quantized:
        return "the model is quantized already"
    if facts.machine_layout:
        return (
            "the graph holds ONNX Runtime's CPU-specific layouts (from ort-all), which the "
            "quantizer cannot read; quantize first, or chain after ort-extended"
        )
    if facts.half:
        return "the weights are float16; int8 quantization starts from a float32 model"
    if not facts.float_weights or not any(facts.op_types[op] for op in _WEIGHT_OPS):
        return "no MatMul, Gemm, Conv or attention with float32 weights: nothing to quantize"
    return None


PASSES = [
    Pass(
        name="int8-dynamic",
        precision="int8",
        tool="onnxruntime quantize_dynamic",
        function=f"{__name__}:run",
        summary="int8 weights, activations quantized per call (Gemm rewritten to MatMul first)",
        check=_check,
        engines=("onnxruntime",),
    )
]
