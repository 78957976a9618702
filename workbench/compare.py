"""Two runs of a benchmark side by side: which cells changed, and what changed around them.

The runs were measured at different times, so nothing pairs their calls: each cell's speed-up is
a ratio of medians with a bootstrap interval, resampling whole rounds when both runs have enough
of them. "faster" and "slower" are said only when the interval excludes 1.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench._callable import make_callable
from workbench.bench.shifts import noise_warning
from workbench.bench.stats import (
    MIN_ROUNDS,
    RUN_TO_RUN,
    Ratio,
    bootstrap_ratio,
    bootstrap_ratio_rounds,
    widened,
)

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.bench.measurement import Measurement
    from workbench.results import Results
    from workbench.store.environment import Environment

# NOTE: RUN_TO_RUN (in workbench.bench.stats) is how much a whole run's level wanders from one
# run to the next; within-run data cannot see it, so each cell's interval is widened by it. Pass
# run_to_run=0 to judge by within-run data alone, or more on a machine known to drift more
# (multi-threaded eager PyTorch on a busy machine moved by far more than any allowance).

_Key = tuple[str, int, "int | None"]
_FIELD_NAMES = {
    "cpu": "CPU",
    "cpu_flags": "instruction sets",
    "cores_logical": "logical cores",
    "cores_physical": "physical cores",
    "cores_usable": "usable cores",
    "memory_gb": "memory (GB)",
    "os": "system",
    "machine": "machine",
    "python": "Python",
}

COLUMNS = (
    "runtime", "batch_size", "threads", "status_a", "status_b", "median_a_ms", "median_b_ms",
    "speedup", "speedup_low", "speedup_high", "basis", "verdict", "noisy_a", "noisy_b", "note",
)  # fmt: skip
"""The columns of ``Comparison.to_pandas()``: one row per cell found in either run."""


@dataclass(frozen=True)
class CellComparison:
    """One cell as run a and run b measured it; ``speedup`` is b's over a's (above 1: faster)."""

    runtime: str
    batch_size: int
    threads: int | None
    a: Measurement | None
    b: Measurement | None
    speedup: Ratio | None
    verdict: str
    note: str = ""

    def describe(self) -> str:
        threads = "default threads" if self.threads is None else f"{self.threads} threads"
        return f"{self.runtime}, batch {self.batch_size}, {threads}"


@dataclass(frozen=True)
class Comparison:
    """What changed from run a to run b, cell by cell, with the differences of their machines."""

    cells: tuple[CellComparison, ...]
    differences: tuple[str, ...]
    warnings: tuple[str, ...]
    model: str = ""
    run_to_run: float = RUN_TO_RUN

    def to_pandas(self) -> pd.DataFrame:
        """One tidy row per cell found in either run."""
        import pandas as pd

        return pd.DataFrame([_row(cell) for cell in self.cells], columns=list(COLUMNS))

    def plot(self) -> go.Figure:
        """Each cell's speed-up of b over a with its 95% interval, against a line at 1."""
        from workbench.viz.compare import comparison

        return comparison(self.to_pandas(), title=f"Run b against run a: {self.model}")

    def _headline(self) -> list[str]:
        counts: dict[str, int] = {}
        for cell in self.cells:
            counts[cell.verdict] = counts.get(cell.verdict, 0) + 1
        tally = ", ".join(f"{count} {verdict}" for verdict, count in counts.items())
        lines = [f"{self.model or 'model'}: run b against run a, {len(self.cells)} cells: {tally}"]
        lines.append(
            "speed-up = a's median latency / b's; above 1 run b is faster; intervals allow "
            f"{self.run_to_run:.0%} run-to-run wander"
        )
        lines += [f"changed: {difference}" for difference in self.differences]
        lines += [f"warning: {warning}" for warning in self.warnings]
        return lines

    def _display_rows(self) -> list[tuple[str, ...]]:
        return [
            (
                cell.runtime,
                str(cell.batch_size),
                "default" if cell.threads is None else str(cell.threads),
                _median_text(cell.a),
                _median_text(cell.b),
                _ratio_text(cell.speedup),
                cell.speedup.basis if cell.speedup else "-",
                cell.verdict,
            )
            for cell in self.cells
        ]

    def _notes(self) -> list[str]:
        """Each cell's noise note, once for all the cells that share it."""
        cells_of: dict[str, list[str]] = {}
        for cell in self.cells:
            if cell.note:
                cells_of.setdefault(cell.note, []).append(cell.describe())
        return [f"{'; '.join(cells)}: {note}" for note, cells in cells_of.items()]

    _HEADERS = (
        "runtime", "batch", "threads", "a median ms", "b median ms", "speed-up of b [95% CI]",
        "from", "verdict",
    )  # fmt: skip

    def __str__(self) -> str:
        from workbench._html import text_table

        table = text_table(self._HEADERS, self._display_rows())
        notes = [f"note: {note}" for note in self._notes()]
        return "\n".join([*self._headline(), table, *notes])

    def __repr__(self) -> str:
        return f"<Comparison of {len(self.cells)} cells>\n{self}"

    def _repr_html_(self) -> str:
        from workbench._html import STYLE, escape, table

        head = "<br>".join(escape(line) for line in self._headline())
        notes = "".join(f'<div class="wb-note">{escape(note)}</div>' for note in self._notes())
        return f"{STYLE}<div>{head}</div>{table(self._HEADERS, self._display_rows())}{notes}"


