"""optimize(): make variants by chains of passes, each in a worker, and guard their accuracy.

Every pass runs in a worker process, so a tool that crashes or hangs on a model costs that
variant, never the session. Variants are written beside the model, in ``<name>.variants/``, with
a small JSON file each that records the parent, the pass, its options and the tool versions; a
second call with the same parent and options reuses the file instead of making it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.artifact import Artifact, Provenance, load, read_graph
from workbench.bench.process import WorkerDiedError, WorkerFailedError, WorkerProcess
from workbench.errors import InputError, ModelFileError
from workbench.optimize import data as data_module
from workbench.optimize import metrics as metrics_module
from workbench.optimize.passes import ModelFacts, Pass, parse_chain
from workbench.optimize.variant import Guard, Variant, Variants

if TYPE_CHECKING:
    import numpy as np

    from workbench.store.sqlite import Store

log = logging.getLogger(__name__)

DEFAULT_CHAINS = (
    "ort-extended",
    "ort-all",
    "slim",
    "fusion",
    "fp16",
    "int8-dynamic",
    "int8-static",
)
GUARD_FLOORS: dict[str, float] = {"fp16": 0.99, "int8": 0.9}
"""fp32 passes must stay within the float32 tolerance of export parity. fp16 and int8 change the
arithmetic, so their error statistics are reported and the task metric judges them; the guard
rejects them only below this cosine similarity with the parent's outputs, where the outputs no
longer resemble the parent's at all. A rejected variant is kept for inspection, never
recommended."""
_SIDECAR_VERSION = 1


def optimize(
    target: Any,
    passes: Sequence[str] | str | None = None,
    *,
    example_inputs: Any = None,
    data: Any = None,
    labels: Any = None,
    metric: str | Callable[..., float] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    timeout_s: float = 600.0,
    progress: bool = True,
) -> Variants:
    """Make a variant for each chain of passes and check it against its parent.

    ``target`` is an Artifact, an .onnx path, or a ``torch.nn.Module`` with ``example_inputs``.
    ``passes`` lists chains such as ``"ort-all"`` or ``"ort-all+int8-dynamic"`` (default: every
    pass on its own). ``data`` (and ``labels``) are samples of the task: they calibrate
    ``int8-static``, feed the guard, and give each variant its task ``metric`` (``accuracy``
    with labels, ``agreement`` or ``cosine`` against the fp32 outputs, or a callable
    ``metric(outputs, labels)``) and its drop from fp32. ``options`` gives options per pass,
    such as ``{"int8-static": {"per_channel": True}}``. A pass that does not apply is skipped with
    its reason; one that fails or crashes is recorded as failed. The model as given comes
    first, as the variant ``fp32``.
    """
    from tqdm.auto import tqdm

    from workbench.study import _resolve_target

    artifact = _resolve_target(target, example_inputs)
    chains = _chains(passes)
    pass_options = _options(options, {step.name for chain in chains for step in chain})
    samples = data_module.dataset(artifact, data, labels)
    root = Variant("fp32", (), "fp32", "ok", artifact)
    folder = (
        Path(out_dir)
        if out_dir is not None
        else artifact.path.parent / (artifact.name + ".variants")
    )
    made: dict[str, Variant] = {"fp32": root}
    steps = [chain[: index + 1] for chain in chains for index in range(len(chain))]
    steps = list(dict.fromkeys(steps))
    bar = tqdm(total=len(steps) + 1, desc="optimize", disable=not progress, leave=False)
    maker = _Maker(folder, samples, timeout_s)
    try:
        # The model as given runs first, and the metric is tried on it, so that data the model
        # cannot take or a metric that fails is said before any pass runs.
        reference = _Reference.of(root, samples, metric, maker)
        for step in steps:
            name = "+".join(p.name for p in step)
            bar.set_postfix_str(name)
            parent = made["+".join(p.name for p in step[:-1]) or "fp32"]
            made[name] = maker.make(parent, step[-1], pass_options.get(step[-1].name, {}))
            bar.update()
        bar.set_postfix_str("checking accuracy")
        variants = Variants(made.values())
        checked = _check_all(variants, samples, reference, maker)
        bar.update()
    finally:
        maker.close()
        bar.close()
    if store is not None:
        _record(checked, store)
    return checked


def _chains(passes: Sequence[str] | str | None) -> list[tuple[Pass, ...]]:
    listed = DEFAULT_CHAINS if passes is None else [passes] if isinstance(passes, str) else passes
    chains = [parse_chain(chain) for chain in listed]
    return [chain for chain in dict.fromkeys(chains) if chain]


def _options(
    options: Mapping[str, Mapping[str, Any]] | None, used: set[str]
) -> dict[str, dict[str, Any]]:
    from workbench.optimize.passes import get

    found = {}
    for name, given in (options or {}).items():
        step = get(name)  # an unknown pass name is one clear sentence
        if not isinstance(given, Mapping):
            raise InputError(
                f"options[{name!r}] must be a dict of option to value, such as "
                f"{{'per_channel': True}}; got {given!r}."
            )
        if name not in used:
            raise InputError(
                f"options were given for the pass {name!r}, which no chain uses; the chains use "
                f"{', '.join(sorted(used)) or 'no pass'}."
            )
        accepted = _accepted_options(step)
        unknown = [key for key in given if accepted is not None and key not in accepted]
        if unknown:
            raise InputError(
                f"The pass {name!r} has no option {unknown[0]!r}; its options are "
                f"{', '.join(sorted(accepted or ())) or 'none'}."
            )
        found[name] = dict(given)
    return found


_SET_BY_THE_LAB = ("source", "target", "external")


def _accepted_options(step: Pass) -> set[str] | None:
    """The options a pass's function takes, or None when it takes any (``**options``)."""
    import importlib
    import inspect

    module, _, function = step.function.partition(":")
    try:
        parameters = inspect.signature(getattr(importlib.import_module(module), function))
    except (ImportError, AttributeError, ValueError, TypeError):
        return None  # the worker that calls it reports why it cannot
    names = set()
    for parameter in parameters.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            return None
        if parameter.kind is not parameter.VAR_POSITIONAL:
            names.add(parameter.name)
    return names - set(_SET_BY_THE_LAB)


