"""ONNX Runtime with one execution provider, never silently another."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.runtimes.base import (
    Availability,
    ModelRef,
    Runtime,
    RuntimeConfig,
    Session,
    SessionInfo,
    require,
)

if TYPE_CHECKING:
    import numpy as np

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dnnl": "DnnlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
}
LEVELS = ("disable", "basic", "extended", "layout", "all")


def provider_name(text: str) -> str:
    """'cuda' or 'CUDAExecutionProvider' both give 'CUDAExecutionProvider'."""
    return PROVIDER_ALIASES.get(text.lower(), text)


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    description = "ONNX Runtime (options: provider, opt)"
    module = "onnxruntime"
    distributions = (
        "onnxruntime",
        "onnxruntime-gpu",
        "onnxruntime-openvino",
        "onnxruntime-directml",
        "onnxruntime-qnn",
    )
    install = "pip install onnxruntime"
    option_names = ("provider", "opt")
    option_choices = {"opt": LEVELS}  # noqa: RUF012 - read-only class table

    def probe(self) -> Availability:
        import onnxruntime

        return Availability(
            ok=True,
            version=onnxruntime.__version__,
            install=self.install,
            details={"providers": onnxruntime.get_available_providers()},
        )

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        import onnxruntime

        provider = provider_name(config.option("provider", "cpu") or "cpu")
        available = onnxruntime.get_available_providers()
        require(
            provider in available,
            f"onnxruntime has no {provider} here; the providers available are: "
            f"{', '.join(available)}.",
        )
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = _level(onnxruntime, config.option("opt", "all"))
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = (
            [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
        )
        session = onnxruntime.InferenceSession(
            str(model.artifact.path), options, providers=providers
        )
        used = session.get_providers()
        # NOTE: onnxruntime quietly drops a provider that fails to initialise; a result on the CPU
        # provider must never be labelled with the provider that was asked for.
        require(
            used and used[0] == provider,
            f"onnxruntime was asked for {provider} but could not start it and would have run "
            f"on {', '.join(used) or 'nothing'}; check the provider's libraries and drivers.",
        )
        return _OrtSession(session, provider, threads, onnxruntime.__version__)


def _level(onnxruntime: Any, name: str | None) -> Any:
    levels = onnxruntime.GraphOptimizationLevel
    return {
        "disable": levels.ORT_DISABLE_ALL,
        "basic": levels.ORT_ENABLE_BASIC,
        "extended": levels.ORT_ENABLE_EXTENDED,
        "layout": getattr(levels, "ORT_ENABLE_LAYOUT", levels.ORT_ENABLE_EXTENDED),
        "all": levels.ORT_ENABLE_ALL,
    }[name or "all"]


class _OrtSession(Session):
    def __init__(self, session: Any, provider: str, threads: int | None, version: str) -> None:
        self._session = session
        self._inputs = {value.name for value in session.get_inputs()}
        self.info = SessionInfo(
            provider=provider,
            threads=threads,
            details={"onnxruntime": version, "providers": session.get_providers()},
        )

    def _own(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value for name, value in feeds.items() if name in self._inputs}

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return list(self._session.run(None, self._own(feeds)))

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        run, own = self._session.run, self._own(feeds)
        return lambda: run(None, own)
