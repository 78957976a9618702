"""Two figures about where the time goes: the compute a cell attained, and its cold start.

Both read the tidy table of ``Results.to_pandas()``; ``cold_start`` also reads the table of
``Results.cold_start()``. Neither shows the figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench._html import escape
from workbench.viz.figures import (
    COLOURS,
    LOG_SPREAD,
    TIMES,
    WRONG_PATTERN,
    _empty,
    _failure_note,
    _finish,
    _labels,
    _spread,
    _title,
    _wrong_outputs,
)

PEAK_COLOUR = "#b00020"


def roofline(table: pd.DataFrame, peak_gflops: float | None) -> go.Figure:
    """Bars of the GFLOP/s each cell attained, per runtime and batch size, under the peak.

    Each bar is labelled with its share of the peak; a dashed line marks the peak itself.
    """
    title = _title("Attained compute against the machine's peak", table)
    table = table.reset_index(drop=True)  # labels are matched to rows by index
    labels = _labels(table)
    note = _failure_note(table, labels)
    attained = _numbers(table, "gflops_per_s")
    bars = table[(table["status"] == "ok") & np.isfinite(attained)]
    if bars.empty:
        why = (
            "The model's FLOPs per sample are unknown, so no GFLOP/s can be shown; "
            "give them with workbench.results.with_roofline."
            if (table["status"] == "ok").any()
            else "No cell was measured successfully."
        )
        return _empty(title, why, note)

    fig = go.Figure()
    for index, batch in enumerate(sorted(bars["batch_size"].unique())):
        rows = bars[bars["batch_size"] == batch]
        colour = COLOURS[index % len(COLOURS)]
        fig.add_trace(_attained_bars(rows, labels[rows.index], batch, colour, peak_gflops))

    top = float(attained[bars.index].max())
    if peak_gflops:
        fig.add_hline(
            y=peak_gflops,
            line_dash="dash",
            line_color=PEAK_COLOUR,
            annotation_text=escape(f"measured peak {peak_gflops:,.0f} GFLOP/s"),
            annotation_position="top left",
        )
        top = max(top, peak_gflops)
    fig.update_xaxes(title="Runtime")
    fig.update_yaxes(title="Attained GFLOP/s (higher is better)", range=[0, 1.15 * top])
    fig.update_layout(barmode="group", showlegend=len(fig.data) > 1, legend_title="Cells")
    return _finish(fig, title, height=460, note=note)


def _attained_bars(
    rows: pd.DataFrame, labels: pd.Series, batch: object, colour: str, peak: float | None
) -> go.Bar:
    value = rows["gflops_per_s"].to_numpy(float)
    wrong = _wrong_outputs(rows).to_numpy()
    text = [
        (f"{v / peak:.0%} of peak" if peak else f"{v:,.1f}") + (", wrong outputs" if w else "")
        for v, w in zip(value, wrong, strict=True)
    ]
    return go.Bar(
        x=labels.to_numpy(),
        y=value,
        name=f"batch {batch}",
        marker={
            "color": colour,
            "opacity": [0.45 if w else 1.0 for w in wrong],
            "pattern": {"shape": [WRONG_PATTERN if w else "" for w in wrong]},
        },
        text=text,
        textposition="outside",
        customdata=rows["median_ms"].to_numpy(float),
        hovertemplate=(
            "%{x}: %{y:,.1f} GFLOP/s, %{text}<br>median %{customdata:.3g} ms"
            "<extra>%{fullData.name}</extra>"
        ),
    )


def cold_start(table: pd.DataFrame) -> go.Figure:
    """Model load time beside the first call and the warm median, so the three stay apart.

    Left: seconds to load the model, one bar per runtime (cells of one worker share it).
    Right: the first call at each batch size against the warm median, in milliseconds.
    """
    title = _title("Cold start: loading and the first call", table)
    table = table.reset_index(drop=True)
    labels = _labels(table)
    note = _failure_note(table, labels)
    ok = table[(table["status"] == "ok") & np.isfinite(_numbers(table, "first_ms"))]
    if ok.empty:
        return _empty(title, "No cell has a first call to show.", note)

    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.35, 0.65],
        subplot_titles=("Loading the model", "First call against warm calls"),
    )
    fig.add_trace(_load_bars(ok, labels[ok.index]), row=1, col=1)
    for trace in _call_bars(ok, labels[ok.index]):
        fig.add_trace(trace, row=1, col=2)

    log = _spread(pd.concat([ok["first_ms"], _warm(ok)]).astype(float)) > LOG_SPREAD
    fig.update_yaxes(title="Seconds", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(
        title="Milliseconds per call" + (", log scale" if log else ""),
        type="log" if log else "linear",
        row=1,
        col=2,
    )
    fig.update_layout(barmode="group", legend_title="Time")
    return _finish(fig, title, height=460, note=note)


def _load_bars(rows: pd.DataFrame, labels: pd.Series) -> go.Bar:
    """One bar per worker: cells of one runtime and thread count were loaded once."""
    loads = rows.assign(label=labels).drop_duplicates("label")
    seconds = loads["load_s"].to_numpy(float)
    return go.Bar(
        x=loads["label"].to_numpy(),
        y=seconds,
        name="model load",
        marker_color=COLOURS[2],
        text=[f"{v:.2g} s" for v in seconds],
        hovertemplate="%{x}: loaded in %{y:.3g} s<extra></extra>",
    )


def _call_bars(rows: pd.DataFrame, labels: pd.Series) -> list[go.Bar]:
    """The first call and the warm median of each cell, side by side."""
    if rows["batch_size"].nunique() > 1:
        labels = labels + " · batch " + rows["batch_size"].astype(str)
    first, warm = rows["first_ms"].to_numpy(float), _warm(rows).to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = first / warm
    return [
        go.Bar(
            x=labels.to_numpy(),
            y=first,
            name="first call",
            marker_color=COLOURS[1],
            text=[f"{r:.1f}{TIMES} warm" if np.isfinite(r) else "" for r in ratio],
            hovertemplate="%{x}: first call %{y:.3g} ms, %{text}<extra></extra>",
        ),
        go.Bar(
            x=labels.to_numpy(),
            y=warm,
            name="warm median",
            marker_color=COLOURS[0],
            hovertemplate="%{x}: warm median %{y:.3g} ms<extra></extra>",
        ),
    ]


def _warm(frame: pd.DataFrame) -> pd.Series:
    """The warm median, named ``median_ms`` in the results table and in the cold-start one."""
    name = "warm_median_ms" if "warm_median_ms" in frame else "median_ms"
    return frame[name]


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats, NaN throughout when the table lacks it."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)
