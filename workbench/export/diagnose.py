"""Turn exporter failures into one sentence that names the operator and what to try."""

from __future__ import annotations

import re

_OPERATOR_PATTERNS = (
    re.compile(r"Exporting the operator '([\w:.]+)' to ONNX opset version (\d+)"),
    re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)'"),
    re.compile(r"Unsupported FX nodes: \{[^}]*?'([\w.]+)'"),
)
_LOCATION_PATTERNS = (
    re.compile(r"Error when translating node %(\w+)"),
    re.compile(r"scope: ([\w.:]+)"),
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SUMMARY = "## Exception summary"
_CLASS = re.compile(r"^<class '(?:[\w]+\.)*(\w+)'>:")


def first_line(exc: BaseException) -> str:
    """The first meaningful line of an exception message, without colour codes.

    The dynamo exporter opens every message with the same "step n/3, next steps" text and puts
    the cause under "## Exception summary"; that cause is the meaningful line there.
    """
    text = _ANSI.sub("", str(exc))
    _, marker, summary = text.partition(_SUMMARY)
    for line in (summary if marker else text).splitlines():
        if line.strip():
            return _CLASS.sub(r"\1:", line.strip())[:300]
    return type(exc).__name__


def unsupported_operator(text: str) -> str | None:
    for pattern in _OPERATOR_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).replace("::", ".").replace("aten.", "aten::")
    return None


def operator_location(text: str) -> str | None:
    for pattern in _LOCATION_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).rstrip(":")
    return None


def explain_failure(
    model_name: str, opset: int | None, dynamo_error: BaseException, script_error: BaseException
) -> str:
    """One message for the case where both exporters failed."""
    text = _ANSI.sub("", f"{dynamo_error}\n{script_error}")
    operator = unsupported_operator(text)
    opset_text = f"opset {opset}" if opset else "the default opset"
    if operator is None:
        return (
            f"PyTorch could not export {model_name} to ONNX with either exporter. The dynamo "
            f"exporter said {type(dynamo_error).__name__}: {first_line(dynamo_error)}; the "
            f"TorchScript exporter said {type(script_error).__name__}: {first_line(script_error)}."
            " Try another opset (opset=...), or simplify the failing part of forward()."
        )
    where = operator_location(text)
    place = f" (in {where})" if where else ""
    return (
        f"PyTorch could not export {model_name} to ONNX: the operator {operator}{place} has no "
        f"ONNX translation at {opset_text} in either exporter. Try another opset (opset=...), "
        "register a custom translation (torch.onnx.register_custom_op_symbolic for the "
        "TorchScript exporter, custom_translation_table for the dynamo exporter), or replace "
        f"that operation with supported ones. The dynamo exporter said: {first_line(dynamo_error)}"
    )
