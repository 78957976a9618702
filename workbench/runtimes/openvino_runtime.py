"""OpenVINO, reading the ONNX file directly, with a latency or throughput hint."""

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

HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
PRECISIONS = ("f32", "bf16", "f16")


class OpenVino(Runtime):
    name = "openvino"
    description = "OpenVINO (options: device, hint=latency|throughput, precision=f32|bf16|f16)"
    module = "openvino"
    distributions = ("openvino",)
    install = "pip install openvino"
    option_names = ("device", "hint", "precision")
    option_choices = {"hint": tuple(HINTS), "precision": PRECISIONS}  # noqa: RUF012 - read-only

    def probe(self) -> Availability:
        import openvino

        return Availability(
            ok=True,
            version=openvino.__version__,
            install=self.install,
            details={"devices": openvino.Core().available_devices},
        )

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        import openvino

        core = openvino.Core()
        device = (config.option("device", "CPU") or "CPU").upper()
        require(
            device in core.available_devices,
            f"openvino has no device {device} here; the devices available are: "
            f"{', '.join(core.available_devices)}.",
        )
        properties: dict[str, Any] = {
            "PERFORMANCE_HINT": HINTS[config.option("hint", "latency") or "latency"]
        }
        # NOTE: OpenVINO computes in bf16 by default on CPUs that offer it; a plain fp32 model
        # is measured in fp32 unless the user asks for less, so that its outputs stay faithful.
        properties["INFERENCE_PRECISION_HINT"] = config.option("precision", "f32")
        if threads and device == "CPU":
            properties["INFERENCE_NUM_THREADS"] = threads
        compiled = core.compile_model(str(model.artifact.path), device, properties)
        used_threads = compiled.get_property("INFERENCE_NUM_THREADS") if device == "CPU" else None
        return _OpenVinoSession(compiled, device, used_threads, openvino.__version__)


class _OpenVinoSession(Session):
    def __init__(self, compiled: Any, device: str, threads: int | None, version: str) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._precision = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        self._inputs = {port.get_any_name() for port in compiled.inputs}
        self.info = SessionInfo(
            provider=device,
            threads=threads,
            details={
                "openvino": version,
                "hint": str(compiled.get_property("PERFORMANCE_HINT")),
                "precision": self._precision,
            },
        )

    def _own(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value for name, value in feeds.items() if name in self._inputs}

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        results = self._request.infer(self._own(feeds))
        return [np.array(results[port]) for port in self._compiled.outputs]

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        # Each bound feed gets its own request: shared input memory fixes a request's shapes.
        infer, own = self._compiled.create_infer_request().infer, self._own(feeds)
        return lambda: infer(own, share_inputs=True, share_outputs=True)