def compare(
    a: Results, b: Results, *, match_model: bool = True, run_to_run: float = RUN_TO_RUN
) -> Comparison:
    """Compare two runs cell by cell: the speed-up of b over a, and what differs between them.

    Cells are matched by runtime, batch size and threads. When both runs carry their model's
    sha256 and the hashes differ, no cell is matched unless ``match_model`` is False (to compare
    two exports of one model, say). ``run_to_run`` is how much a run's level wanders between
    runs (see ``RUN_TO_RUN``); 0 trusts the within-run intervals alone.
    """
    same_model = not (a.sha256 and b.sha256 and a.sha256 != b.sha256)
    cells_a = {_key(m): m for m in a.measurements}
    cells_b = {_key(m): m for m in b.measurements}
    if same_model or not match_model:
        keys = dict.fromkeys([*cells_a, *cells_b])
        pairs = [(key, cells_a.get(key), cells_b.get(key)) for key in keys]
    else:
        pairs = [(k, m, None) for k, m in cells_a.items()]
        pairs += [(k, None, m) for k, m in cells_b.items()]

    cells = tuple(_compare_cell(key, ca, cb, run_to_run) for key, ca, cb in pairs)
    differences = environment_differences(a.environment, b.environment)
    if not same_model:
        differences.insert(0, f"model: {_model_text(a)} → {_model_text(b)}")
    warnings = tuple(_noise_warnings(cells))
    return Comparison(cells, tuple(differences), warnings, a.model or b.model, run_to_run)


def _key(measurement: Measurement) -> _Key:
    cell = measurement.cell
    return (cell.label, cell.batch_size, cell.threads)


def _compare_cell(
    key: _Key, a: Measurement | None, b: Measurement | None, run_to_run: float
) -> CellComparison:
    speedup = None
    if a is None or b is None:
        verdict = "only in b" if a is None else "only in a"
    elif not (a.ok and b.ok):
        verdict = _failure_text(a, b)
    else:
        speedup = widened(cell_speedup(a, b), run_to_run)
        verdict = speedup.verdict
        wrong = [side for side, m in (("a", a), ("b", b)) if m.parity and not m.parity.ok]
        if wrong:
            verdict = f"wrong outputs in {' and '.join(wrong)}"
    notes = [
        f"run {side}: {warning}"
        for side, m in (("a", a), ("b", b))
        if m is not None and m.ok and (warning := noise_warning(m))
    ]
    return CellComparison(*key, a, b, speedup, verdict, " ".join(notes))


