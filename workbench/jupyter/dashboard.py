"""A live benchmark dashboard for one model: tick runtimes, run, watch the medians, stop.

The widgets only gather choices and draw what ``workbench.benchmark`` reports; measuring happens
there, in worker processes, driven from a background thread so the notebook stays usable.
"""

from __future__ import annotations

import html
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import plotly.graph_objects as go

import workbench
from workbench.errors import InputError, WorkbenchError
from workbench.executors.local import LocalExecutor
from workbench.jupyter.training import figure_bundle, show_bundle

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from workbench.artifact import Artifact
    from workbench.bench.stats import LatencyStats
    from workbench.results import Results
    from workbench.study import Progress

REDRAW_S = 0.2  # live redraws at most five times a second
_WIDE = {"description_width": "initial"}


class Dashboard:
    """Benchmark one model from a notebook, with live progress and a Stop button.

    ``target`` is an Artifact, a path to an .onnx file, or a ``torch.nn.Module`` with
    ``example_inputs`` (exported once, here). ``runtimes`` names those ticked at first; by
    default every available one except the slow ONNX reference evaluator.
    """

    def __init__(
        self,
        target: Any,
        example_inputs: Any = None,
        *,
        runtimes: Sequence[str] | None = None,
        batch_sizes: Iterable[int] = (1,),
        threads: Iterable[int | None] = (None,),
        budget_s: float = 1.0,
    ) -> None:
        self.artifact: Artifact = _artifact(target, example_inputs)
        self.results: Results | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._executor: LocalExecutor | None = None
        self._live: dict[str, LatencyStats] = {}
        self._drawn_at = 0.0
        self._outputs: list[tuple[DisplayHandle, DisplayHandle]] = []

        self._build_controls(runtimes, batch_sizes, threads, budget_s)
        self._build_outputs()
        self.widget = widgets.VBox(
            [
                widgets.HBox(list(self.runtime_boxes.values())),
                self.runtime_notes,
                widgets.HBox([self.batch_sizes, self.threads, self.budget]),
                widgets.HBox([self.run_button, self.stop_button, self.progress]),
                self.status,
                self.figure,
                self.table,
            ]
        )

    # -- building -----------------------------------------------------------------------------

    def _build_controls(
        self,
        chosen: Sequence[str] | None,
        batch_sizes: Iterable[int],
        threads: Iterable[int | None],
        budget_s: float,
    ) -> None:
        self.runtime_boxes, notes = _runtime_boxes(self.artifact, chosen)
        self.runtime_notes = widgets.HTML("<br>".join(html.escape(note) for note in notes))
        self.batch_sizes = widgets.Text(
            value=", ".join(str(size) for size in batch_sizes),
            description="Batch sizes",
            placeholder="1, 8, 32",
            style=_WIDE,
        )
        self.threads = widgets.Text(
            value=", ".join("default" if count is None else str(count) for count in threads),
            description="Threads",
            placeholder="default, or 1, 2",
            style=_WIDE,
        )
        self.budget = widgets.BoundedFloatText(
            value=budget_s, min=0.05, max=3600.0, step=0.5, description="Seconds per cell",
            tooltip="The most measuring time each cell may use", style=_WIDE,
        )  # fmt: skip
        for text in (self.batch_sizes, self.threads):
            text.observe(lambda _change: self._check_inputs(), names="value")

    def _build_outputs(self) -> None:
        self.run_button = widgets.Button(
            description="Run", icon="play", button_style="primary",
            tooltip="Measure the ticked runtimes",
        )  # fmt: skip
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", button_style="warning", disabled=True,
            tooltip="Stop after the current step; the cells measured so far are kept",
        )  # fmt: skip
        self.run_button.on_click(lambda _button: self.run())
        self.stop_button.on_click(lambda _button: self.stop())
        self.progress = widgets.FloatProgress(value=0.0, min=0.0, max=1.0)
        self.status = widgets.Label("Ready.")
        self.figure = go.FigureWidget(go.Bar(x=[], y=[], orientation="h", name="median"))
        self.figure.update_layout(
            title={"text": f"Running median latency: {self.artifact.name}", "x": 0.02},
            xaxis_title="Median latency per call (ms), with its 95% interval",
            yaxis={"autorange": "reversed"},
            template="plotly_white",
            height=260,
            margin={"t": 50, "b": 50},
        )
        self.table = widgets.HTML("")

    # -- running ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Start measuring in a background thread and return at once."""
        if self.running:
            return
        try:
            choices = self._choices()
        except InputError as error:
            self._fail(str(error))
            return

        self.results = self.error = None
        self._live.clear()
        self._redraw()
        self.table.value = ""
        self.progress.value = 0.0
        self.progress.bar_style = ""
        self.status.value = "Starting workers…"
        self._executor = LocalExecutor()
        self._set_running(True)
        self._thread = threading.Thread(
            target=self._work, args=(choices, self._executor), name="workbench-dashboard"
        )
        self._thread.daemon = True  # a forgotten run must not keep the kernel from exiting
        self._thread.start()

    def stop(self) -> None:
        """Ask the run to stop after its current step; the cells measured so far are kept."""
        if self._executor is not None and self.running:
            self._executor.cancel()
            self.stop_button.disabled = True
            self.status.value = "Stopping after the current step…"

    def wait(self, timeout: float | None = None) -> Results | None:
        """Wait for the run to end; its Results, or None if it failed or is still running."""
        if self._thread is not None:
            self._thread.join(timeout)
        return None if self.running else self.results

    def _choices(self) -> dict[str, Any]:
        """The widgets' values as keyword arguments of ``workbench.benchmark``."""
        ticked = [
            name for name, box in self.runtime_boxes.items() if box.value and not box.disabled
        ]
        if not ticked:
            raise InputError("No runtime is ticked: tick at least one to measure.")
        return {
            "runtimes": ticked,
            "batch_sizes": _batch_sizes(self.batch_sizes.value),
            "threads": _thread_counts(self.threads.value),
            "budget_s": float(self.budget.value),
        }

    def _work(self, choices: dict[str, Any], executor: LocalExecutor) -> None:
        started = time.monotonic()
        try:
            self.results = workbench.benchmark(
                self.artifact,
                **choices,
                progress=False,
                on_progress=self._on_progress,
                executor=executor,
            )
            self._finish(self.results, executor.cancelled, time.monotonic() - started)
        except Exception as error:  # noqa: BLE001 - shown to the user, never lost in a thread
            self._fail(_sentence(error))
        finally:
            self._set_running(False)

    def _on_progress(self, progress: Progress) -> None:
        self.progress.value = progress.fraction
        if progress.cell is not None and progress.stats is not None:
            self._live[progress.cell.describe()] = progress.stats
        if not (self._executor and self._executor.cancelled):
            where = f": {progress.cell.describe()}" if progress.cell is not None else "…"
            self.status.value = progress.phase.capitalize() + where
        if time.monotonic() - self._drawn_at >= REDRAW_S:
            self._redraw()

    # -- showing ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        stats = list(self._live.values())
        with self.figure.batch_update():
            bars = self.figure.data[0]
            bars.y = list(self._live)
            bars.x = [item.median_ms for item in stats]
            bars.error_x = {
                "type": "data",
                "symmetric": False,
                "array": [item.ci_high_ms - item.median_ms for item in stats],
                "arrayminus": [item.median_ms - item.ci_low_ms for item in stats],
            }
            self.figure.layout.height = max(260, 120 + 30 * len(stats))
        self._drawn_at = time.monotonic()

    def _finish(self, results: Results, cancelled: bool, seconds: float) -> None:
        self._redraw()
        self.progress.value = 1.0
        self.progress.bar_style = "warning" if cancelled else "success"
        self.table.value = results._repr_html_()
        measured = sum(item.ok for item in results)
        if cancelled:
            self.status.value = f"Stopped after {seconds:.1f} s; kept {measured} measured cells."
        else:
            self.status.value = (
                f"Done in {seconds:.1f} s: {measured} of {len(results)} cells measured."
            )
        self._publish()

    def _publish(self) -> None:
        """Fill the static outputs under the widget, which stay in a saved notebook."""
        if self.results is None:
            return
        table = {"text/html": self.results._repr_html_(), "text/plain": str(self.results)}
        figures = self.results.plot() if any(item.ok for item in self.results) else []
        figure = figures[0] if isinstance(figures, list) and figures else None
        for table_handle, figure_handle in self._outputs:
            table_handle.update(table, raw=True)
            if figure is not None:
                figure_handle.update(figure_bundle(figure), raw=True)

    def _fail(self, message: str) -> None:
        self.error = message
        self.status.value = message
        self.progress.bar_style = "danger"

    def _check_inputs(self) -> None:
        if self.running:
            return
        try:
            _batch_sizes(self.batch_sizes.value)
            _thread_counts(self.threads.value)
        except InputError as error:
            self.status.value = str(error)
        else:
            self.status.value = "Ready."

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        empty = {"text/plain": ""}
        handles = (show_bundle(empty), show_bundle(empty))
        if handles[0] is not None and handles[1] is not None:
            self._outputs.append((handles[0], handles[1]))
            self._publish()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.widget._repr_mimebundle_(**kwargs)


