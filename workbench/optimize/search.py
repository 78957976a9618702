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

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench import _html
from workbench.bench.measurement import Cell, Measurement
from workbench.bench.stats import Ratio, ratio_over_rounds
from workbench.errors import InputError
from workbench.runtimes import ModelRef, RuntimeConfig

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.artifact import Artifact
    from workbench.optimize.variant import Variant, Variants
    from workbench.results import Results

SEARCH_CHAINS = ("slim", "fusion", "fp16", "int8-dynamic", "fusion+int8-dynamic", "int8-static")
"""Offline graph optimization is left out: ONNX Runtime runs every model at its ``all`` level
anyway, so a saved ``ort-*`` graph changes load time, not speed."""
PRUNE_FACTOR = 1.25
"""A screened cell slower than this many times the best in-budget cell is pruned..."""
KEEP_FASTEST = 3
"""...unless it is among this many fastest, so that a noisy screen cannot prune them all."""
TIE_MARGIN = 0.05
"""Cells within this share of the fastest median, and not told apart round by round, are a tie;
a wider gap is never a tie, however noisy the rounds were."""
FLOOR = RuntimeConfig("onnxruntime")
_PRECISION_ORDER = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Choice:
    """One measured cell of the search, with its variant's accuracy."""

    variant: str
    runtime: str
    threads: int | None
    median_ms: float
    low_ms: float
    high_ms: float
    drop: float
    precision: str
    over_floor: Ratio
    over_eager: Ratio | None

    @property
    def label(self) -> str:
        threads = (
            "default threads"
            if self.threads is None
            else f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        )
        return f"{self.variant} on {self.runtime}, {threads}"


