"""The figure of a comparison of two runs: each cell's speed-up of run b over run a."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench._html import escape
from workbench.viz.figures import (
    LOG_SPREAD,
    MAX_FAILURE_LINES,
    TIMES,
    _empty,
    _error_bars,
    _finish,
)

VERDICT_COLOURS = {
    "faster": "#1b7f3b",
    "slower": "#b00020",
    "not distinguishable": "#777777",
}
OTHER_COLOUR = "#e08a00"  # wrong outputs, or a verdict this figure does not know


def comparison(table: pd.DataFrame, title: str = "Run b against run a") -> go.Figure:
    """Speed-up of run b over run a per cell, with 95% interval bars and a line at 1.

    ``table`` is ``Comparison.to_pandas()``; cells without a ratio (missing from one run, or
    failed) are named in a note under the plot.
    """
    title = escape(title)
    table = table.reset_index(drop=True)
    labels = _cell_labels(table)
    value = pd.to_numeric(table["speedup"], errors="coerce")
    shown = table[np.isfinite(value)]
    note = _missing_note(table[~np.isfinite(value)], labels)
    if shown.empty:
        return _empty(title, "No cell was measured in both runs.", note)

    fig = go.Figure()
    for verdict, rows in shown.groupby("verdict", sort=False):
        fig.add_trace(_markers(rows, labels[rows.index], str(verdict)))

    fig.add_vline(x=1, line_dash="dash", line_color="#444", annotation_text=f"1{TIMES}: no change")
    low = shown["speedup_low"].to_numpy(float)
    high = shown["speedup_high"].to_numpy(float)
    log = np.nanmax(high) / max(np.nanmin(low), 1e-12) > LOG_SPREAD / 4
    fig.update_xaxes(
        title=f"Speed-up of run b over run a ({TIMES}, above 1 b is faster)",
        type="log" if log else "linear",
    )
    order = list(pd.unique(labels[shown.index]))
    fig.update_yaxes(title="Cell", categoryorder="array", categoryarray=order, autorange="reversed")
    fig.update_layout(legend_title="Verdict")
    return _finish(fig, title, height=max(320, 160 + 30 * len(order)), note=note)


def _markers(rows: pd.DataFrame, labels: pd.Series, verdict: str) -> go.Scatter:
    value = rows["speedup"].to_numpy(float)
    low = rows["speedup_low"].to_numpy(float)
    high = rows["speedup_high"].to_numpy(float)
    customdata = np.column_stack(
        [low, high, rows["median_a_ms"].to_numpy(float), rows["median_b_ms"].to_numpy(float)]
    )
    return go.Scatter(
        x=value,
        y=labels.to_numpy(),
        mode="markers",
        name=escape(verdict),
        marker={"size": 10, "color": VERDICT_COLOURS.get(verdict, OTHER_COLOUR)},
        error_x=_error_bars(value, low, high),
        customdata=customdata,
        hovertemplate=(
            f"%{{y}}: %{{x:.3g}}{TIMES}, 95% interval %{{customdata[0]:.3g}} to "
            "%{customdata[1]:.3g}<br>median %{customdata[2]:.3g} ms in a, "
            "%{customdata[3]:.3g} ms in b<extra>%{fullData.name}</extra>"
        ),
    )


def _cell_labels(table: pd.DataFrame) -> pd.Series:
    """Escaped "runtime · batch N" names, with threads when the runs sweep over them."""
    labels = table["runtime"].astype(str) + " · batch " + table["batch_size"].astype(str)
    threads = table["threads"].map(lambda t: "default" if t is None or pd.isna(t) else int(t))
    if threads.nunique() > 1:
        labels = labels + " · threads " + threads.astype(str)
    return labels.map(escape)


def _missing_note(rows: pd.DataFrame, labels: pd.Series) -> str:
    lines = [f"{labels[index]}: {escape(verdict)}" for index, verdict in rows["verdict"].items()]
    if len(lines) > MAX_FAILURE_LINES:
        lines[MAX_FAILURE_LINES:] = [f"and {len(lines) - MAX_FAILURE_LINES} more"]
    return "Not compared: " + "<br>".join(lines) if lines else ""
