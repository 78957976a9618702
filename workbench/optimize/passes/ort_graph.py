"""ONNX Runtime's offline graph optimization: the optimized graph that a session builds, saved.

At ``all`` the saved graph uses ONNX Runtime's own fused operators and memory layouts chosen for
this machine's CPU, so it runs on ONNX Runtime only, and best on a machine like this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.optimize.passes.base import ModelFacts, Pass

LEVELS = ("basic", "extended", "all")


def run(*, source: str, target: str, level: str, external: bool = False) -> dict[str, Any]:
    import onnxruntime

    levels = onnxruntime.GraphOptimizationLevel
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = {
        "basic": levels.ORT_ENABLE_BASIC,
        "extended": levels.ORT_ENABLE_EXTENDED,
        "all": levels.ORT_ENABLE_ALL,
    }[level]
    options.optimized_model_filepath = target
    options.log_severity_level = 3
    if external:
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", Path(target).name + ".data"
        )
    onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return {"level": level, "onnxruntime": onnxruntime.__version__}


def _check(facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
    if options.get("level") not in LEVELS:
        return f"the level must be one of {', '.join(LEVELS)}, not {options.get('level')!r}"
    return None


def _make(level: str) -> Pass:
    specific = " (this CPU's layouts; ONNX Runtime only)" if level == "all" else ""
    return Pass(
        name=f"ort-{level}",
        precision="fp32",
        tool="onnxruntime graph optimizer",
        function=f"{__name__}:run",
        summary=f"ONNX Runtime graph optimization at level {level}, saved{specific}",
        check=_check,
        defaults={"level": level},
        engines=("onnxruntime",),
    )


PASSES = [_make(level) for level in LEVELS]