@dataclass(frozen=True, eq=False)
class Tuning:
    """What autotune found: every cell, the Pareto front, and one recommendation with its reason.

    ``table`` has one row per measured cell: its variant, runtime, threads, latency with its
    interval (from the decisive round when the cell reached it, else from the screen), the
    accuracy drop, its status (``recommended``, ``in budget``, ``over budget``, ``accuracy
    unknown``, ``pruned``, ``wrong outputs``, ``failed``, ``reference``) and whether it is on
    the front. Without data, float32 variants that passed the guard count a drop of 0.
    """

    variants: Variants
    screen: Results
    final: Results
    table: pd.DataFrame
    recommendation: Choice | None
    reason: str
    max_drop: float
    metric_name: str
    batch_size: int
    spent_s: float

    def front(self) -> pd.DataFrame:
        """The Pareto front: no other cell is both faster and less accurate-costly."""
        return self.table[self.table["front"]].sort_values("median_ms").reset_index(drop=True)

    def plot(self) -> go.Figure:
        """Latency against accuracy drop, every cell, the front joined, the budget shaded."""
        from workbench.viz.optimize import pareto_figure

        return pareto_figure(self.table, self.max_drop, self.metric_name, self._title())

    def waterfall(self) -> go.Figure:
        """What each pass of the recommended chain contributed to its latency."""
        from workbench.viz.optimize import waterfall_figure

        return waterfall_figure(self.contributions(), self._title())

    def contributions(self) -> pd.DataFrame:
        """Latency after each step from PyTorch eager to the recommendation, on its runtime."""
        import pandas as pd

        rows = []
        eager = self.table[(self.table["runtime"] == "torch") & self.table["median_ms"].notna()]
        if len(eager):
            best = eager.sort_values("median_ms").iloc[0]
            rows.append({"step": "PyTorch eager", "median_ms": best["median_ms"]})
        choice = self.recommendation
        if choice is not None:
            steps = ["fp32", *_prefixes(choice.variant)]
            for step in dict.fromkeys(steps):
                match = self.table[_row_of(self.table, step, choice.runtime, choice.threads)]
                if len(match) and not math.isnan(match.iloc[0]["median_ms"]):
                    last = step.split("+")[-1]
                    name = f"{choice.runtime} {step}" if step == "fp32" else f"+ {last}"
                    rows.append({"step": name, "median_ms": match.iloc[0]["median_ms"]})
        return pd.DataFrame(rows, columns=["step", "median_ms"])

    def _title(self) -> str:
        return f"autotune of {self.screen.model}, batch {self.batch_size}"

    def __str__(self) -> str:
        lines = [f"Recommendation: {self.reason}", "", "Pareto front:"]
        for row in self.front().itertuples():
            lines.append(
                f"  {row.variant} on {row.runtime} ({_threads(row.threads)}): "
                f"{row.median_ms:.4g} ms, drop {_drop(row.drop)}"
            )
        lines += ["", self.variants.tree()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        headers = ("variant", "runtime", "threads", "median ms [95%]", "drop", "status")
        rows = [
            (
                row.variant,
                row.runtime,
                _threads(row.threads),
                f"{row.median_ms:.4g} [{row.low_ms:.4g}, {row.high_ms:.4g}]",
                _drop(row.drop),
                row.status,
            )
            for row in self.table.sort_values("median_ms").itertuples()
        ]
        verdict = f"<p><b>Recommendation:</b> {_html.escape(self.reason)}</p>"
        return _html.STYLE + verdict + _html.table(headers, rows)


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
    table = _table(screen, final, variants, max_drop, kept)
    choice, reason = _recommend(final, variants, max_drop)
    if choice is not None:
        table.loc[_row_of(table, choice.variant, choice.runtime, choice.threads), "status"] = (
            "recommended"
        )
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


def _eligible(variant: Variant, max_drop: float) -> str | None:
    """Why a variant's cells cannot be recommended, or None."""
    if variant.status != "ok":
        return variant.status
    if not math.isnan(variant.drop) and variant.drop > max_drop:
        return "over budget"
    if variant.precision != "fp32" and math.isnan(variant.drop):
        return "accuracy unknown"
    return None


def _candidates(
    measured: Iterable[Measurement], variants: Variants, max_drop: float
) -> list[Measurement]:
    """Measured cells that may be recommended: right outputs, a variant within the budget."""
    by_name = {v.name: v for v in variants}
    return [
        m
        for m in measured
        if m.ok
        and m.stats
        and m.cell.variant in by_name
        and _eligible(by_name[m.cell.variant], max_drop) is None
        and (m.parity is None or m.parity.ok)
    ]


def _survivors(screen: Results, variants: Variants, max_drop: float) -> list[Cell]:
    usable = _candidates(screen, variants, max_drop)
    if not usable:
        return []
    usable.sort(key=lambda m: m.stats.median_ms)  # type: ignore[union-attr]
    best = usable[0].stats.median_ms  # type: ignore[union-attr]
    return [
        m.cell
        for rank, m in enumerate(usable)
        if rank < KEEP_FASTEST or m.stats.median_ms <= PRUNE_FACTOR * best  # type: ignore[union-attr]
    ]


def _table(
    screen: Results, final: Results, variants: Variants, max_drop: float, kept: list[Cell]
) -> pd.DataFrame:
    import pandas as pd

    by_name = {v.name: v for v in variants}
    decided = {m.cell: m for m in final}
    screened = {m.cell for m in screen}
    rows = []
    for item in [*screen, *(m for m in final if m.cell not in screened)]:
        cell = item.cell
        source = decided.get(cell, item)
        variant = by_name.get(cell.variant) if cell.variant else by_name.get("fp32")
        stats = source.stats
        status = _status(source, variant, max_drop, cell in decided or cell in kept)
        drop = 0.0 if variant is None else variant.drop
        if math.isnan(drop) and variant is not None and variant.precision == "fp32":
            drop = 0.0  # without data, a float32 variant that passed the guard lost nothing
        rows.append(
            {
                "variant": cell.variant or "fp32",
                "runtime": cell.config.label,
                "threads": cell.threads,
                "median_ms": stats.median_ms if stats else math.nan,
                "low_ms": stats.ci_low_ms if stats else math.nan,
                "high_ms": stats.ci_high_ms if stats else math.nan,
                "drop": drop,
                "precision": variant.precision if variant else "fp32",
                "status": status,
                "measured": "decisive" if cell in decided else "screen",
                "cause": source.cause,
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["threads"] = pd.Series([row["threads"] for row in rows], dtype=object)
    if table.empty:
        table = pd.DataFrame(columns=[*rows[0]] if rows else ["variant", "median_ms", "drop"])
    table["front"] = _front(table)
    return table


def _status(item: Measurement, variant: Variant | None, max_drop: float, kept: bool) -> str:
    if not item.ok:
        return "failed"
    if item.parity is not None and not item.parity.ok:
        return "wrong outputs"
    if item.cell.config.name == "torch":
        return "reference"
    why = _eligible(variant, max_drop) if variant else None
    if why:
        return why
    return "in budget" if kept else "pruned"


def _front(table: pd.DataFrame) -> list[bool]:
    """Cells no other cell beats on both latency and drop (a NaN drop counts as unknown, off)."""
    marks = []
    points = [(row.median_ms, row.drop, row.status) for row in table.itertuples()]
    usable = [
        (ms, drop)
        for ms, drop, status in points
        if not math.isnan(ms) and not math.isnan(drop) and status not in ("failed", "wrong outputs")
    ]
    for ms, drop, status in points:
        if math.isnan(ms) or math.isnan(drop) or status in ("failed", "wrong outputs"):
            marks.append(False)
            continue
        beaten = any(
            (o_ms <= ms and o_drop <= drop) and (o_ms < ms or o_drop < drop)
            for o_ms, o_drop in usable
        )
        marks.append(not beaten)
    return marks


def _recommend(
    final: Iterable[Measurement], variants: Variants, max_drop: float
) -> tuple[Choice | None, str]:
    final = list(final)
    by_name = {v.name: v for v in variants}
    eager = [m for m in final if m.ok and m.cell.config.name == "torch" and m.stats]
    eligible = _candidates(final, variants, max_drop)
    if not eligible:
        return None, (
            "nothing to recommend: no cell kept the outputs within the guard and the accuracy "
            "budget (see the table for each cell's status)"
        )
    eligible.sort(key=lambda m: m.stats.median_ms)  # type: ignore[union-attr]
    fastest = eligible[0]
    limit = fastest.stats.median_ms * (1 + TIE_MARGIN)  # type: ignore[union-attr]
    tied = [
        m
        for m in eligible
        if m is fastest
        or (
            m.stats.median_ms <= limit  # type: ignore[union-attr]
            and ratio_over_rounds(m.round_medians_ms, fastest.round_medians_ms).verdict != "faster"
        )
    ]

    def preference(m: Measurement) -> tuple[Any, ...]:
        variant = by_name[m.cell.variant]
        drop = 0.0 if math.isnan(variant.drop) else max(variant.drop, 0.0)
        return (
            round(drop, 6),
            _PRECISION_ORDER.index(variant.precision),
            len(variant.passes),
            m.stats.median_ms,  # type: ignore[union-attr]
        )

    chosen = min(tied, key=preference)
    floors = [
        m for m in final if m.ok and m.cell.variant == "fp32" and m.cell.config == FLOOR and m.stats
    ]
    best_floor = min(floors, key=lambda m: m.stats.median_ms) if floors else None  # type: ignore[union-attr]
    if best_floor is not None and chosen is not best_floor:
        against_floor = ratio_over_rounds(best_floor.round_medians_ms, chosen.round_medians_ms)
        if against_floor.verdict == "slower":
            chosen = best_floor
    choice = _choice(chosen, by_name, best_floor, eager)
    reason = _reason(choice, fastest, tied, chosen, max_drop, by_name)
    noisy = [m.noise_cores for m in final if m.noisy]
    if noisy:
        reason += (
            f" Caution: other processes used up to {max(noisy):.1f} cores while {len(noisy)} of "
            f"the {len(final)} cells were measured; re-run on a quiet machine before trusting "
            "the ranking."
        )
    return choice, reason


def _choice(
    chosen: Measurement,
    by_name: Mapping[str, Variant],
    floor: Measurement | None,
    eager: list[Measurement],
) -> Choice:
    variant = by_name[chosen.cell.variant]
    stats = chosen.stats
    assert stats is not None
    over_floor = (
        ratio_over_rounds(floor.round_medians_ms, chosen.round_medians_ms)
        if floor is not None
        else Ratio(math.nan, math.nan, math.nan, 0)
    )
    same_threads = [m for m in eager if m.cell.threads == chosen.cell.threads]
    pool = same_threads or eager
    over_eager = None
    if pool:
        base = min(pool, key=lambda m: m.stats.median_ms)  # type: ignore[union-attr]
        over_eager = ratio_over_rounds(base.round_medians_ms, chosen.round_medians_ms)
    return Choice(
        variant=variant.name,
        runtime=chosen.cell.config.label,
        threads=chosen.cell.threads,
        median_ms=stats.median_ms,
        low_ms=stats.ci_low_ms,
        high_ms=stats.ci_high_ms,
        drop=variant.drop,
        precision=variant.precision,
        over_floor=over_floor,
        over_eager=over_eager,
    )


def _reason(  # noqa: PLR0917 - one private call site
    choice: Choice,
    fastest: Measurement,
    tied: list[Measurement],
    chosen: Measurement,
    max_drop: float,
    by_name: Mapping[str, Variant],
) -> str:
    parts = [
        f"{choice.label}: {choice.median_ms:.4g} ms [{choice.low_ms:.4g}, {choice.high_ms:.4g}]"
    ]
    if choice.over_eager is not None:
        ratio = choice.over_eager
        parts.append(f"{ratio.value:.2f}× PyTorch eager [{ratio.low:.2f}, {ratio.high:.2f}]")
    if choice.variant != "fp32" or choice.runtime != FLOOR.label:
        ratio = choice.over_floor
        if ratio.rounds:
            parts.append(
                f"{ratio.value:.2f}× ONNX Runtime fp32 [{ratio.low:.2f}, {ratio.high:.2f}]"
            )
        else:
            parts.append("not checked against ONNX Runtime fp32, which could not be measured")
    metric = by_name[choice.variant].metric_name
    if not math.isnan(choice.drop):
        parts.append(
            f"{metric or 'metric'} drop {choice.drop:+.4f} within the budget of {max_drop:g}"
        )
    text = "; ".join(parts)
    if chosen is fastest:
        return text + ". It is the fastest cell within the accuracy budget."
    others = [m for m in tied if m is not chosen]
    if chosen in tied and others:
        names = ", ".join(m.cell.label for m in others[:3])
        return (
            text + f". Not distinguishable in speed from {names}; chosen for its smaller "
            "accuracy drop, higher precision or shorter chain."
        )
    return text + ". The fastest cell was not faster than ONNX Runtime fp32, which is kept."


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


def _row_of(table: pd.DataFrame, variant: str, runtime: str, threads: int | None) -> pd.Series:
    """The rows of one cell; a thread count of None (the engine's default) matches None."""
    same_threads = table["threads"].map(
        lambda value: _threads(value) == _threads(threads)  # None and NaN both read "default"
    )
    return (table["variant"] == variant) & (table["runtime"] == runtime) & same_threads


def _prefixes(chain: str) -> list[str]:
    if chain == "fp32":
        return []
    parts = chain.split("+")
    return ["+".join(parts[: index + 1]) for index in range(len(parts))]


def _threads(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "default"
    return str(int(value))


def _drop(value: float) -> str:
    return "unknown" if math.isnan(value) else f"{value:+.4f}"
