"""Plotly figures of a per-node profile: the slowest nodes, and the time of each op type.

Both take the tidy tables of a :class:`workbench.Profile` (``per_node`` and ``per_op_type``) and
return a figure without showing it. Node names come from model files, so every label is escaped.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench._html import escape
from workbench.viz.figures import COLOURS, TEMPLATE

OTHERS = "all other op types"
NOT_IN_GRAPH = "#9e9e9e"
BAR_HEIGHT = 22


def top_nodes(per_node: pd.DataFrame, top: int = 15) -> go.Figure:
    """Horizontal bars of the ``top`` slowest nodes, coloured by op type, slowest on top.

    Engine layers that are not nodes of the graph are grey, and their names say so.
    """
    rows = per_node.sort_values("ms", ascending=False).head(top).iloc[::-1]
    colours = _op_colours(per_node["op_type"])
    labels = [
        escape(node if in_graph else f"{node} (not in graph)")
        for node, in_graph in zip(rows["node"], rows["in_graph"], strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=rows["ms"].to_numpy(float),
            y=labels,
            orientation="h",
            marker_color=[
                colours[op] if in_graph else NOT_IN_GRAPH
                for op, in_graph in zip(rows["op_type"], rows["in_graph"], strict=True)
            ],
            customdata=list(zip(rows["op_type"].map(escape), rows["share"], strict=True)),
            hovertemplate="%{y}<br>%{customdata[0]}: %{x:.4g} ms per run "
            "(%{customdata[1]:.1%})<extra></extra>",
        )
    )
    fig.update_xaxes(title="time per run (ms)")
    fig.update_yaxes(type="category")
    title = _title(f"The {len(rows)} slowest nodes", per_node)
    return _finish(fig, title, height=120 + BAR_HEIGHT * len(rows))


def op_type_breakdown(per_op_type: pd.DataFrame, top: int = 12) -> go.Figure:
    """Horizontal bars of the share of run time spent in each op type; the rest in one bar."""
    ordered = per_op_type.sort_values("ms", ascending=False)
    ops = list(ordered["op_type"].head(top))
    shares = list(ordered["share"].head(top).astype(float))
    if len(ordered) > top:
        ops.append(OTHERS)
        shares.append(float(ordered["share"].iloc[top:].sum()))
    colours = _op_colours(per_op_type["op_type"])
    fig = go.Figure(
        go.Bar(
            x=shares[::-1],
            y=[escape(op) for op in ops[::-1]],
            orientation="h",
            marker_color=[colours.get(op, NOT_IN_GRAPH) for op in ops[::-1]],
            text=[f"{share:.1%}" for share in shares[::-1]],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1%} of the node time<extra></extra>",
        )
    )
    fig.update_xaxes(title="share of the time per run", tickformat=".0%")
    fig.update_yaxes(type="category")
    return _finish(fig, _title("Time by op type", per_op_type), height=120 + BAR_HEIGHT * len(ops))


def _op_colours(op_types: pd.Series) -> dict[str, str]:
    """One colour per op type, the same in both figures of a profile."""
    names = sorted(set(op_types))
    return {name: COLOURS[index % len(COLOURS)] for index, name in enumerate(names)}


def _title(text: str, table: pd.DataFrame) -> str:
    if table.empty or "runtime" not in table:
        return escape(text)
    return escape(f"{text}: {table['model'].iloc[0]} on {table['runtime'].iloc[0]}")


def _finish(fig: go.Figure, title: str, *, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.02},
        template=TEMPLATE,
        height=max(height, 260),
        margin={"t": 60, "b": 50, "l": 10},
        showlegend=False,
    )
    return fig