@dataclass
class _Maker:
    """Runs passes in one worker process, replaced after a crash, with a cache on disk."""

    folder: Path
    samples: data_module.Dataset
    timeout_s: float
    worker: WorkerProcess | None = None
    outputs: dict[str, list[np.ndarray] | str] = field(default_factory=dict)

    def make(
        self, parent: Variant, step: Pass, given: Mapping[str, Any], name: str | None = None
    ) -> Variant:
        """The variant ``step`` makes from ``parent``, named after its chain unless ``name``."""
        name = name or (step.name if parent.name == "fp32" else f"{parent.name}+{step.name}")
        passes = (*parent.passes, step.name)
        precision = _lower(parent.precision, step.precision)
        engines = _engines(parent.engines, step.engines)
        base = {"name": name, "passes": passes, "precision": precision, "parent": parent}
        if parent.artifact is None or parent.status in ("skipped", "failed"):
            reason = f"its parent {parent.name} was {parent.status}"
            return Variant(status="skipped", reason=reason, engines=engines, **base)
        options = {**step.defaults, **given}
        if step.needs_data and self.samples.from_user:
            options.setdefault("calibration", self.samples.head(data_module.CALIBRATION_SAMPLES))
        facts = ModelFacts.of(read_graph(parent.artifact.path), parent.artifact)
        skip = step.skip_reason(facts, options)
        if skip:
            return Variant(status="skipped", reason=skip, engines=engines, **base)
        started = time.perf_counter()
        outcome = self._made(parent.artifact, step, name, options, facts.external_data)
        made_s = time.perf_counter() - started
        if not isinstance(outcome[0], Artifact):
            status, reason = outcome
            return Variant(status=status, reason=reason, engines=engines, made_s=made_s, **base)
        artifact, info = outcome
        return Variant(
            status="ok", artifact=artifact, info=info, engines=engines, made_s=made_s, **base
        )

    def _made(
        self, parent: Artifact, step: Pass, name: str, options: dict[str, Any], external: bool
    ) -> tuple[Artifact, dict[str, Any]] | tuple[str, str]:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.onnx"
        key = _cache_key(parent, step, options)
        cached = _cached(path, key)
        if cached is not None:
            log.info("reusing %s, made earlier from the same parent and options", path)
            return cached
        staging = Path(tempfile.mkdtemp(prefix=".workbench-optimize-", dir=self.folder))
        staged = staging / path.name
        try:
            info = self._call(
                step.function,
                source=str(parent.path),
                target=str(staged),
                external=external,
                **options,
            )
            if isinstance(info, tuple):
                return info
            for produced in sorted(staging.iterdir(), key=lambda item: item == staged):
                os.replace(produced, self.folder / produced.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        try:
            made = load(path)
        except ModelFileError as error:
            return ("failed", f"{step.tool} wrote a model that cannot be read: {error}")
        provenance = Provenance(
            tool="workbench.optimize",
            options={"pass": step.name, "chain": name, **_plain(options)},
            versions={k: str(v) for k, v in info.items() if k in ("onnxruntime", "onnxslim")},
        )
        artifact = made.replace(parent=parent.sha256, step=step.name, provenance=provenance)
        _write_sidecar(path, key, artifact, info)
        return artifact, info

    def _call(self, function: str, **kwargs: Any) -> Any:
        if self.worker is None or not self.worker.alive:
            self.worker = WorkerProcess("optimize", None, None)
        try:
            return self.worker.request("call", self.timeout_s, function=function, kwargs=kwargs)
        except WorkerFailedError as failure:
            if failure.kind == "not-applicable":
                return ("skipped", failure.message)
            return ("failed", f"{_tool_of(function)} failed: {failure.message}")
        except WorkerDiedError as death:
            self.worker.kill()
            self.worker = None
            return ("failed", f"the tool {death.cause}")

    def run_model(self, variant: Variant) -> list[np.ndarray] | str:
        """The variant's outputs on every batch of the data, or why they could not be had."""
        if variant.name in self.outputs:
            return self.outputs[variant.name]
        assert variant.artifact is not None
        result = self._call(
            "workbench.optimize.lab:outputs_on",
            path=str(variant.artifact.path),
            batches=list(self.samples.batches),
        )
        if isinstance(result, tuple):
            result = result[1]  # "running the model failed: ..." or why it could not
        self.outputs[variant.name] = result
        return result

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def _tool_of(function: str) -> str:
    from workbench.optimize.passes import PASSES

    for step in PASSES.values():
        if step.function == function:
            return step.tool
    return "running the model"


_FLOAT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
}


