"""ONNX Runtime with one execution provider, never silently another."""

from __future__ import annotations

import os
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
        profile_folder = config.option("profile")
        if profile_folder:
            _enable_profiling(options, profile_folder, provider)
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
        return _OrtSession(session, provider, threads, onnxruntime.__version__, profile_folder)


def _level(onnxruntime: Any, name: str | None) -> Any:
    levels = onnxruntime.GraphOptimizationLevel
    return {
        "disable": levels.ORT_DISABLE_ALL,
        "basic": levels.ORT_ENABLE_BASIC,
        "extended": levels.ORT_ENABLE_EXTENDED,
        "layout": getattr(levels, "ORT_ENABLE_LAYOUT", levels.ORT_ENABLE_EXTENDED),
        "all": levels.ORT_ENABLE_ALL,
    }[name or "all"]


def _enable_profiling(options: Any, folder: str, provider: str) -> None:
    """Write the trace, and the graph as optimized, into the folder the caller cleans up."""
    options.enable_profiling = True
    options.profile_file_prefix = os.path.join(folder, "onnxruntime-trace")
    # NOTE: the optimized graph tells which original nodes a fused node replaced. Providers that
    # compile subgraphs (TensorRT, OpenVINO, ...) cannot save it, so only these two try.
    # TODO: saving the optimized graph writes a copy of the weights as well, so a profile of a
    # very large model needs that much free space in the temporary folder while it runs.
    if provider in ("CPUExecutionProvider", "CUDAExecutionProvider"):
        options.optimized_model_filepath = os.path.join(folder, "optimized.onnx")
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", "optimized.onnx.data"
        )


class _OrtSession(Session):
    def __init__(
        self,
        session: Any,
        provider: str,
        threads: int | None,
        version: str,
        profile_folder: str | None = None,
    ) -> None:
        self._session = session
        self._profile_folder = profile_folder
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

    def profile(
        self, feeds: Mapping[str, np.ndarray], runs: int, warmup_runs: int = 3
    ) -> dict[str, Any]:
        """Time every node over ``runs`` runs after the warm-up; needs a ``profile`` option.

        Returns ``statistic`` ("median"), ``run_ms`` (a whole run) and ``layers``: one dict per
        node as the engine ran it, with ``name``, ``op_type``, ``provider``, ``ms`` (its time
        in one run), ``origins`` and, when the optimized graph was saved, ``inputs``, ``outputs``
        and ``aliases``.
        """
        import statistics

        require(
            self._profile_folder is not None,
            "this onnxruntime session was loaded without the profile option, or has already "
            "ended its one profile; load it again with the option.",
        )
        own = self._own(feeds)
        for _ in range(warmup_runs + runs):
            self._session.run(None, own)
        run_us, found = _read_trace(self._session.end_profiling(), runs)
        folder, self._profile_folder = str(self._profile_folder), None

        # NOTE: the median per run, because one stall of the machine in one node of one run
        # would otherwise outweigh the whole model on small graphs.
        wiring = _optimized_wiring(os.path.join(folder, "optimized.onnx"))
        layers = []
        for entry in found.values():
            per_run_us = entry.pop("per_run_us")
            wired = wiring.get(entry["name"], {})
            layers.append(
                {**entry, "ms": statistics.median(per_run_us) / 1000, "origins": [], **wired}
            )
        return {"statistic": "median", "run_ms": statistics.median(run_us) / 1000, "layers": layers}


def _read_trace(path: str, runs: int) -> tuple[list[int], dict[str, dict[str, Any]]]:
    """Durations of the last ``runs`` runs in a trace, and each node's time in each of them."""
    import bisect
    import json

    with open(path) as handle:
        events = json.load(handle)
    windows = sorted((e["ts"], e["dur"]) for e in events if e.get("name") == "model_run")[-runs:]
    starts = [start for start, _ in windows]
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        index = bisect.bisect_right(starts, event["ts"]) - 1
        if index < 0 or event["ts"] > starts[index] + windows[index][1]:
            continue  # a warm-up run
        node = name.removesuffix("_kernel_time")
        args = event.get("args", {})
        entry = found.setdefault(
            node,
            {
                "name": node,
                "op_type": args.get("op_name", ""),
                "provider": args.get("provider", ""),
                "per_run_us": [0] * len(windows),
            },
        )
        entry["per_run_us"][index] += event["dur"]
    return [duration for _, duration in windows] or [0], found


def _optimized_wiring(path: str) -> dict[str, dict[str, list[str]]]:
    """Input and output tensors of each node of the optimized graph, if it was saved.

    ``aliases`` names the tensor of the original graph that a node computes in another memory
    layout: the NCHWc transformer names such a node after that tensor plus ``_nchwc``.
    """
    if not os.path.exists(path):
        return {}
    import onnx

    from workbench.inspect.graph import walk_graphs

    graph = onnx.load(path, load_external_data=False).graph
    return {
        node.name: {
            "inputs": list(node.input),
            "outputs": list(node.output),
            "aliases": [node.name.removesuffix("_nchwc")]
            if node.domain == "com.microsoft.nchwc" and node.name.endswith("_nchwc")
            else [],
        }
        for each in walk_graphs(graph)
        for node in each.node
    }
