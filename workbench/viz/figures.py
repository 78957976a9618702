"""Plotly figures drawn from the tidy tables of a study: latency, speed-up and throughput.

Every function takes a pandas table, as given by ``Results.to_pandas()`` (one row per cell) or
``Results.samples()`` (one row per timed call), and returns a figure without showing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from workbench._html import escape

TEMPLATE = "plotly_white"
COLOURS: Sequence[str] = qualitative.Plotly
LOG_SPREAD = 20.0  # above this ratio between slow and fast calls, a log axis reads better
MAX_FAILURE_LINES = 6
WRONG_PATTERN = "/"
TIMES = "\N{MULTIPLICATION SIGN}"
_INTERVAL_COLUMNS = ("median_ms", "ci_low_ms", "ci_high_ms")
_NOTE_PLACE: dict[str, Any] = {  # under the x-axis title, whatever the figure's height
    "xref": "paper", "yref": "paper", "x": 0, "y": 0, "xanchor": "left", "yanchor": "top",
    "yshift": -56, "showarrow": False, "align": "left", "font": {"size": 11, "color": "#b00020"},
}  # fmt: skip


def latency_distribution(samples: pd.DataFrame) -> go.Figure:
    """Box plots of the latency of each call, one box per runtime and batch size."""
    title = _title("Latency per call", samples)
    if samples.empty:
        return _empty(title, "No latency samples were recorded.")

    # NOTE: runtimes sit at integer positions named by tick labels, so that thousands of samples
    # travel as one compact numeric array rather than as a repeated string per call.
    labels = _labels(samples)
    names = list(pd.unique(labels))
    position = labels.map({name: index for index, name in enumerate(names)}).to_numpy(int)
    batches = sorted(samples["batch_size"].unique())

    fig = go.Figure()
    for index, batch in enumerate(batches):
        rows = (samples["batch_size"] == batch).to_numpy()
        fig.add_trace(
            go.Box(
                x=position[rows],
                y=samples["latency_ms"].to_numpy(float)[rows],
                name=f"batch {batch}",
                marker_color=COLOURS[index % len(COLOURS)],
                boxpoints="outliers",
                hovertemplate="%{y:.3g} ms<extra>%{fullData.name}</extra>",
            )
        )

    log = _spread(samples["latency_ms"]) > LOG_SPREAD
    fig.update_xaxes(title="Runtime", tickvals=list(range(len(names))), ticktext=names)
    fig.update_yaxes(title="Latency per call (ms)" + (", log scale" if log else ""))
    fig.update_yaxes(type="log" if log else "linear")
    fig.update_layout(boxmode="group", showlegend=len(batches) > 1, legend_title="Batch size")
    return _finish(fig, title, height=460)


def speedup(table: pd.DataFrame) -> go.Figure:
    """Horizontal bars of each runtime's speed-up over the baseline, with 95% intervals."""
    title = _title("Speed-up over the baseline", table)
    table = table.reset_index(drop=True)  # labels are matched to rows by index
    labels = _labels(table)
    value = pd.to_numeric(table["speedup"], errors="coerce")
    bars = table[(table["status"] == "ok") & np.isfinite(value)]
    note = _failure_note(table, labels)
    if bars.empty:
        return _empty(title, "No runtime has a speed-up over a baseline to show.", note)

    fig = go.Figure()
    batches = sorted(bars["batch_size"].unique())
    for index, batch in enumerate(batches):
        rows = bars[bars["batch_size"] == batch]
        colour = COLOURS[index % len(COLOURS)]
        wrong = _wrong_outputs(rows)
        for part, marked in ((rows[~wrong], False), (rows[wrong], True)):
            if not part.empty:
                fig.add_trace(_speedup_bars(part, labels[part.index], batch, colour, marked))

    baselines = [str(name) for name in pd.unique(table["baseline"].dropna())]
    fig.add_vline(
        x=1,
        line_dash="dash",
        line_color="#444",
        annotation_text=escape(f"1{TIMES} = {' / '.join(baselines) or 'baseline'}"),
        annotation_position="top",
    )
    order = list(pd.unique(labels[bars.index]))
    fig.update_yaxes(title="Runtime", categoryorder="array", categoryarray=order)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(
        title=f"Speed-up over the baseline ({TIMES}, higher is faster)", rangemode="tozero"
    )
    fig.update_layout(barmode="group", showlegend=len(fig.data) > 1, legend_title="Cells")
    height = max(320, 160 + 26 * len(order) * len(batches))
    return _finish(fig, title, height=height, note=note)