def outputs_on(path: str, batches: list[dict[str, Any]]) -> list[Any]:
    """In a worker: run the model with ONNX Runtime's CPU provider on each batch, joined."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    # A variant made with float16 inputs (fp16 with keep_io_types=False) takes the same data.
    wanted = {
        item.name: _FLOAT_TYPES[item.type]
        for item in session.get_inputs()
        if item.type in _FLOAT_TYPES
    }
    runs = [
        session.run(
            None,
            {
                name: value.astype(wanted[name])
                if name in wanted and value.dtype != wanted[name] and value.dtype.kind == "f"
                else value
                for name, value in batch.items()
            },
        )
        for batch in batches
    ]
    joined = []
    for index in range(len(runs[0])):
        parts = [np.asarray(run[index]) for run in runs]
        joined.append(np.concatenate(parts) if parts[0].ndim else parts[0])
    return joined


@dataclass(frozen=True)
class _Reference:
    """The model as given on the data: its outputs, the task metric and its score."""

    outputs: list[np.ndarray]
    scorer: metrics_module.Metric | None
    score: float

    @classmethod
    def of(
        cls,
        root: Variant,
        samples: data_module.Dataset,
        metric: str | Callable[..., float] | None,
        maker: _Maker,
    ) -> _Reference:
        outputs = maker.run_model(root)
        if isinstance(outputs, str):
            raise InputError(
                f"The model {root.name} could not run on the data given, so no variant can be "
                f"checked: {outputs}"
            )
        if not samples.from_user:
            return cls(outputs, None, math.nan)
        scorer = metrics_module.resolve(metric, samples.labels, outputs)
        return cls(outputs, scorer, scorer.function(outputs, samples.labels, outputs))


def _check_all(
    variants: Variants,
    samples: data_module.Dataset,
    reference: _Reference,
    maker: _Maker,
) -> Variants:
    root = variants[0]
    names = [spec.name for spec in root.artifact.outputs] if root.artifact else []
    scorer = reference.scorer
    guard_rows = _guard_rows(samples)
    checked: dict[str, Variant] = {}
    for variant in variants:
        parent = checked.get(variant.parent.name) if variant.parent else None
        updates: dict[str, Any] = {"parent": parent}
        if variant.status == "ok":
            outputs = maker.run_model(variant)
            parent_outputs = maker.run_model(variant.parent) if variant.parent else None
            if isinstance(outputs, str):
                updates.update(status="failed", reason=outputs)
            else:
                if variant.parent is not None and not isinstance(parent_outputs, str):
                    updates["guard"] = _guard(variant, names, parent_outputs, outputs, guard_rows)
                    if not updates["guard"].ok:
                        updates["status"] = "rejected"
                if parent is not None and parent.status == "rejected":
                    # Faithful to a parent that is not faithful is not faithful.
                    updates.update(
                        status="rejected", reason=f"its parent {parent.name} was rejected"
                    )
                if scorer is not None:
                    value = scorer.function(outputs, samples.labels, reference.outputs)
                    updates.update(
                        metric_name=scorer.name, metric=value, drop=reference.score - value
                    )
        checked[variant.name] = _replace(variant, **updates)
    return Variants(checked.values())


def _guard_rows(samples: data_module.Dataset) -> int:
    return sum(data_module._rows(batch) for batch in samples.head(data_module.GUARD_SAMPLES))


def _guard(
    variant: Variant,
    names: list[str],
    expected: list[np.ndarray],
    actual: list[np.ndarray],
    rows: int,
) -> Guard:
    head = [_first(array, rows) for array in expected]
    got = [_first(array, rows) for array in actual]
    errors = metrics_module.error_stats(names, head, got)
    step_precision = _step_precision(variant)
    if step_precision == "fp32":
        rule = "the float32 tolerance |Δ| ≤ 1e-4 + 1e-3·|expected|"
        ok = errors.within_tolerance
    else:
        floor = GUARD_FLOORS[step_precision]
        rule = f"the {step_precision} floor cosine ≥ {floor:g}"
        ok = errors.cosine >= floor
    return Guard(
        against=variant.parent.name if variant.parent else "",
        precision=step_precision,
        ok=ok,
        rule=rule,
        errors=errors,
    )


def _step_precision(variant: Variant) -> str:
    from workbench.optimize.passes import get

    return get(variant.passes[-1]).precision


def _first(array: np.ndarray, rows: int) -> np.ndarray:
    return array[:rows] if getattr(array, "ndim", 0) else array


def _replace(variant: Variant, **changes: Any) -> Variant:
    import dataclasses

    return dataclasses.replace(variant, **changes)


def _lower(first: str, second: str) -> str:
    order = ("fp32", "fp16", "int8")
    return max(first, second, key=order.index)


def _engines(
    first: tuple[str, ...] | None, second: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    if first is None:
        return second
    if second is None:
        return first
    return tuple(name for name in first if name in second)


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options as they go into provenance: calibration data by its size, never its values."""
    shown = {}
    for key, value in options.items():
        if key == "calibration":
            shown["calibration_batches"] = len(value)
        elif key != "external":
            plain = isinstance(value, str | int | float | bool | None)
            shown[key] = value if plain else repr(value)
    return shown


