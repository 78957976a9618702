"""Figures of the optimization lab: the Pareto front, the waterfall of passes, the variants.

Each function takes the tidy table that ``Tuning`` or ``Variants`` gives and returns a figure
without showing it.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd
import plotly.graph_objects as go

from workbench._html import escape
from workbench.viz.figures import COLOURS, TEMPLATE

_STATUS_STYLE = {
    "recommended": ("star", 18, "#1a7f37"),
    "in budget": ("circle", 10, COLOURS[0]),
    "pruned": ("circle-open", 9, "#8c959f"),
    "reference": ("diamond", 11, "#444c56"),
    "over budget": ("x", 10, "#cf222e"),
    "accuracy unknown": ("square-open", 9, "#bf8700"),
}


def pareto_figure(table: pd.DataFrame, max_drop: float, metric: str, title: str) -> go.Figure:
    """Latency (log) against accuracy drop; the front joined; the accuracy budget shaded."""
    fig = go.Figure()
    usable = table[table["median_ms"].notna()].copy()
    usable["drop_shown"] = usable["drop"].where(usable["drop"].notna(), other=math.nan)
    for status, (symbol, size, colour) in _STATUS_STYLE.items():
        rows = usable[usable["status"] == status]
        if rows.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=rows["median_ms"],
                y=rows["drop_shown"].fillna(0.0),
                mode="markers",
                name=status,
                marker={"symbol": symbol, "size": size, "color": colour},
                customdata=list(
                    zip(
                        rows["variant"].map(escape),
                        rows["runtime"].map(escape),
                        rows["threads"].map(_threads),
                        rows["low_ms"],
                        rows["high_ms"],
                        rows["drop"].map(_drop),
                        strict=True,
                    )
                ),
                hovertemplate=(
                    "<b>%{customdata[0]}</b> on %{customdata[1]}, %{customdata[2]} threads<br>"
                    "%{x:.4g} ms [%{customdata[3]:.4g}, %{customdata[4]:.4g}]<br>"
                    "drop %{customdata[5]}<extra>" + escape(status) + "</extra>"
                ),
            )
        )
    front = usable[usable["front"]].sort_values("median_ms")
    if not front.empty:
        fig.add_trace(
            go.Scatter(
                x=front["median_ms"],
                y=front["drop"],
                mode="lines",
                line={"shape": "hv", "dash": "dot", "color": "#57606a"},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    fig.add_hrect(
        y0=-1, y1=max_drop, fillcolor="#2da44e", opacity=0.08, line_width=0,
        annotation_text=f"accuracy budget ({max_drop:g})", annotation_position="top left",
    )  # fmt: skip
    spread = float(usable["drop"].abs().max()) if not usable.empty else 0.0
    top = max(max_drop * 2, 0.0 if math.isnan(spread) else spread * 1.15, 1e-3)
    fig.update_yaxes(
        title=f"{metric or 'metric'} drop from fp32 (lower is better)", range=[-top * 0.1, top]
    )
    fig.update_xaxes(title="median latency, ms (log)", type="log")
    fig.update_layout(template=TEMPLATE, title=escape(title), legend_title="cell")
    return fig


def waterfall_figure(steps: pd.DataFrame, title: str) -> go.Figure:
    """From PyTorch eager to the recommendation: what each step did to the latency."""
    fig = go.Figure()
    if steps.empty:
        fig.update_layout(template=TEMPLATE, title=escape(title) + ": nothing to show")
        return fig
    values = steps["median_ms"].to_list()
    measures = ["absolute", *["relative"] * (len(values) - 1)]
    deltas = [values[0], *[b - a for a, b in itertools.pairwise(values)]]
    fig.add_trace(
        go.Waterfall(
            x=steps["step"].map(escape),
            y=deltas,
            measure=measures,
            text=[f"{v:.4g} ms" for v in values],
            textposition="outside",
            decreasing={"marker": {"color": "#2da44e"}},
            increasing={"marker": {"color": "#cf222e"}},
            totals={"marker": {"color": COLOURS[0]}},
            hovertemplate="%{x}: %{text}<extra></extra>",
        )
    )
    fig.update_yaxes(title="median latency, ms")
    fig.update_layout(template=TEMPLATE, title=escape(title) + ": what each step contributed")
    return fig


def variants_figure(table: pd.DataFrame) -> go.Figure:
    """Each variant's size and its error against its parent, coloured by status."""
    fig = go.Figure()
    made = table[table["megabytes"].notna()]
    for index, status in enumerate(pd.unique(made["status"])):
        rows = made[made["status"] == status]
        fig.add_trace(
            go.Bar(
                x=rows["variant"].map(escape),
                y=rows["megabytes"],
                name=status,
                marker_color=COLOURS[index % len(COLOURS)],
                customdata=list(zip(rows["max_abs"], rows["drop"].map(_drop), strict=True)),
                hovertemplate=(
                    "%{x}: %{y:.3g} MiB<br>max |Δ| vs parent %{customdata[0]:.3g}<br>"
                    "drop %{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig.update_yaxes(title="size, MiB")
    fig.update_layout(template=TEMPLATE, title="Variants: size, with error on hover")
    return fig


def _threads(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "default"
    return str(int(value))  # type: ignore[call-overload]


def _drop(value: float) -> str:
    return "unknown" if value is None or math.isnan(value) else f"{value:+.4f}"


def sensitivity_figure(layers: pd.DataFrame, curve: pd.DataFrame, title: str) -> go.Figure:
    """Left, what keeping each group in fp32 wins back; right, the drop as groups stay fp32."""
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.45, 0.55], specs=[[{}, {"secondary_y": True}]],
        subplot_titles=("metric won back in fp32, per group", "trade-off in ranked order"),
    )  # fmt: skip
    shown = layers.head(30).iloc[::-1]  # the most sensitive at the top
    fig.add_trace(
        go.Bar(
            x=shown["recovered"],
            y=[f"#{rank}" for rank in shown["rank"]],
            orientation="h",
            marker_color=["#cf222e" if flag else COLOURS[0] for flag in shown["worth_excluding"]],
            customdata=list(
                zip(shown["layer"].map(escape), shown["nodes"].map(escape), strict=True)
            ),
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>won back %{x:+.4f}"
            "<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=curve["kept"],
            y=curve["drop"],
            mode="lines+markers",
            name="metric drop",
            customdata=curve["added"].map(lambda name: escape(name) or "nothing (all int8)"),
            hovertemplate="%{x} in fp32, last %{customdata}<br>drop %{y:+.4f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=curve["kept"], y=curve["megabytes"], mode="lines", name="size, MiB",
            line={"dash": "dot", "color": "#8c959f"}, hovertemplate="%{y:.3g} MiB<extra></extra>",
        ),
        row=1, col=2, secondary_y=True,
    )  # fmt: skip
    fig.update_xaxes(title="metric won back", row=1, col=1)
    fig.update_yaxes(title="rank", row=1, col=1)
    fig.update_xaxes(title="groups kept in fp32", dtick=1, row=1, col=2)
    fig.update_yaxes(title="drop from fp32", row=1, col=2, secondary_y=False)
    fig.update_yaxes(title="size, MiB", row=1, col=2, secondary_y=True)
    fig.update_layout(template=TEMPLATE, title=escape(title))
    return fig