def _speedup_bars(
    rows: pd.DataFrame, labels: pd.Series, batch: Any, colour: str, wrong: bool
) -> go.Bar:
    value = rows["speedup"].to_numpy(float)
    low = rows["speedup_low"].to_numpy(float)
    high = rows["speedup_high"].to_numpy(float)
    verdicts = rows["verdict"].fillna("").astype(str)
    text = [
        "wrong outputs" if wrong else f"{v:.2f}{TIMES} {d}"
        for v, d in zip(value, verdicts, strict=True)
    ]
    customdata = np.column_stack([rows[c].to_numpy(float) for c in _INTERVAL_COLUMNS] + [low, high])
    return go.Bar(
        x=value,
        y=labels.to_numpy(),
        orientation="h",
        name=f"batch {batch}" + (", wrong outputs" if wrong else ""),
        offsetgroup=f"batch {batch}",
        legendgroup=f"batch {batch}",
        marker={
            "color": colour,
            "opacity": 0.45 if wrong else 1.0,
            "pattern": {"shape": WRONG_PATTERN if wrong else ""},
        },
        error_x=_error_bars(value, low, high),
        text=text,
        textposition="auto",
        customdata=customdata,
        hovertemplate=(
            f"%{{y}}: %{{x:.2f}}{TIMES}, 95% interval "
            "%{customdata[3]:.2f} to %{customdata[4]:.2f}"
            "<br>median %{customdata[0]:.3g} ms, 95% interval %{customdata[1]:.3g} to "
            "%{customdata[2]:.3g} ms"
            "<extra>%{fullData.name}</extra>"
        ),
    )


def throughput_vs_batch(table: pd.DataFrame) -> go.Figure:
    """Lines of throughput against batch size, one per runtime, with 95% intervals."""
    title = _title("Throughput against batch size", table)
    table = table.reset_index(drop=True)  # labels are matched to rows by index
    labels = _labels(table)
    note = _failure_note(table, labels)
    ok = table[table["status"] == "ok"].sort_values("batch_size", kind="stable")
    if ok.empty:
        return _empty(title, "No cell was measured successfully.", note)

    fig = go.Figure()
    ok_labels = labels[ok.index]
    for index, name in enumerate(pd.unique(ok_labels)):
        rows = ok[ok_labels == name]
        fig.add_trace(_throughput_line(rows, str(name), COLOURS[index % len(COLOURS)]))

    batches = sorted(int(batch) for batch in ok["batch_size"].unique())
    fig.update_xaxes(title="Batch size (samples per call)", type="log", tickvals=batches)
    fig.update_yaxes(title="Throughput (samples/s)", rangemode="tozero")
    fig.update_layout(legend_title="Runtime", hovermode="closest")
    return _finish(fig, title, height=460, note=note)


def _throughput_line(rows: pd.DataFrame, name: str, colour: str) -> go.Scatter:
    value = rows["throughput_per_s"].to_numpy(float)
    median, ci_low, ci_high = (rows[c].to_numpy(float) for c in _INTERVAL_COLUMNS)

    # Throughput is batch / median, so the slow end of the median's interval gives its low end.
    with np.errstate(divide="ignore", invalid="ignore"):
        low = value * median / ci_high
        high = value * median / ci_low

    wrong = _wrong_outputs(rows).to_numpy()
    return go.Scatter(
        x=rows["batch_size"].to_numpy(int),
        y=value,
        name=name,
        mode="lines+markers",
        line_color=colour,
        marker={
            "size": [12 if w else 7 for w in wrong],
            "symbol": ["x" if w else "circle" for w in wrong],
        },
        error_y=_error_bars(value, low, high),
        customdata=np.column_stack([median, low, high]),
        text=["wrong outputs" if w else "" for w in wrong],
        hovertemplate=(
            "batch %{x}: %{y:.4g} samples/s, 95% interval %{customdata[1]:.4g} to "
            "%{customdata[2]:.4g}"
            "<br>median %{customdata[0]:.3g} ms %{text}<extra>%{fullData.name}</extra>"
        ),
    )


