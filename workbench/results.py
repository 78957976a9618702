"""The outcome of a benchmark: measurements, speed-ups with intervals, tables and plots.

Outputs are compared before speed: a cell whose outputs drifted from the reference is marked
"wrong outputs" and is never named the winner.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.bench.measurement import Cell, Measurement
from workbench.bench.stats import STAT_NAMES, Ratio, ratio_over_rounds, rerun_interval
from workbench.runtimes.base import RuntimeConfig
from workbench.store.environment import Environment, current_environment

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.artifact import Artifact
    from workbench.inspect.summary import Summary


@dataclass(frozen=True)
class Results:
    """Measurements of one sweep with the environment they were taken in."""

    measurements: tuple[Measurement, ...]
    environment: Environment
    model: str = ""
    sha256: str = ""
    reference: str | None = None
    export_parity: Any = None
    speedups: dict[Any, Ratio] = field(default_factory=dict)
    flops_per_sample: int | None = None
    peak_gflops: float | None = None

    @classmethod
    def from_measurements(
        cls, measurements: Sequence[Measurement], *, artifact: Artifact, reference: str | None
    ) -> Results:
        speedups = {}
        for item in measurements:
            baseline = _baseline_for(measurements, item, reference)
            if item.ok and baseline is not None and baseline is not item:
                speedups[item.cell] = ratio_over_rounds(
                    baseline.round_medians_ms, item.round_medians_ms
                )
        return cls(
            tuple(measurements),
            current_environment(),
            artifact.name,
            artifact.sha256,
            reference,
            artifact.parity,
            speedups,
        )

    def __len__(self) -> int:
        return len(self.measurements)

    def __iter__(self) -> Iterator[Measurement]:
        return iter(self.measurements)

    # -- verdicts ---------------------------------------------------------------------------

    def verdict(self, item: Measurement) -> str:
        if not item.ok:
            return item.status
        if item.parity is not None and not item.parity.ok:
            return "wrong outputs"
        if item.cell not in self.speedups:
            return "baseline" if item.cell.label == self.reference else "no baseline"
        return self.speedups[item.cell].verdict

    def winners(self) -> dict[tuple[int, int | None], str]:
        """Per (batch size, threads): the fastest faithful runtime, or the tie it belongs to."""
        found = {}
        for key in dict.fromkeys((m.cell.batch_size, m.cell.threads) for m in self.measurements):
            faithful = [
                m
                for m in self.measurements
                if (m.cell.batch_size, m.cell.threads) == key
                and m.ok
                and m.stats
                and (m.parity is None or m.parity.ok)
            ]
            if not faithful:
                continue
            faithful.sort(key=lambda m: m.stats.median_ms)  # type: ignore[union-attr]
            best = faithful[0]
            # Ties are judged as speed-ups are: round by round, measured side by side.
            tied = [
                m.cell.label
                for m in faithful[1:]
                if ratio_over_rounds(m.round_medians_ms, best.round_medians_ms).verdict != "faster"
            ]
            found[key] = best.cell.label + (
                f" (not distinguishable from {', '.join(tied)})" if tied else ""
            )
        return found

    # -- tables -----------------------------------------------------------------------------

    def to_pandas(self) -> pd.DataFrame:
        """One tidy row per cell."""
        import pandas as pd

        rows = [self._row(item) for item in self.measurements]
        if not rows:  # the columns stay known, so plots and filters work on an empty sweep
            placeholder = Measurement(Cell(RuntimeConfig("none"), 1, None), status="failed")
            return pd.DataFrame(columns=list(self._row(placeholder)))
        return pd.DataFrame(rows)

    def samples(self) -> pd.DataFrame:
        """One row per timed call: runtime, batch size, threads, latency in ms."""
        import numpy as np
        import pandas as pd

        frames = [
            pd.DataFrame(
                {
                    "runtime": item.cell.label,
                    "batch_size": item.cell.batch_size,
                    "threads": item.cell.threads,
                    "latency_ms": np.asarray(item.samples_ns, dtype=np.float64) / 1e6,
                }
            )
            for item in self.measurements
            if item.samples_ns
        ]
        columns = ["runtime", "batch_size", "threads", "latency_ms"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def _row(self, item: Measurement) -> dict[str, Any]:
        stats, parity, nan = item.stats, item.parity, math.nan
        ratio = self.speedups.get(item.cell)
        row: dict[str, Any] = {
            "model": self.model,
            "runtime": item.cell.label,
            "engine": item.cell.config.name,
            "variant": item.cell.variant,
            "provider": item.provider,
            "batch_size": item.cell.batch_size,
            "threads": item.cell.threads,
            "threads_used": item.threads_used,
            "status": item.status,
            "cause": item.cause,
        }
        for name in STAT_NAMES:
            row[name] = getattr(stats, name) if stats else nan
        # Where a re-run's median should fall: the within-run interval plus run-to-run wander.
        row["rerun_low_ms"], row["rerun_high_ms"] = rerun_interval(stats) if stats else (nan, nan)
        row.update(
            {
                "throughput_per_s": item.throughput_per_s,
                "peak_rss_mb": item.peak_rss_mb,
                "load_s": item.load_s,
                "first_ms": item.first_ms,
                "parity_ok": None if parity is None else parity.ok,
                "max_abs_err": parity.max_abs if parity else nan,
                "max_rel_err": parity.max_rel if parity else nan,
                "noise_cores": item.noise_cores,
                "noisy": item.noisy,
                "stop_reason": item.stop_reason,
                "rounds": len(item.round_medians_ms),
                "baseline": self.reference,
                "speedup": ratio.value if ratio else nan,
                "speedup_low": ratio.low if ratio else nan,
                "speedup_high": ratio.high if ratio else nan,
                "verdict": self.verdict(item),
            }
        )
        row.update(self._roofline_columns(item))
        return row

    def _roofline_columns(self, item: Measurement) -> dict[str, float]:
        """FLOPs per sample, the GFLOP/s the cell attained, and its share of the peak."""
        flops, peak, nan = self.flops_per_sample, self.peak_gflops, math.nan
        attained = nan
        if flops and item.stats is not None and item.stats.median_ms > 0:
            attained = flops * item.cell.batch_size / (item.stats.median_ms / 1e3) / 1e9
        return {
            "flops_per_sample": float(flops) if flops else nan,
            "gflops_per_s": attained,
            "share_of_peak": attained / peak if peak else nan,
        }

    def cold_start(self) -> pd.DataFrame:
        """Per cell: model load time, first call and warm median, apart from each other.

        ``load_s`` is per worker, so cells that share a runtime and thread count share it;
        ``first_ms`` is the first call at that batch size, and ``first_over_warm`` its ratio
        to the warm median.
        """
        columns = ["model", "runtime", "batch_size", "threads", "status", "load_s", "first_ms"]
        table = self.to_pandas()[[*columns, "median_ms"]].copy()
        first = table["first_ms"].astype(float)
        table["first_over_warm"] = first / table["median_ms"].astype(float)
        return table.rename(columns={"median_ms": "warm_median_ms"})

    def _display_rows(self) -> list[tuple[str, ...]]:
        rows = []
        for item in self.measurements:
            stats, ratio = item.stats, self.speedups.get(item.cell)
            median = (
                f"{stats.median_ms:.3g} [{stats.ci_low_ms:.3g}, {stats.ci_high_ms:.3g}]"
                if stats
                else "-"
            )
            speed = (
                f"{ratio.value:.3g}x [{ratio.low:.3g}, {ratio.high:.3g}]"
                if ratio and ratio.rounds
                else "-"
            )
            verdict = self.verdict(item)
            if not item.ok:
                verdict = f"{item.status}: {_first_line(item.cause)}"
            elif item.noisy:
                verdict += f" (noisy: {item.noise_cores:.2f} cores busy elsewhere)"
            threads = "default" if item.cell.threads is None else str(item.cell.threads)
            row = (
                item.cell.label,
                str(item.cell.batch_size),
                threads,
                median,
                f"{item.throughput_per_s:,.0f}" if item.ok else "-",
                speed,
                verdict,
            )
            if self.flops_per_sample:
                row = (*row[:5], self._roofline_text(item), *row[5:])
            rows.append(row)
        return rows

    def _roofline_text(self, item: Measurement) -> str:
        columns = self._roofline_columns(item)
        attained, share = columns["gflops_per_s"], columns["share_of_peak"]
        if math.isnan(attained):
            return "-"
        return f"{attained:,.1f}" + ("" if math.isnan(share) else f" ({share:.0%})")

    def _headers(self) -> tuple[str, ...]:
        if not self.flops_per_sample:
            return self._HEADERS
        roofline = "GFLOP/s (of peak)" if self.peak_gflops else "GFLOP/s"
        return (*self._HEADERS[:5], roofline, *self._HEADERS[5:])

    _HEADERS = (
        "runtime",
        "batch",
        "threads",
        "median ms [95% CI]",
        "samples/s",
        "speed-up [95% CI]",
        "verdict",
    )

    def _headline(self) -> list[str]:
        against = f"speed-ups over {self.reference}" if self.reference else "no baseline"
        lines = [f"{self.model}: {len(self.measurements)} cells, {against}"]
        for (batch, threads), label in self.winners().items():
            where = f"batch {batch}" + ("" if threads is None else f", {threads} threads")
            lines.append(f"fastest at {where}: {label}")
        noisy = [m for m in self.measurements if m.noisy]
        if noisy:
            lines.append(
                f"warning: {len(noisy)} cells ran while other processes used more than "
                "0.2 cores; their numbers are not to be trusted, re-run on a quiet machine"
            )
        return lines

    def __str__(self) -> str:
        from workbench._html import text_table

        return "\n".join([*self._headline(), text_table(self._headers(), self._display_rows())])

    def __repr__(self) -> str:
        return f"<Results {self.model}: {len(self.measurements)} cells>\n{self}"

    def _repr_html_(self) -> str:
        from workbench._html import STYLE, escape, table

        head = "<br>".join(escape(line) for line in self._headline())
        return f"{STYLE}<div>{head}</div>" + table(self._headers(), self._display_rows())

    # -- plots and reports --------------------------------------------------------------------

    def plot(self, kind: str | None = None) -> go.Figure | list[go.Figure]:
        """The fitting figure(s), or one by name: speedup, latency, throughput, cold-start,
        roofline (the latter needs the FLOPs and the machine's peak, see ``with_roofline``)."""
        from workbench import viz

        table = self.to_pandas()
        if kind is None:
            return viz.choose(table, self.samples())
        makers = {
            "speedup": lambda: viz.speedup(table),
            "latency": lambda: viz.latency_distribution(self.samples()),
            "throughput": lambda: viz.throughput_vs_batch(table),
            "cold-start": lambda: viz.cold_start(table),
            "roofline": self.roofline,
        }
        if kind not in makers:
            raise ValueError(f"plot kind {kind!r} is unknown; choose one of {', '.join(makers)}.")
        return makers[kind]()

    def roofline(self, peak_gflops: float | None = None) -> go.Figure:
        """Attained GFLOP/s per cell against the peak (this record's own when not given)."""
        from workbench.viz.roofline import roofline

        return roofline(self.to_pandas(), peak_gflops or self.peak_gflops)

    def to_html(self, path: str | Path, title: str | None = None) -> Path:
        """Write one self-contained HTML report (plots, table, environment); no network needed."""
        from workbench._html import STYLE, table
        from workbench.viz.report import write_report

        figures = self.plot()
        sections = [
            ("Results", STYLE + self._repr_html_()),
            ("Environment", table(("", ""), self.environment.rows())),
        ]
        if self.export_parity is not None:
            sections.append(("Export parity", self.export_parity._repr_html_()))
        return write_report(
            Path(path),
            title or f"Benchmark of {self.model}",
            figures if isinstance(figures, list) else [figures],
            sections,
            sections_before=1,
        )


def _baseline_for(
    measurements: Sequence[Measurement], item: Measurement, reference: str | None
) -> Measurement | None:
    for other in measurements:
        if (
            other.cell.label == reference
            and other.ok
            and other.cell.batch_size == item.cell.batch_size
            and other.cell.threads == item.cell.threads
        ):
            return other
    return None


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def with_roofline(
    results: Results,
    source: Artifact | Summary | int | None,
    peak_gflops: float | None = None,
) -> Results:
    """A copy of ``results`` that knows the model's FLOPs per sample and the machine's peak.

    ``source`` is the benchmarked artifact (it is inspected), its summary, or a FLOP count.
    A summary whose count is a lower bound gives attained GFLOP/s that are lower bounds too.
    """
    if source is None or isinstance(source, numbers.Integral):
        flops = None if source is None else int(source)
    elif hasattr(source, "flops"):
        flops = source.flops
    else:
        from workbench.inspect import inspect

        flops = inspect(source).flops
    if peak_gflops is not None and not peak_gflops > 0:
        raise ValueError(f"peak_gflops must be a positive number; got {peak_gflops!r}.")
    return dataclasses.replace(results, flops_per_sample=flops, peak_gflops=peak_gflops)
