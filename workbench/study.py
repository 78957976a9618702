"""Plan a sweep of cells, run it through an executor, and gather the measurements.

`benchmark` is the one-shot form: every runtime configuration × batch size × thread count, in
isolated worker processes, compared side by side with the reference runtime.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench._session import scratch_dir
from workbench.artifact import Artifact
from workbench.bench.feeds import feeds_for
from workbench.bench.measurement import Cell, Measurement
from workbench.bench.stats import LatencyStats
from workbench.errors import InputError, RuntimeNotAvailableError, WorkbenchError
from workbench.executors.local import LocalExecutor, SweepPlan
from workbench.runtimes import ModelRef, Runtime, RuntimeConfig, registry

if TYPE_CHECKING:
    from workbench.results import Results

log = logging.getLogger(__name__)
REFERENCE_ORDER = ("torch", "onnxruntime")


def benchmark(
    target: Any,
    example_inputs: Any = None,
    *,
    runtimes: Sequence[str | RuntimeConfig] | str | None = None,
    batch_sizes: Iterable[int] = (1,),
    threads: Iterable[int | None] = (None,),
    budget_s: float = 2.0,
    inputs: Any = None,
    dims: Mapping[str, int] | None = None,
    warmup_s: float = 0.2,
    min_rounds: int = 8,
    precision: float = 0.01,
    timeout_s: float = 60.0,
    memory_limit_mb: float | None = None,
    progress: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
    executor: LocalExecutor | None = None,
) -> Results:
    """Measure a model on several runtimes, batch sizes and thread counts.

    ``target`` is an :class:`Artifact`, a path to an .onnx file, or a ``torch.nn.Module`` with
    ``example_inputs`` (it is exported first, with a parity check). ``runtimes`` defaults to
    every available one, except the slow ONNX reference evaluator, which runs when named.
    ``budget_s`` is the measuring time each cell may use at most; a cell stops earlier once the
    95% interval of its median is within ``precision`` of it. A worker that stays silent for
    ``timeout_s`` during a timed round (three times that while loading) is killed and its cell
    recorded as ``timeout``; one whose memory passes ``memory_limit_mb`` (80% of the machine's
    by default) is killed and recorded as ``oom``. ``on_progress`` receives a
    :class:`Progress` after each step, ``on_measurement`` each Measurement as it completes;
    ``executor.cancel()`` from another thread stops the sweep and returns the cells measured so
    far.
    """
    from workbench.results import Results

    artifact = _resolve_target(target, example_inputs)
    framework = getattr(artifact, "_framework_model", None)
    configs, table = _choose_runtimes(runtimes, has_framework=framework is not None)
    batches = _positive_ints("batch_sizes", batch_sizes)
    thread_counts = _thread_counts(threads)
    if isinstance(budget_s, bool) or not isinstance(budget_s, numbers.Real) or not budget_s > 0:
        raise InputError(f"budget_s must be a positive number of seconds; got {budget_s!r}.")
    feeds = feeds_for(artifact, inputs, dims)
    for batch in batches:
        feeds(batch)  # a batch size the model cannot take is refused before any worker starts

    cells = tuple(
        Cell(config, batch, count)
        for config, batch, count in itertools.product(configs, batches, thread_counts)
    )
    plan = SweepPlan(
        cells=cells,
        runtimes=table,
        model=_model_ref(artifact, framework, configs, table),
        feeds=feeds,
        output_names=tuple(spec.name for spec in artifact.outputs),
        reference=_reference(configs),
        budget_s=budget_s,
        min_rounds=min_rounds,
        precision=precision,
        warmup_s=warmup_s,
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb or _default_memory_limit(),
    )
    measurements = run_plan(
        plan, executor or LocalExecutor(), progress, on_progress, on_measurement
    )
    log.info("measured %d cells of %s", len(measurements), artifact.name)
    return Results.from_measurements(measurements, artifact=artifact, reference=plan.reference)


@dataclass(frozen=True)
class Progress:
    """What a running benchmark reports after each step, for progress bars and live plots."""

    phase: str
    fraction: float
    cell: Cell | None = None
    stats: LatencyStats | None = None


def run_plan(
    plan: SweepPlan,
    executor: LocalExecutor,
    progress: bool,
    on_progress: Callable[[Progress], None] | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
) -> list[Measurement]:
    """Run a plan with a progress bar; the measurements come back in the plan's cell order."""
    from tqdm.auto import tqdm

    total = len(plan.cells) * plan.budget_s
    bar = tqdm(
        total=round(total, 1),
        unit="s",
        desc="benchmark",
        disable=not progress,
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
    )
    state = {"phase": "starting workers", "used": 0.0}

    def notify(kind: str, data: Any) -> None:
        cell = stats = None
        if kind == "phase":
            state["phase"] = str(data)
            bar.set_postfix_str(state["phase"])
        elif kind == "measured":
            cell, stats = data
            step = min(plan.round_s, total - state["used"])
            state["used"] += step
            bar.update(round(step, 3))
            bar.set_postfix_str(cell.describe())
        if on_progress is not None:
            fraction = min(1.0, state["used"] / total) if total else 1.0
            on_progress(Progress(str(state["phase"]), fraction, cell, stats))

    found: dict[Cell, Measurement] = {}
    try:
        for measurement in executor.submit(plan, notify):
            found[measurement.cell] = measurement
            if on_measurement is not None:
                on_measurement(measurement)
    finally:
        bar.close()
    if on_progress is not None:
        on_progress(Progress("cancelled" if executor.cancelled else "done", 1.0))
    return [found[cell] for cell in plan.cells if cell in found]