def choose(table: pd.DataFrame, samples: pd.DataFrame | None = None) -> list[go.Figure]:
    """The figures that suit a study's results; an empty list when no cell was measured."""
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return []

    figures = []
    has_speedup = np.isfinite(pd.to_numeric(ok["speedup"], errors="coerce")).any()
    if has_speedup and ok["baseline"].notna().any() and ok["runtime"].nunique() > 1:
        figures.append(speedup(table))
    if ok["batch_size"].nunique() >= 2:
        figures.append(throughput_vs_batch(table))

    if samples is not None and not samples.empty:
        if "model" in ok and "model" not in samples and ok["model"].nunique() == 1:
            samples = samples.assign(model=ok["model"].iloc[0])  # so its title names the model
        figures.append(latency_distribution(samples))
    elif not figures:
        # Without samples there is no distribution, but the medians still make one figure.
        figures.append(throughput_vs_batch(table))
    return figures


def _error_bars(value: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, Any]:
    """Plotly's error bars, which count from the value, for an interval given by its ends."""
    return {"type": "data", "symmetric": False, "array": high - value, "arrayminus": value - low}


def _labels(frame: pd.DataFrame) -> pd.Series:
    """Runtime names, with the thread count added when the table sweeps over threads."""
    names = frame["runtime"].astype(str)
    if "threads" not in frame:
        return names
    threads = frame["threads"].map(_threads_text)
    return names + " · " + threads if threads.nunique() > 1 else names


def _threads_text(value: Any) -> str:
    if value is None or pd.isna(value):
        return "default threads"
    return "1 thread" if int(value) == 1 else f"{int(value)} threads"


def _wrong_outputs(frame: pd.DataFrame) -> pd.Series:
    """True for cells whose outputs differ from the reference beyond their tolerance."""
    parity = frame["parity_ok"] if "parity_ok" in frame else pd.Series(None, index=frame.index)
    failed_parity = ~parity.astype("boolean").fillna(True)
    verdict = frame["verdict"] if "verdict" in frame else pd.Series("", index=frame.index)
    return (failed_parity | (verdict == "wrong outputs")).astype(bool)


def _failure_note(table: pd.DataFrame, labels: pd.Series) -> str:
    """Escaped lines naming the cells that gave no measurement, and why, one line per cause."""
    failed = table[table["status"] != "ok"]
    causes = failed["cause"] if "cause" in failed else pd.Series(None, index=failed.index)
    groups: dict[tuple[str, str, str], list[str]] = {}
    for index, row in failed.iterrows():
        cause = "" if pd.isna(causes[index]) else str(causes[index]).strip()
        key = (labels[index], str(row["status"]), cause[:77] + "..." if len(cause) > 80 else cause)
        groups.setdefault(key, []).append(str(row["batch_size"]))

    lines = [
        escape(
            f"{label} at batch {', '.join(batches)}: {status}" + (f" ({cause})" if cause else "")
        )
        for (label, status, cause), batches in groups.items()
    ]
    if len(lines) > MAX_FAILURE_LINES:
        lines[MAX_FAILURE_LINES:] = [f"and {len(lines) - MAX_FAILURE_LINES} more"]
    return "Not plotted: " + "<br>".join(lines) if lines else ""


def _spread(values: pd.Series) -> float:
    positive = values[values > 0]
    if positive.empty:
        return 1.0
    return float(positive.quantile(0.99) / positive.quantile(0.01))


def _title(text: str, frame: pd.DataFrame) -> str:
    models = pd.unique(frame["model"].dropna()) if "model" in frame else []
    return escape(f"{text}: {models[0]}" if len(models) == 1 else text)


def _empty(title: str, message: str, note: str = "") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=escape(message), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _finish(fig, title, height=320, note=note)


def _finish(fig: go.Figure, title: str, *, height: int, note: str = "") -> go.Figure:
    """Apply the shared look, and put the note of failed cells under the plot."""
    lines = note.count("<br>") + 1 if note else 0
    if note:
        fig.add_annotation(text=note, **_NOTE_PLACE)
    fig.update_layout(
        title={"text": title, "x": 0.02},
        template=TEMPLATE,
        height=height + 16 * lines,
        margin={"t": 70, "b": 70 + 16 * lines},
    )
    return fig
