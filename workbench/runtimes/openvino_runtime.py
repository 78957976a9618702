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
        profiling = bool(config.option("profile"))
        if profiling:
            properties["PERF_COUNT"] = True
        compiled = core.compile_model(str(model.artifact.path), device, properties)
        used_threads = compiled.get_property("INFERENCE_NUM_THREADS") if device == "CPU" else None
        return _OpenVinoSession(
            compiled, device, used_threads, openvino.__version__, profiling=profiling
        )


class _OpenVinoSession(Session):
    def __init__(
        self,
        compiled: Any,
        device: str,
        threads: int | None,
        version: str,
        *,
        profiling: bool = False,
    ) -> None:
        self._compiled = compiled
        self._profiling = profiling
        self._request = compiled.create_infer_request()
        self._precision = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        # NOTE: a port answers to several tensor names; a converted model's first name may be an
        # internal one (a Cast's output) while the feed uses the graph input's name.
        self._ports = [frozenset(port.get_names()) for port in compiled.inputs]
        self.info = SessionInfo(
            provider=device,
            threads=threads,
            details={
                "openvino": version,
                "hint": str(compiled.get_property("PERFORMANCE_HINT")),
                "precision": self._precision,
            },
        )

    def _own(self, feeds: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
        """The feed of each input port, by port index; a port without one is an error."""
        own = {}
        for index, names in enumerate(self._ports):
            name = next((name for name in sorted(names) if name in feeds), None)
            if name is None:
                raise ValueError(
                    f"no value was given for the model input {' / '.join(sorted(names))}; the "
                    f"feeds hold {', '.join(sorted(feeds)) or 'nothing'}"
                )
            own[index] = feeds[name]
        return own

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        results = self._request.infer(self._own(feeds))
        return [np.array(results[port]) for port in self._compiled.outputs]

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        # Each bound feed gets its own request: shared input memory fixes a request's shapes.
        infer, own = self._compiled.create_infer_request().infer, self._own(feeds)
        return lambda: infer(own, share_inputs=True, share_outputs=True)

    def profile(
        self, feeds: Mapping[str, np.ndarray], runs: int, warmup_runs: int = 3
    ) -> dict[str, Any]:
        """Time every executed layer over ``runs`` runs after the warm-up.

        Needs a ``profile`` option at load, and no run before this one. Returns ``statistic``
        ("mean"), ``run_ms`` (a whole run) and ``layers``: one dict per layer with ``name``,
        ``op_type``, ``provider`` (the primitive that ran it), ``ms`` (its time in one run) and
        ``origins``, the names of the layers of the read model it was made from.
        """
        import time

        require(
            self._profiling,
            "this openvino session was compiled without the profile option, or has already "
            "given its one profile; load it again with the option.",
        )
        self._profiling = False
        own = self._own(feeds)
        for _ in range(warmup_runs):
            self._request.infer(own)
        before = _counters(self._request.get_profiling_info())
        started = time.perf_counter()
        for _ in range(runs):
            self._request.infer(own)
        run_ms = 1000 * (time.perf_counter() - started) / runs
        after = _counters(self._request.get_profiling_info())

        # NOTE: the CPU plugin reports each layer's mean over every inference since compiling,
        # so the measured runs' mean is what the totals grew by. Counts are whole microseconds.
        # TODO: other devices (GPU, NPU) may count differently; only the CPU has been checked.
        origins = _original_names(self._compiled)
        layers = []
        for name, (mean_us, op_type, primitive) in after.items():
            grown = (warmup_runs + runs) * mean_us - warmup_runs * before.get(name, (0.0,))[0]
            layers.append(
                {
                    "name": name,
                    "op_type": op_type,
                    "provider": primitive,
                    "ms": max(0.0, grown / runs / 1000),
                    "origins": origins.get(name, []),
                }
            )
        return {"statistic": "mean", "run_ms": run_ms, "layers": layers}


def _counters(items: list[Any]) -> dict[str, tuple[float, str, str]]:
    """Mean microseconds, layer type and primitive of each layer that ran."""
    import openvino

    executed = openvino.ProfilingInfo.Status.EXECUTED
    return {
        item.node_name: (item.real_time.total_seconds() * 1e6, item.node_type, item.exec_type)
        for item in items
        if item.status == executed  # parameters, results and layers folded into others did not
    }


def _original_names(compiled: Any) -> dict[str, list[str]]:
    """For each layer of the compiled model, the layers of the read model it was made from."""
    found = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "originalLayersNames" in info:
            text = str(info["originalLayersNames"].astype(str))
            found[op.get_friendly_name()] = [name for name in text.split(",") if name]
    return found
