"""The verbs a user calls: export, load, inspect, benchmark, runtimes.

They compose the layers below; the notebook magics and the command line call these and nothing
deeper.
"""

from __future__ import annotations

import itertools
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._session import scratch_dir
from workbench.artifact import Artifact, Provenance, artifact_from_proto, check_external_data, load
from workbench.errors import ExportError, WorkbenchWarning
from workbench.export.parity import ParityReport, compare_outputs
from workbench.study import benchmark

if TYPE_CHECKING:
    import numpy as np

    from workbench.export.pytorch import ExampleInputs
    from workbench.inspect.summary import Summary

__all__ = ["RuntimeList", "RuntimeStatus", "benchmark", "export", "inspect", "load", "runtimes"]

log = logging.getLogger(__name__)
_counter = itertools.count(1)


def export(
    model: Any,
    example_inputs: Any,
    path: str | os.PathLike[str] | None = None,
    *,
    dynamic_batch: bool = True,
    opset: int | None = None,
    tolerances: dict[str, tuple[float, float]] | None = None,
) -> Artifact:
    """Export a ``torch.nn.Module`` to ONNX and check the file against PyTorch.

    The dynamo exporter is tried first, then the TorchScript exporter. Right after export,
    PyTorch and ONNX Runtime (in a worker process) run the example inputs, and a second batch
    size when the batch is dynamic; ``artifact.parity`` holds the per-output errors. A failed
    parity is reported by a warning and on the artifact, never by an exception.
    """
    from workbench.export import pytorch

    if not _is_module(model):
        raise ExportError(
            f"export() takes a torch.nn.Module; got a {type(model).__name__}. For a model file "
            "made elsewhere use workbench.load(path)."
        )
    inputs = pytorch.normalize_inputs(model, example_inputs)
    target = _target_path(model, path)
    with pytorch.eval_mode(model):
        pytorch.run_eager(model, inputs)
        outcome = pytorch.export_to_file(
            model, inputs, target, dynamic_batch=dynamic_batch, opset=opset
        )
        artifact = _describe(target, outcome, dynamic_batch, opset)
        feeds = _parity_feeds(inputs, dynamic_batch)
        report = _check_parity(model, artifact, inputs, feeds, tolerances)
    artifact = artifact.replace(parity=report)
    object.__setattr__(artifact, "_framework_model", model)
    object.__setattr__(artifact, "_example_feeds", feeds[0])
    object.__setattr__(artifact, "_keyword_inputs", tuple(inputs.kwargs))
    log.info(
        "exported %s with the %s exporter to %s; %s",
        type(model).__name__,
        outcome.exporter,
        target,
        report.summary,
    )
    if not report.ok:
        warnings.warn(f"{type(model).__name__}: {report.summary}", WorkbenchWarning, stacklevel=2)
    return artifact


def inspect(target: Artifact | str | os.PathLike[str], **options: Any) -> Summary:
    """Op histogram, parameters, FLOPs per sample, IO signature and graph of a model."""
    from workbench.inspect import inspect as inspect_model

    return inspect_model(target, **options)


