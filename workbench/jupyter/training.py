"""Live training curves in a notebook: loss and accuracy against the step, redrawn in place.

The curves are a static plotly figure shown through a display handle and replaced as training
goes on, not a widget: that draws in JupyterLab, Notebook 7 and VS Code alike, and the last
picture stays in a saved notebook.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go
    from IPython.display import DisplayHandle

# A metric whose name holds one of these words is a score between 0 and 1 (or a percentage),
# drawn on its own axis below the losses.
SCORE_WORDS = ("acc", "precision", "recall", "f1", "auc", "iou", "score")
LOSS_COLOURS = ("#1f77b4", "#ff7f0e", "#8c564b", "#7f7f7f", "#bcbd22")
SCORE_COLOURS = ("#2ca02c", "#d62728", "#9467bd", "#e377c2", "#17becf")


class TrainingPlot:
    """Curves of loss, accuracy and any other metric, updated per epoch or per step.

    Call ``update(loss=..., accuracy=...)`` as training goes; the figure is redrawn at most
    every ``every_s`` seconds, and always on the first update and on ``finish()``. Used as a
    context manager it finishes on leaving the block.
    """

    def __init__(
        self,
        metrics: Iterable[str] = ("loss", "accuracy"),
        *,
        title: str = "Training",
        every_s: float = 0.5,
    ) -> None:
        self.title = title
        self.every_s = every_s
        self._steps: list[float] = []
        # NOTE: None marks a metric that was not reported at a step (the line joins over it);
        # a reported NaN or infinity stays as it is and leaves a gap in the line.
        self._values: dict[str, list[float | None]] = {str(name): [] for name in metrics}
        self._handle: DisplayHandle | None = None
        self._drawn_at: float | None = None

    def update(self, step: float | None = None, **values: Any) -> None:
        """Record one point per metric given; ``step`` defaults to one past the last step."""
        if not values:
            raise InputError(
                "update() needs at least one metric value, such as update(loss=0.31, "
                "accuracy=0.92)."
            )
        numbers = {name: _number(name, value) for name, value in values.items()}
        if step is None:
            step = self._steps[-1] + 1 if self._steps else 1
        self._steps.append(_number("step", step))
        for name in numbers:
            self._values.setdefault(name, [None] * (len(self._steps) - 1))
        for name, column in self._values.items():
            column.append(numbers.get(name))

        now = time.monotonic()
        if self._drawn_at is None or now - self._drawn_at >= self.every_s:
            self._draw()

    def finish(self) -> None:
        """Draw the final state, whatever the throttle says."""
        self._draw()

    @property
    def history(self) -> pd.DataFrame:
        """One row per update: the step and a column per metric (NaN where not reported)."""
        import pandas as pd

        columns = {
            name: [math.nan if value is None else value for value in column]
            for name, column in self._values.items()
        }
        return pd.DataFrame({"step": self._steps, **columns})

    def figure(self) -> go.Figure:
        """The curves as they stand: losses above, scores (0 to 1) below when there are both."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        losses = [name for name in self._values if not _is_score(name)]
        scores = [name for name in self._values if _is_score(name)]
        both = bool(losses and scores)
        fig = make_subplots(rows=2, cols=1, shared_xaxes=True) if both else go.Figure()

        for names, colours, row in ((losses, LOSS_COLOURS, 1), (scores, SCORE_COLOURS, 2)):
            for index, name in enumerate(names):
                trace = self._curve(name, colours[index % len(colours)])
                fig.add_trace(trace, row=row if both else None, col=1 if both else None)

        self._label_axes(fig, losses, scores, both)
        fig.update_layout(
            title={"text": self.title, "x": 0.02},
            template="plotly_white",
            height=520 if both else 360,
            hovermode="x unified",
            margin={"t": 60, "b": 50},
        )
        return fig

    def _curve(self, name: str, colour: str) -> go.Scatter:
        import plotly.graph_objects as go

        reported = [
            (step, value)
            for step, value in zip(self._steps, self._values[name], strict=True)
            if value is not None
        ]
        return go.Scatter(
            x=[step for step, _ in reported],
            y=[value if math.isfinite(value) else None for _, value in reported],
            name=name,
            mode="lines+markers" if len(reported) < 50 else "lines",
            line={"color": colour},
            connectgaps=False,
        )

    def _label_axes(self, fig: go.Figure, losses: list[str], scores: list[str], both: bool) -> None:
        fig.update_xaxes(title="Step", row=2 if both else None, col=1 if both else None)
        if losses:
            fig.update_yaxes(title="Loss", row=1 if both else None, col=1 if both else None)
        if scores:
            finite = [v for name in scores for v in self._values[name] if _finite(v)]
            top = max(finite, default=1.0)
            axis: dict[str, Any] = {"title": "Score", "rangemode": "tozero"}
            if top <= 1:  # a share: show it as a percentage on a fixed 0 to 100% axis
                axis.update(range=[0, 1.02], tickformat=".0%")
            fig.update_yaxes(**axis, row=2 if both else None, col=1 if both else None)

    def _draw(self) -> None:
        bundle = figure_bundle(self.figure())
        if self._handle is None:
            self._handle = show_bundle(bundle)
        else:
            self._handle.update(bundle, raw=True)
        self._drawn_at = time.monotonic()

    def __enter__(self) -> TrainingPlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def _ipython_display_(self) -> None:
        # Later redraws replace this output: the plot lives where it was last shown.
        self._handle = show_bundle(figure_bundle(self.figure()))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return figure_bundle(self.figure())


def figure_bundle(fig: go.Figure) -> dict[str, Any]:
    """A plotly figure as a MIME bundle a display handle can hold, with a text fallback.

    NOTE: a Figure handed to ``display`` shows itself through ``_ipython_display_``, which
    ignores ``display_id``, so handles are given the figure's bundle, raw.
    """
    bundle = dict(fig._repr_mimebundle_())
    if not any(key != "text/plain" for key in bundle):
        import plotly.io as pio

        # No notebook renderer is set outside a kernel; plotly's own MIME type suits a file.
        bundle.update(pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict()))
    title = fig.layout.title.text or "plotly figure"
    bundle.setdefault("text/plain", f"<Figure: {title}>")
    return bundle


def show_bundle(bundle: dict[str, Any]) -> DisplayHandle | None:
    """Display a raw MIME bundle with a handle to update it; None outside IPython."""
    from IPython import get_ipython
    from IPython.display import display

    if get_ipython() is None:
        return None  # a plain interpreter has no output area, only a console to clutter
    return display(bundle, raw=True, display_id=True)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _is_score(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SCORE_WORDS)


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"The value of {name} must be a number (a float, an int or a one-element tensor); "
            f"got {value!r}."
        ) from None