def _cache_key(parent: Artifact, step: Pass, options: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{_SIDECAR_VERSION}\0{parent.sha256}\0{step.name}\0{step.function}".encode())
    for key in sorted(options):
        value = options[key]
        if key == "calibration":
            for batch in value:
                for name in sorted(batch):
                    digest.update(name.encode())
                    digest.update(batch[name].tobytes())
        else:
            digest.update(f"\0{key}={value!r}".encode())
    digest.update(_tool_versions().encode())
    return digest.hexdigest()


def _tool_versions() -> str:
    from importlib import metadata

    found = []
    for package in ("onnxruntime", "onnxslim", "onnx"):
        try:
            found.append(f"{package}={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package}=none")
    return ",".join(found)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".lineage.json")


def _write_sidecar(path: Path, key: str, artifact: Artifact, info: dict[str, Any]) -> None:
    record = {
        "key": key,
        "sha256": artifact.sha256,
        "parent": artifact.parent,
        "step": artifact.step,
        "provenance": artifact.provenance.options,
        "versions": artifact.provenance.versions,
        "info": info,
    }
    _sidecar(path).write_text(json.dumps(record, indent=1, default=str))


def _cached(path: Path, key: str) -> tuple[Artifact, dict[str, Any]] | None:
    try:
        record = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key or not path.is_file():
        return None
    try:
        made = load(path)
    except ModelFileError:
        return None
    if made.sha256 != record.get("sha256"):
        return None  # the file was changed since it was made
    provenance = Provenance(
        tool="workbench.optimize",
        options=record.get("provenance", {}),
        versions=record.get("versions", {}),
    )
    artifact = made.replace(parent=record["parent"], step=record["step"], provenance=provenance)
    return artifact, record.get("info", {})


def lineage(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The recorded steps that made a variant file, oldest first, from the files beside it.

    Each step's parent is followed only while its record is the one the step was made from
    (same sha256); where a parent file was made again since, the walk stops there and the
    oldest step returned says so under ``"lineage_note"``.
    """
    chain: list[dict[str, Any]] = []
    current: Path | None = Path(path)
    expected: str | None = None
    while current is not None:
        try:
            record = json.loads(_sidecar(current).read_text())
        except (OSError, ValueError):
            break
        if expected is not None and record.get("sha256") != expected:
            chain[-1]["lineage_note"] = (
                f"{current.name} was made again since this step was made from it, so the steps "
                "before are not known"
            )
            break
        chain.append(record)
        expected = record.get("parent")
        parent_chain = record.get("provenance", {}).get("chain", "")
        head = parent_chain.rsplit("+", 1)[0] if "+" in parent_chain else ""
        current = current.with_name(f"{head}.onnx") if head else None
    return chain[::-1]


def _record(variants: Variants, store: Store | str | os.PathLike[str]) -> None:
    from workbench.store.sqlite import Store, open_store

    handle = store if isinstance(store, Store) else open_store(store)
    try:
        for variant in variants:
            if variant.artifact is not None:
                handle.record_artifact(variant.artifact)
    finally:
        if handle is not store:
            handle.close()