def _is_module(value: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def _target_path(model: Any, path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        return Path(scratch_dir()) / f"{type(model).__name__}-{next(_counter)}.onnx"
    target = Path(path).expanduser().absolute()
    if target.is_dir():
        raise ExportError(
            f"{target} is a folder; export() needs a file path such as "
            f"{target / (type(model).__name__ + '.onnx')}."
        )
    return target


def _describe(target: Path, outcome: Any, dynamic_batch: bool, opset: int | None) -> Artifact:
    import importlib.metadata

    from workbench.artifact import read_graph

    proto = read_graph(target)
    versions = {}
    for package in ("torch", "onnx", "onnxscript"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    provenance = Provenance(
        tool="workbench.export",
        exporter=outcome.exporter,
        fallback_reason=outcome.fallback_reason,
        options={"dynamic_batch": dynamic_batch, "opset": opset},
        versions=versions,
    )
    return artifact_from_proto(proto, target, check_external_data(proto, target), provenance)


def _parity_feeds(inputs: ExampleInputs, dynamic_batch: bool) -> list[dict[str, np.ndarray]]:
    """The example inputs, plus a second batch size when the batch is dynamic."""
    import numpy as np

    first = {
        name: t.detach().cpu().numpy() for name, t in zip(inputs.names, inputs.tensors, strict=True)
    }
    if not dynamic_batch or any(value.ndim == 0 for value in first.values()):
        return [first]
    generator = np.random.default_rng(0)
    second = {}
    for name, value in first.items():
        rows = value[np.arange(value.shape[0] + 2) % value.shape[0]]
        if value.dtype.kind == "f":
            # Perturbed rows: identical copies would hide an output that mixes the batch.
            noise = generator.standard_normal(rows.shape) * (float(value.std()) or 1.0) * 0.1
            rows = (rows + noise).astype(value.dtype)
        second[name] = np.ascontiguousarray(rows)
    return [first, second]


def _check_parity(
    model: Any,
    artifact: Artifact,
    inputs: ExampleInputs,
    feeds: list[dict[str, np.ndarray]],
    tolerances: dict[str, tuple[float, float]] | None,
) -> ParityReport:
    import torch

    from workbench.bench.process import WorkerDiedError, WorkerFailedError
    from workbench.executors.local import run_in_worker
    from workbench.runtimes import ModelRef, RuntimeConfig, get
    from workbench.runtimes.torch_eager import flatten_outputs

    names = [spec.name for spec in artifact.outputs]
    try:
        candidates = run_in_worker(
            get("onnxruntime"), RuntimeConfig("onnxruntime"), ModelRef(artifact), feeds
        )
    except (WorkerDiedError, WorkerFailedError) as failure:
        return ParityReport(
            "torch",
            "onnxruntime",
            error=f"ONNX Runtime could not run the exported model: {failure}",
        )
    rows = []
    keywords = set(inputs.kwargs)
    for feed, candidate in zip(feeds, candidates, strict=True):
        args = [torch.from_numpy(v) for k, v in feed.items() if k not in keywords]
        kwargs = {k: torch.from_numpy(v) for k, v in feed.items() if k in keywords}
        with torch.inference_mode():
            expected = [t.numpy() for t in flatten_outputs(model(*args, **kwargs))]
        batch = next(iter(feed.values())).shape[0] if feed else None
        rows += compare_outputs(names, expected, candidate, batch_size=batch, tolerances=tolerances)
    return ParityReport("torch", "onnxruntime", tuple(rows))


@dataclass(frozen=True)
class RuntimeStatus:
    """One row of :func:`runtimes`: what the engine is, whether it runs here, and if not why."""

    name: str
    description: str
    available: bool
    version: str
    reason: str
    install: str
    details: dict[str, Any]


class RuntimeList(list):
    """The known runtimes, available or not."""

    _HEADERS = ("runtime", "available", "version", "providers / devices", "note")

    def _rows(self) -> list[tuple[str, ...]]:
        rows = []
        for item in self:
            offers = item.details.get("providers") or item.details.get("devices") or []
            note = "" if item.available else f"{item.reason}; {item.install}".strip("; ")
            rows.append(
                (
                    item.name,
                    "yes" if item.available else "no",
                    item.version or "-",
                    ", ".join(offers),
                    note,
                )
            )
        return rows

    def __str__(self) -> str:
        from workbench._html import text_table

        return text_table(self._HEADERS, self._rows())

    def _repr_html_(self) -> str:
        from workbench._html import STYLE, table

        return STYLE + table(self._HEADERS, self._rows())


def runtimes(probe: bool = True) -> RuntimeList:
    """Every known runtime with its availability, version, and providers or devices.

    With ``probe`` the engines are imported in a worker process (never in this one), so the
    providers and devices are real; without it only installed packages are looked up.
    """
    from workbench.executors.local import probe_in_worker
    from workbench.runtimes import registry

    table = registry()
    quick = {name: runtime.available() for name, runtime in table.items()}
    deep = {}
    if probe:
        deep = probe_in_worker([table[name] for name, found in quick.items() if found.ok])
    listing = RuntimeList()
    for name, runtime in table.items():
        found = deep.get(name, quick[name])
        listing.append(
            RuntimeStatus(
                name,
                runtime.description,
                found.ok,
                found.version,
                found.reason,
                found.install or runtime.install,
                dict(found.details),
            )
        )
    return listing