def cell_speedup(a: Measurement, b: Measurement) -> Ratio:
    """b's speed-up over a: from round medians when both have enough rounds, else from samples.

    The interval reflects the noise within each run only; see :func:`widened`.
    """
    rounds_a = [value for value in a.round_medians_ms if math.isfinite(value)]
    rounds_b = [value for value in b.round_medians_ms if math.isfinite(value)]
    if len(rounds_a) >= MIN_ROUNDS and len(rounds_b) >= MIN_ROUNDS:
        return bootstrap_ratio_rounds(rounds_a, rounds_b)
    return bootstrap_ratio(a.samples_ns, b.samples_ns)


def _failure_text(a: Measurement, b: Measurement) -> str:
    failed = [(side, m) for side, m in (("a", a), ("b", b)) if not m.ok]
    if len(failed) == 2:
        return f"failed in both: {a.status} in a, {b.status} in b"
    side, measurement = failed[0]
    cause = measurement.cause.strip().splitlines()[0][:120] if measurement.cause.strip() else ""
    return f"failed in {side}: {measurement.status}" + (f" ({cause})" if cause else "")


def environment_differences(a: Environment, b: Environment) -> list[str]:
    """Every field in which two environments differ, as "name old → new" lines."""
    found = []
    for item in dataclasses.fields(a):
        old, new = getattr(a, item.name), getattr(b, item.name, None)
        if item.name == "packages":
            found += _package_differences(old, new or {})
        elif item.name == "cpu_flags":
            found += _flag_differences(old, new or ())
        elif _shown(old) != _shown(new):
            name = _FIELD_NAMES.get(item.name, item.name.replace("_", " "))
            found.append(f"{name}: {_shown(old)} → {_shown(new)}")
    return found


def _package_differences(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return [
        f"{name} {old.get(name, 'absent')} → {new.get(name, 'absent')}"
        for name in dict.fromkeys([*old, *new])
        if old.get(name) != new.get(name)
    ]


def _flag_differences(old: tuple[str, ...], new: tuple[str, ...]) -> list[str]:
    gained = [f"+{flag}" for flag in new if flag not in old]
    lost = [f"-{flag}" for flag in old if flag not in new]
    return [f"instruction sets: {' '.join(gained + lost)}"] if gained or lost else []


def _shown(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _noise_warnings(cells: tuple[CellComparison, ...]) -> list[str]:
    warnings = []
    for side in ("a", "b"):
        measured = [getattr(c, side) for c in cells if getattr(c, side) is not None]
        noisy = [c for c in cells if f"run {side}:" in c.note]
        if noisy:
            warnings.append(
                f"{len(noisy)} of run {side}'s {len(measured)} cells were measured on a noisy "
                "machine (see the notes); a difference there may be the machine's, not the code's"
            )
    return warnings


def _model_text(results: Results) -> str:
    return f"{results.model or 'model'} (sha256 {results.sha256[:12]})"


def _median_text(measurement: Measurement | None) -> str:
    stats = measurement.stats if measurement is not None else None
    return f"{stats.median_ms:.3g}" if stats else "-"


def _ratio_text(ratio: Ratio | None) -> str:
    if ratio is None or math.isnan(ratio.value):
        return "-"
    return f"{ratio.value:.3g}x [{ratio.low:.3g}, {ratio.high:.3g}]"


def _row(cell: CellComparison) -> dict[str, Any]:
    a, b, ratio, nan = cell.a, cell.b, cell.speedup, math.nan
    return {
        "runtime": cell.runtime,
        "batch_size": cell.batch_size,
        "threads": cell.threads,
        "status_a": a.status if a else "missing",
        "status_b": b.status if b else "missing",
        "median_a_ms": a.stats.median_ms if a and a.stats else nan,
        "median_b_ms": b.stats.median_ms if b and b.stats else nan,
        "speedup": ratio.value if ratio else nan,
        "speedup_low": ratio.low if ratio else nan,
        "speedup_high": ratio.high if ratio else nan,
        "basis": ratio.basis if ratio else "",
        "verdict": cell.verdict,
        "noisy_a": bool(a and a.noisy),
        "noisy_b": bool(b and b.noisy),
        "note": cell.note,
    }


# NOTE: importing this module makes it the package attribute `workbench.compare`, hiding the
# function; a callable module keeps workbench.compare(a, b) working in any import order.
make_callable(__name__, "workbench.compare:compare")
