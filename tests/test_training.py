"""TrainingPlot: live loss and accuracy curves, drawn through a display handle, throttled."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import workbench
from workbench.jupyter import training

PLOTLY = "application/vnd.plotly.v1+json"


class FakeHandle:
    """Stands in for IPython's display handle and keeps every bundle it was given."""

    def __init__(self, bundle: dict) -> None:
        self.bundles = [bundle]

    def update(self, bundle: dict, raw: bool = False) -> None:
        assert raw, "a figure's bundle must be published raw, or its display_id is ignored"
        self.bundles.append(bundle)


@pytest.fixture
def handles(monkeypatch):
    """Every display handle the plots open, in order."""
    opened: list[FakeHandle] = []

    def show(bundle: dict) -> FakeHandle:
        opened.append(FakeHandle(bundle))
        return opened[-1]

    monkeypatch.setattr(training, "show_bundle", show)
    return opened


def curves(bundle: dict) -> dict[str, tuple[list, list]]:
    """Trace name -> (x, y) as drawn."""
    return {trace["name"]: (list(trace["x"]), list(trace["y"])) for trace in bundle[PLOTLY]["data"]}


def test_history_keeps_every_step_and_metric():
    plot = workbench.TrainingPlot(every_s=60)
    plot.update(loss=1.0, accuracy=0.5)
    plot.update(loss=np.float32(0.5), accuracy=0.75)
    plot.update(step=10, loss=0.25)
    plot.update(loss=0.2, val_loss=0.3)

    history = plot.history
    assert list(history.columns) == ["step", "loss", "accuracy", "val_loss"]
    assert history["step"].tolist() == [1, 2, 10, 11]
    assert history["loss"].tolist() == [1.0, 0.5, 0.25, pytest.approx(0.2)]
    assert history["accuracy"].tolist()[:2] == [0.5, 0.75]
    assert history["accuracy"].isna().tolist() == [False, False, True, True]
    assert history["val_loss"].isna().tolist() == [True, True, True, False]
    assert history["val_loss"].iloc[3] == pytest.approx(0.3)


def test_non_finite_values_are_kept_and_drawn_as_gaps(handles):
    plot = workbench.TrainingPlot(metrics=("loss",), every_s=60)
    for value in (0.9, math.nan, math.inf, 0.4):
        plot.update(loss=value)
    plot.finish()

    loss = plot.history["loss"].tolist()
    assert loss[0] == 0.9
    assert math.isnan(loss[1])
    assert loss[2] == math.inf
    assert loss[3] == 0.4
    x, y = curves(handles[0].bundles[-1])["loss"]
    assert x == [1, 2, 3, 4]
    assert y == [0.9, None, None, 0.4]


def test_loss_and_accuracy_are_drawn_on_separate_axes():
    plot = workbench.TrainingPlot(every_s=60)
    plot.update(loss=2.0, accuracy=0.1)
    plot.update(loss=1.0, accuracy=0.6)

    fig = plot.figure()
    traces = {trace.name: trace for trace in fig.data}
    assert list(traces["loss"].y) == [2.0, 1.0]
    assert list(traces["accuracy"].y) == [0.1, 0.6]
    assert traces["loss"].yaxis != traces["accuracy"].yaxis
    score_axis = fig.layout[traces["accuracy"].yaxis.replace("y", "yaxis")]
    assert tuple(score_axis.range) == (0, 1.02)
    assert fig.layout.title.text == "Training"


def test_updates_are_throttled_but_finish_draws_the_last_state(handles):
    plot = workbench.TrainingPlot(every_s=0.3)
    for step in range(200):
        plot.update(loss=1 / (step + 1), accuracy=step / 200)

    assert len(handles) == 1  # the first update opened the output
    assert len(handles[0].bundles) == 1  # and the other 199 came too soon to redraw
    assert len(curves(handles[0].bundles[0])["loss"][0]) == 1

    time.sleep(0.35)
    plot.update(loss=0.001, accuracy=1.0)
    assert len(handles[0].bundles) == 2
    plot.finish()
    assert len(handles) == 1
    assert len(handles[0].bundles) == 3
    x, y = curves(handles[0].bundles[-1])["accuracy"]
    assert x == list(range(1, 202))
    assert y[-1] == 1.0
    assert y[100] == 0.5


def train(plot: workbench.TrainingPlot, fail: bool) -> None:
    with plot:
        plot.update(loss=1.0)
        plot.update(loss=0.5)
        if fail:
            raise ZeroDivisionError


def test_the_context_manager_finishes_even_when_training_fails(handles):
    train(workbench.TrainingPlot(every_s=60), fail=False)
    with pytest.raises(ZeroDivisionError):
        train(workbench.TrainingPlot(every_s=60), fail=True)

    assert len(handles) == 2
    for handle in handles:
        assert len(handle.bundles) == 2  # the first update, then the one on leaving the block
        assert curves(handle.bundles[-1])["loss"] == ([1, 2], [1.0, 0.5])


def test_the_plot_displays_as_its_figure_with_a_text_fallback():
    plot = workbench.TrainingPlot(title="MNIST")
    plot.update(loss=0.7)
    bundle = plot._repr_mimebundle_()
    assert bundle["text/plain"] == "<Figure: MNIST>"
    assert curves(bundle)["loss"] == ([1], [0.7])


def test_bad_updates_are_refused_with_a_sentence():
    plot = workbench.TrainingPlot()
    with pytest.raises(workbench.InputError, match="at least one metric"):
        plot.update()
    with pytest.raises(workbench.InputError, match="value of loss must be a number"):
        plot.update(loss="low")
    assert plot.history.empty
