"""int8 static quantization in QDQ form, calibrated on the user's data.

Activation ranges come from running the calibration batches through the float model (min-max by
default). Weights are quantized per output channel when the model has convolutions, where one
scale per tensor loses the most, and per tensor otherwise; ``per_channel`` overrides.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from workbench.optimize.passes.base import ModelFacts, NotApplicable, Pass

METHODS = ("minmax", "entropy", "percentile")


def run(
    *,
    source: str,
    target: str,
    calibration: Sequence[Mapping[str, Any]],
    per_channel: bool | None = None,
    method: str = "minmax",
    op_types: Sequence[str] | None = None,
    nodes_to_exclude: Sequence[str] = (),
    external: bool = False,
) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[Mapping[str, Any]] = iter(calibration)

        def get_next(self) -> dict[str, Any] | None:
            return dict(next(self.batches, None) or {}) or None

    graph = onnx.load(source, load_external_data=False).graph
    if per_channel is None:
        per_channel = any(node.op_type in ("Conv", "ConvTranspose") for node in graph.node)
    quantize_static(
        source,
        target,
        Batches(),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method={
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[method],
        op_types_to_quantize=list(op_types) if op_types else None,
        nodes_to_exclude=list(nodes_to_exclude) or None,
        use_external_data_format=external,
    )
    result = onnx.load(target, load_external_data=False).graph
    pairs = sum(node.op_type == "QuantizeLinear" for node in result.node)
    if not pairs:
        raise NotApplicable("ONNX Runtime's static quantizer found no operator to quantize")
    return {
        "per_channel": per_channel,
        "method": method,
        "quantize_nodes": pairs,
        "calibration_batches": len(calibration),
    }


def _check(facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
    reasons = [
        (facts.quantized, "the model is quantized already"),
        (
            facts.machine_layout,
            "the graph holds ONNX Runtime's CPU-specific layouts (from ort-all), which the "
            "quantizer cannot read; quantize first, or chain after ort-extended",
        ),
        (facts.half, "the weights are float16; int8 quantization starts from a float32 model"),
        (
            not facts.float_inputs and not facts.float_weights,
            "the model computes no float32 tensors: nothing to quantize",
        ),
        (
            not options.get("calibration"),
            "int8-static needs calibration data: pass data=... (a few hundred samples)",
        ),
        (
            options.get("method", "minmax") not in METHODS,
            f"the calibration method must be one of {', '.join(METHODS)}",
        ),
    ]
    return next((reason for applies, reason in reasons if applies), None)


PASSES = [
    Pass(
        name="int8-static",
        precision="int8",
        tool="onnxruntime quantize_static (QDQ)",
        function=f"{__name__}:run",
        summary="int8 weights and activations, ranges calibrated on the data given (QDQ)",
        check=_check,
        needs_data=True,
    )
]
