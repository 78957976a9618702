"""autotune(): the fastest variant × runtime × thread count that keeps the task's accuracy.

The search runs in three steps, each with the study machinery (isolated workers, interleaved
rounds):

1. **Make.** optimize() builds the candidate variants and the accuracy guard checks each; a
   rejected or failed variant goes no further.
2. **Screen.** Every remaining cell is measured briefly, side by side. Cells clearly slower than
   the best cell that keeps the accuracy budget are pruned, and so are variants over the budget
   (they stay on the front, measured, but are never recommended).
3. **Decide.** The survivors, ONNX Runtime fp32 at all optimizations (the floor) and PyTorch
   eager (the reference, when the model is at hand) are measured again with the larger share of
   the budget. The fastest survivor wins; when others are within 5% of it and cannot be told
   apart round by round, the one with the smaller accuracy drop, then the one at full precision,
   is chosen. The recommendation is never
   slower than the floor and never over the accuracy budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.bench.measurement import Cell
from workbench.errors import InputError
from workbench.optimize.tuning import FLOOR, Choice, Tuning, _candidates, _recommend, _table
from workbench.runtimes import ModelRef, RuntimeConfig

if TYPE_CHECKING:
    from workbench.artifact import Artifact
    from workbench.optimize.variant import Variants
    from workbench.results import Results

__all__ = ["Choice", "Tuning", "autotune"]

SEARCH_CHAINS = ("slim", "fusion", "fp16", "int8-dynamic", "fusion+int8-dynamic", "int8-static")
"""Offline graph optimization is left out: ONNX Runtime runs every model at its ``all`` level
anyway, so a saved ``ort-*`` graph changes load time, not speed."""
PRUNE_FACTOR = 1.25
"""A screened cell slower than this many times the best in-budget cell is pruned..."""
KEEP_FASTEST = 3
"""...unless it is among this many fastest, so that a noisy screen cannot prune them all."""


def autotune(
    target: Any,
    example_inputs: Any = None,
    *,
    data: Any = None,
    labels: Any = None,
    metric: str | Callable[..., float] | None = None,
    max_drop: float = 0.01,
    budget_s: float = 60.0,
    batch_size: int = 1,
    threads: Sequence[int | None] | None = None,
    runtimes: Sequence[str | RuntimeConfig] | None = None,
    passes: Sequence[str] | None = None,
    store: Any = None,
    exhaustive: bool = False,
    progress: bool = True,
) -> Tuning:
    """Search passes × runtimes × threads for the fastest faithful cell within ``max_drop``.

    ``data`` and ``labels`` (or a ``metric``) measure each variant's accuracy, as in
    optimize(); without data, only float32 variants can be recommended, since the drop of
    fp16 and int8 cannot be known. ``budget_s`` is the measuring time of the whole search
    (worker start-up and model loading come on top), shared among the cells; each cell gets at
    least 0.15 s in the screen and 0.3 s in the decisive round, so a search of many cells on a
    small budget takes longer. ``threads`` defaults to 1 and every core;
    ``runtimes`` to ONNX Runtime and OpenVINO where installed, with PyTorch eager as the
    reference when the model is at hand. ``exhaustive=True`` skips the screen and measures
    every cell side by side with the whole budget: slower, and the yardstick that the pruned
    search is checked against. Returns a :class:`Tuning`.
    """
    from workbench.optimize.lab import optimize
    from workbench.study import _resolve_target

    if isinstance(max_drop, bool) or not isinstance(max_drop, int | float) or max_drop < 0:
        raise InputError(f"max_drop must be a non-negative number such as 0.01; got {max_drop!r}.")
    if isinstance(budget_s, bool) or not isinstance(budget_s, int | float) or budget_s <= 0:
        raise InputError(f"budget_s must be a positive number of seconds; got {budget_s!r}.")
    started = time.perf_counter()
    artifact = _resolve_target(target, example_inputs)
    variants = optimize(
        artifact,
        passes or SEARCH_CHAINS,
        data=data,
        labels=labels,
        metric=metric,
        store=store,
        progress=progress,
    )
    engines = _engines(runtimes)
    thread_counts = _thread_counts(threads)
    framework = getattr(artifact, "_framework_model", None)
    candidates = [v for v in variants if v.status == "ok"]
    cells = [
        Cell(config, batch_size, count, variant.name)
        for variant in candidates
        for config in engines
        if variant.engines is None or config.name in variant.engines
        for count in thread_counts
    ]
    reference = [Cell(RuntimeConfig("torch"), batch_size, n) for n in thread_counts]
    if framework is None:
        reference = []
    # ONNX Runtime fp32 at all optimizations is measured whatever runtimes were asked for: no
    # recommendation may be slower than it.
    floor = [Cell(FLOOR, batch_size, n, "fp32") for n in thread_counts]
    budget = _Budget(budget_s, screen_share=0.0 if exhaustive else 0.3)
    if exhaustive:
        every = list(dict.fromkeys([*cells, *floor, *reference]))
        final = _sweep(artifact, variants, every, budget.final(len(every)), data, progress)
        screen, kept = final, cells
    else:
        screen = _sweep(
            artifact, variants, cells + reference, budget.screen(len(cells)), data, progress
        )
        kept = _survivors(screen, variants, max_drop)
        final_cells = list(dict.fromkeys([*kept, *floor, *reference]))
        final = _sweep(
            artifact, variants, final_cells, budget.final(len(final_cells)), data, progress
        )
    choice, reason = _recommend(final, variants, max_drop)
    table = _table(screen, final, variants, max_drop, kept, choice)
    scorer = next((v.metric_name for v in variants if v.metric_name), "")
    if store is not None:
        config = {"max_drop": max_drop, "budget_s": budget_s, "batch_size": batch_size}
        _record_run(store, artifact, variants=variants, final=final, config=config, reason=reason)
    return Tuning(
        variants=variants,
        screen=screen,
        final=final,
        table=table,
        recommendation=choice,
        reason=reason,
        max_drop=float(max_drop),
        metric_name=scorer,
        batch_size=batch_size,
        spent_s=time.perf_counter() - started,
    )


@dataclass
class _Budget:
    total_s: float
    screen_share: float = 0.3

    def screen(self, cells: int) -> float:
        return min(1.0, max(0.15, self.total_s * self.screen_share / max(cells, 1)))

    def final(self, cells: int) -> float:
        return min(10.0, max(0.3, self.total_s * (1 - self.screen_share) / max(cells, 1)))


def _engines(runtimes: Sequence[str | RuntimeConfig] | None) -> list[RuntimeConfig]:
    from workbench.runtimes import get

    if runtimes is not None:
        configs = [RuntimeConfig.parse(item) for item in runtimes]
        for config in configs:
            if config.name == "torch":
                raise InputError(
                    "autotune measures PyTorch eager as its reference by itself; list the ONNX "
                    "runtimes to search, such as ['onnxruntime', 'openvino']."
                )
            get(config.name).check_options(config)
        return configs
    configs = [FLOOR]
    if get("openvino").available().ok:
        configs.append(RuntimeConfig("openvino"))
    return configs


def _thread_counts(threads: Sequence[int | None] | None) -> list[int | None]:
    from workbench.bench.process import cores_available

    if threads is None:
        return list(dict.fromkeys([1, cores_available()]))
    chosen = list(threads)
    if not chosen or any(
        count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1)
        for count in chosen
    ):
        raise InputError(
            f"threads must be positive whole numbers, such as [1, 2]; got {threads!r}."
        )
    return list(dict.fromkeys(chosen))


def _sweep(  # noqa: PLR0917 - one private call site
    artifact: Artifact,
    variants: Variants,
    cells: list[Cell],
    budget_s: float,
    data: Any,
    progress: bool,
) -> Results:
    from workbench.bench.feeds import feeds_for
    from workbench.executors.local import LocalExecutor, SweepPlan
    from workbench.optimize import data as data_module
    from workbench.optimize.lab import GUARD_FLOORS
    from workbench.results import Results
    from workbench.runtimes import registry
    from workbench.study import _default_memory_limit, _model_ref, run_plan

    table = registry()
    framework = getattr(artifact, "_framework_model", None)
    torch_configs = [c.config for c in cells if c.config.name == "torch"]
    inputs = None
    if data is not None:
        inputs = data_module.dataset(artifact, data).head(1)[0]
    plan = SweepPlan(
        cells=tuple(cells),
        runtimes=table,
        model=_model_ref(artifact, framework, torch_configs, table),
        variants={v.name: ModelRef(v.artifact) for v in variants if v.artifact is not None},
        similarity_floors={
            v.name: GUARD_FLOORS[v.precision] for v in variants if v.precision in GUARD_FLOORS
        },
        feeds=feeds_for(artifact, inputs),
        output_names=tuple(spec.name for spec in artifact.outputs),
        reference="torch" if torch_configs else None,
        budget_s=budget_s,
        min_rounds=6,
        precision=0.01,
        warmup_s=0.1,
        timeout_s=60.0,
        memory_limit_mb=_default_memory_limit(),
    )
    measured = run_plan(plan, LocalExecutor(), progress)
    return Results.from_measurements(measured, artifact=artifact, reference=plan.reference)


def _survivors(screen: Results, variants: Variants, max_drop: float) -> list[Cell]:
    usable = _candidates(screen, variants, max_drop)
    if not usable:
        return []
    usable.sort(key=lambda m: m.stats.median_ms)  # type: ignore[union-attr]
    medians = [m.stats.median_ms for m in usable]  # type: ignore[union-attr]
    return [
        m.cell
        for rank, (m, median) in enumerate(zip(usable, medians, strict=True))
        if rank < KEEP_FASTEST or median <= PRUNE_FACTOR * medians[0]
    ]


def _record_run(
    store: Any,
    artifact: Artifact,
    *,
    variants: Variants,
    final: Results,
    config: dict[str, Any],
    reason: str,
) -> None:
    """The decisive measurements as one run of the study ``autotune:<model>``."""
    from workbench.store.sqlite import Store, open_store
    from workbench.studies import cell_fingerprint

    handle = store if isinstance(store, Store) else open_store(store)
    try:
        environment = final.environment
        fingerprint = handle.record_environment(environment)
        study = f"autotune:{artifact.name}"
        handle.ensure_study(study, config)
        run = handle.start_run(study, fingerprint, note=reason)
        made = {v.name: v.artifact for v in variants if v.artifact is not None}
        for item in final:
            model = made.get(item.cell.variant, artifact)
            handle.add_measurement(
                item,
                study=study,
                run=run,
                fingerprint=cell_fingerprint(model.sha256, item.cell, environment),
                artifact=model.sha256,
                environment=fingerprint,
            )
    finally:
        if handle is not store:
            handle.close()