def _artifact(target: Any, example_inputs: Any) -> Artifact:
    from workbench.artifact import Artifact

    if isinstance(target, Artifact):
        return target
    if isinstance(target, str | os.PathLike):
        return workbench.load(target)
    if example_inputs is None:
        raise InputError(
            f"Dashboard() takes an Artifact, a path to an .onnx file, or a torch.nn.Module with "
            f"example inputs; got a {type(target).__name__} without example inputs."
        )
    return workbench.export(target, example_inputs)


def _runtime_boxes(
    artifact: Artifact, chosen: Sequence[str] | None
) -> tuple[dict[str, widgets.Checkbox], list[str]]:
    """A checkbox per known runtime, and a note for each that cannot run, saying why."""
    from workbench.runtimes import registry

    table = registry()
    if chosen is not None and set(chosen) - set(table):
        raise InputError(
            f"There is no runtime called {sorted(set(chosen) - set(table))[0]!r}; the known "
            f"runtimes are: {', '.join(sorted(table))}."
        )
    has_model = getattr(artifact, "_framework_model", None) is not None
    boxes, notes = {}, []
    for status in workbench.runtimes(probe=False):
        runtime = table[status.name]
        reason = ""
        if not status.available:
            reason = "not available: " + "; install it with: ".join(
                part for part in (status.reason, status.install) if part
            )
        elif runtime.needs_framework_model and not has_model:
            reason = "needs the PyTorch model, which an artifact loaded from a file does not carry"
        ticked = runtime.in_default_sweep if chosen is None else status.name in chosen
        boxes[status.name] = widgets.Checkbox(
            value=ticked and not reason,
            description=status.name,
            disabled=bool(reason),
            tooltip=f"{status.name}: {reason}" if reason else status.description,
            indent=False,
            layout={"width": "auto", "margin": "0 1.5em 0 0"},
        )
        if reason:
            notes.append(f"{status.name}: {reason}")
    return boxes, notes


def _batch_sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(_whole_number(word, "batch sizes") for word in _words(text))
    if not sizes:
        raise InputError("Batch sizes are empty: give positive whole numbers, such as 1, 8, 32.")
    return sizes


def _thread_counts(text: str) -> tuple[int | None, ...]:
    counts = tuple(
        None if word.lower() in {"default", "none"} else _whole_number(word, "threads")
        for word in _words(text)
    )
    return counts or (None,)


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[,;\s]+", text.strip()) if word]


def _whole_number(word: str, what: str) -> int:
    if not (word.isascii() and word.isdigit()) or int(word) < 1:
        example = "1, 8, 32" if what == "batch sizes" else "default, or 1, 2"
        raise InputError(
            f"The {what} must be positive whole numbers separated by commas, such as {example}; "
            f"{word!r} is not one."
        )
    return int(word)


def _sentence(error: BaseException) -> str:
    """The first line of an error's message; the type is named when it is not our own error."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else "no message"
    return text if isinstance(error, WorkbenchError) else f"{type(error).__name__}: {text}"
