"""What autotune found and how it chooses: the table of cells, the Pareto front, the rules that
make a cell eligible, and the recommendation with its reason.

The rules: a cell is eligible when its outputs kept the guard and its variant's task metric fell
by no more than the budget (float32 variants count as within it when no data was given). The
fastest eligible cell wins; cells within 5% of it that cannot be told apart round by round are a
tie, won by the smaller accuracy drop, then the higher precision, then the shorter chain. A cell
slower round by round than ONNX Runtime fp32 at all optimizations (the floor) is never chosen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench import _html
from workbench.bench.stats import Ratio, ratio_over_rounds
from workbench.runtimes import RuntimeConfig

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.bench.measurement import Cell, Measurement
    from workbench.optimize.variant import Variant, Variants
    from workbench.results import Results

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


def _table(  # noqa: PLR0917 - one private call site
    screen: Results,
    final: Results,
    variants: Variants,
    max_drop: float,
    kept: list[Cell],
    choice: Choice | None,
) -> pd.DataFrame:
    """One row per measured cell, the recommendation's marked ``recommended``."""
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
    if choice is not None:
        recommended = _row_of(table, choice.variant, choice.runtime, choice.threads)
        table.loc[recommended, "status"] = "recommended"
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
    best_floor = (
        min(floors, key=lambda m: m.stats.median_ms)  # type: ignore[union-attr]
        if floors
        else None
    )
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
