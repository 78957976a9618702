"""Showing figures from a magic in every front end, including a terminal IPython."""

from __future__ import annotations

from typing import Any

from IPython.display import display

PLOTLY_MIME = "application/vnd.plotly.v1+json"


def show_figure(figure: Any) -> None:
    """In a kernel, plotly's chosen renderer; elsewhere the figure's data, never a browser.

    NOTE: outside a kernel plotly's default renderer opens a web browser, which a terminal
    session (or a test shell) must not do; there the figure is published as its plotly MIME
    bundle with a one-line text fallback.
    """
    if _in_kernel():
        display(figure)
        return
    title = figure.layout.title.text or "figure"
    display(
        {PLOTLY_MIME: figure.to_plotly_json(), "text/plain": f"<plotly figure: {title}>"}, raw=True
    )


def _in_kernel() -> bool:
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
