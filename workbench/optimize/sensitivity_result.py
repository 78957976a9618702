"""What sensitivity() found: each layer's cost in int8, the ones worth keeping fp32, the curve."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench import _html

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.optimize.metrics import ErrorStats
    from workbench.optimize.variant import Variant


@dataclass(frozen=True)
class Trial:
    """One quantization measured on the data: its task metric, its error against fp32, its size.

    ``status`` is ``ok``; ``skipped`` when nothing was left to quantize (the model stays fp32);
    ``failed``; or ``not measured`` when the time budget ran out first.
    """

    status: str
    reason: str = ""
    metric: float = math.nan
    drop: float = math.nan
    errors: ErrorStats | None = None
    megabytes: float = math.nan


@dataclass(frozen=True)
class Layer:
    """A group of nodes kept in fp32 while the rest is quantized, and what that won back."""

    name: str
    nodes: tuple[str, ...]
    op_types: tuple[str, ...]
    trial: Trial
    recovered: float
    """The metric with this group in fp32, less the metric with everything quantized."""
    share: float
    """``recovered`` as a share of the full quantization's drop (NaN when nothing dropped)."""
    worth_excluding: bool

    def row(self, rank: int) -> dict[str, Any]:
        return {
            "rank": rank,
            "layer": self.name,
            "nodes": ", ".join(self.nodes),
            "op_types": ", ".join(self.op_types),
            "status": self.trial.status,
            "metric": self.trial.metric,
            "drop": self.trial.drop,
            "recovered": self.recovered,
            "share": self.share,
            "max_abs": _error(self.trial, "max_abs", 0.0),
            "mean_abs": _error(self.trial, "mean_abs", 0.0),
            "cosine": _error(self.trial, "cosine", 1.0),
            "worth_excluding": self.worth_excluding,
        }


@dataclass(frozen=True)
class Step:
    """A point of the trade-off: the first ``kept`` ranked groups in fp32, the rest quantized."""

    kept: int
    added: str
    """The group that joined the fp32 ones at this point ("" at the start)."""
    nodes: int
    trial: Trial

    def row(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "added": self.added,
            "nodes_fp32": self.nodes,
            "status": self.trial.status,
            "metric": self.trial.metric,
            "drop": self.trial.drop,
            "megabytes": self.trial.megabytes,
        }


@dataclass(frozen=True)
class Sensitivity:
    """Quantization debugging of one model: returned by ``workbench.optimize.sensitivity``.

    ``layers`` are ranked, the most sensitive first; ``exclude`` lists the nodes worth keeping in
    fp32; ``variant`` is the model quantized without them; ``curve`` is the trade-off.
    """

    method: str
    metric_name: str
    fp32_metric: float
    quantized: Trial
    layers: tuple[Layer, ...]
    curve: tuple[Step, ...]
    exclude: tuple[str, ...]
    variant: Variant

    def to_pandas(self) -> pd.DataFrame:
        """One row per group of nodes, ranked: what keeping it in fp32 wins back."""
        import pandas as pd

        return pd.DataFrame([layer.row(rank) for rank, layer in enumerate(self.layers, 1)])

    def trade_off(self) -> pd.DataFrame:
        """One row per point of the curve: the metric drop and size with ``kept`` groups in fp32."""
        import pandas as pd

        return pd.DataFrame([step.row() for step in self.curve])

    def plot(self) -> go.Figure:
        """What each group wins back in fp32, and the drop as the ranked groups stay fp32."""
        from workbench.viz.optimize import sensitivity_figure

        title = f"{self.method} sensitivity on {self.metric_name}"
        return sensitivity_figure(self.to_pandas(), self.trade_off(), title)

    def _summary(self) -> list[str]:
        lines = [
            f"{self.method} on {self.metric_name}: fp32 {self.fp32_metric:.4f}, everything "
            f"quantized {self.quantized.metric:.4f} (drop {self.quantized.drop:+.4f})"
        ]
        if self.exclude:
            lines.append(
                f"worth keeping in fp32: {', '.join(self.exclude)}; {self.variant.name} "
                f"{self.variant.metric:.4f} (drop {self.variant.drop:+.4f})"
            )
        else:
            lines.append("no layer wins back a meaningful share of the drop in fp32")
        return lines

    def _rows(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        headers = ("rank", "layer", "ops", "status", "metric", "recovered", "cosine", "exclude")
        rows = [
            (
                row["rank"],
                row["layer"],
                row["op_types"],
                row["status"],
                _number(row["metric"]),
                _number(row["recovered"], signed=True),
                _number(row["cosine"]),
                "yes" if row["worth_excluding"] else "",
            )
            for row in (layer.row(rank) for rank, layer in enumerate(self.layers, 1))
        ]
        return headers, rows

    def _curve_rows(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        headers = ("kept in fp32", "added", "drop", "size")
        rows = [
            (step.kept, step.added, _number(step.trial.drop, signed=True), _size(step.trial))
            for step in self.curve
        ]
        return headers, rows

    def __str__(self) -> str:
        return "\n\n".join(
            [
                "\n".join(self._summary()),
                _html.text_table(*self._rows()),
                _html.text_table(*self._curve_rows()),
            ]
        )

    def _repr_html_(self) -> str:
        summary = "".join(f"<p>{_html.escape(line)}</p>" for line in self._summary())
        layers = _html.table(*self._rows())
        curve = _html.table(*self._curve_rows())
        return _html.STYLE + summary + layers + "<p class='wb-note'>trade-off</p>" + curve

    def __repr__(self) -> str:
        groups = len(self.layers)
        return f"Sensitivity({self.method!r}, {groups} groups, exclude={list(self.exclude)!r})"


def _error(trial: Trial, name: str, in_fp32: float) -> float:
    """An error statistic against fp32; a trial that left nothing quantized is fp32 itself."""
    if trial.errors is not None:
        return float(getattr(trial.errors, name))
    return in_fp32 if trial.status == "skipped" else math.nan


def _number(value: float, signed: bool = False) -> str:
    if value is None or math.isnan(value):
        return ""
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _size(trial: Trial) -> str:
    return "" if math.isnan(trial.megabytes) else f"{trial.megabytes:.3f} MiB"