def _resolve_target(target: Any, example_inputs: Any) -> Artifact:
    if isinstance(target, Artifact):
        return target
    if isinstance(target, str | os.PathLike):
        from workbench.artifact import load

        return load(target)
    if _is_torch_module(target):
        if example_inputs is None:
            raise InputError(
                f"Benchmarking the PyTorch model {type(target).__name__} needs example_inputs "
                "(a tensor, a tuple of tensors or a dict), to export it and to feed the runtimes."
            )
        from workbench.api import export

        return export(target, example_inputs)
    raise InputError(
        f"benchmark() takes an Artifact, a path to an .onnx file, or a torch.nn.Module with "
        f"example inputs; got a {type(target).__name__}."
    )


def _is_torch_module(value: Any) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def _choose_runtimes(
    runtimes: Sequence[str | RuntimeConfig] | str | None, *, has_framework: bool
) -> tuple[list[RuntimeConfig], dict[str, Runtime]]:
    table = registry()
    if runtimes is None:
        configs = []
        for name, runtime in table.items():
            available = runtime.available()
            if not available.ok:
                log.warning("skipped runtime %s: %s", name, available.reason)
            elif not runtime.in_default_sweep:
                continue
            elif runtime.needs_framework_model and not has_framework:
                log.info("skipped runtime %s: the framework model is not at hand", name)
            else:
                configs.append(RuntimeConfig(name))
        return configs, table
    requested = [runtimes] if isinstance(runtimes, str | RuntimeConfig) else list(runtimes)
    configs = [RuntimeConfig.parse(item) for item in requested]
    for config in configs:
        _check_config(config, table, has_framework)
    if len({c.label for c in configs}) != len(configs):
        raise InputError(f"The runtime list {[c.label for c in configs]} names one twice.")
    return configs, table


def _check_config(config: RuntimeConfig, table: dict[str, Runtime], has_framework: bool) -> None:
    from workbench.runtimes import get

    runtime = get(config.name)
    available = runtime.available()
    if not available.ok:
        hint = f"; install it with: {available.install}" if available.install else ""
        raise RuntimeNotAvailableError(
            f"The runtime {config.name!r} is not available: {available.reason}{hint}."
        )
    if runtime.needs_framework_model and not has_framework:
        raise InputError(
            f"The runtime {config.name!r} runs the PyTorch model itself, which this artifact does "
            "not carry: benchmark the torch.nn.Module with its example inputs, or an artifact "
            "made by workbench.export in this session."
        )
    runtime.check_options(config)


def _reference(configs: list[RuntimeConfig]) -> str | None:
    for name in REFERENCE_ORDER:
        for config in configs:
            if config.name == name and not config.options:
                return config.label
    return configs[0].label if configs else None


def _positive_ints(name: str, values: Iterable[int]) -> list[int]:
    chosen = [_whole(value) for value in _listed(values)]
    if not chosen or any(value is None or value < 1 for value in chosen):
        raise InputError(
            f"{name} must be positive whole numbers, such as (1, 8, 32); got {values!r}."
        )
    return list(dict.fromkeys(chosen))  # type: ignore[arg-type]


def _thread_counts(values: Iterable[int | None]) -> list[int | None]:
    listed = _listed(values)
    chosen = [None if value is None else _whole(value) for value in listed]
    for value, count in zip(listed, chosen, strict=True):
        if value is not None and (count is None or count < 1):
            raise InputError(
                f"threads must be positive whole numbers or None for the runtime's "
                f"default; got {values!r}."
            )
    return list(dict.fromkeys(chosen)) or [None]


def _listed(values: Any) -> list[Any]:
    """One value or an iterable of them, as a list; a string is one value."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        return [values]
    try:
        return list(values)
    except TypeError:  # a zero-dimensional numpy array
        return [values]


def _whole(value: Any) -> int | None:
    """A whole number (numpy's included) as an int; None for anything else, bools too."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


def _model_ref(
    artifact: Artifact, framework: Any, configs: list[RuntimeConfig], table: dict[str, Runtime]
) -> ModelRef:
    if framework is None or not any(table[c.name].needs_framework_model for c in configs):
        return ModelRef(artifact)
    import cloudpickle

    path = Path(scratch_dir()) / f"{artifact.sha256[:16]}.framework.pkl"
    if not path.exists():
        try:
            data = cloudpickle.dumps(framework)
        except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
            raise WorkbenchError(
                f"The PyTorch model {type(framework).__name__} cannot be sent to a worker process "
                f"({type(exc).__name__}: {exc}); it holds something that cannot be copied (an "
                "open file, a lock, a generator). Benchmark the exported artifact without the "
                "torch runtime, or remove that member."
            ) from None
        path.write_bytes(data)
    keywords = tuple(getattr(artifact, "_keyword_inputs", ()))
    return ModelRef(artifact, framework_path=str(path), framework_kwargs=keywords)


def _default_memory_limit() -> float:
    import psutil

    return math.floor(psutil.virtual_memory().total * 0.8 / 2**20)
