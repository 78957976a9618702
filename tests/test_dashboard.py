"""The benchmark dashboard, driven headless through its widgets' traits: no kernel needed."""

from __future__ import annotations

import time

import hostile_runtimes as hostile
import models
import pytest

import workbench
from workbench.jupyter import dashboard
from workbench.runtimes import register, unregister

PLOTLY = "application/vnd.plotly.v1+json"


class FakeHandle:
    def __init__(self, bundle: dict) -> None:
        self.bundles = [bundle]

    def update(self, bundle: dict, raw: bool = False) -> None:
        self.bundles.append(bundle)


@pytest.fixture
def available() -> set[str]:
    return {row.name for row in workbench.runtimes(probe=False) if row.available}


@pytest.fixture
def not_installed():
    runtime = hostile.NotInstalled()
    register(runtime)
    yield runtime.name
    unregister(runtime.name)


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_runnable_runtimes_are_ticked_and_the_others_say_why(
    mlp_artifact, available, not_installed
):
    board = workbench.Dashboard(mlp_artifact)
    boxes = board.runtime_boxes

    ticked = {name for name, box in boxes.items() if box.value and not box.disabled}
    assert ticked == available - {"onnx-reference"}
    assert not boxes["onnx-reference"].disabled
    assert not boxes["onnx-reference"].value  # slow: offered, never ticked by default
    assert boxes[not_installed].disabled
    assert not boxes[not_installed].value
    assert "pip install not-a-real-engine" in boxes[not_installed].tooltip
    assert "not-installed: not available" in board.runtime_notes.value
    assert board.status.value == "Ready."
    assert board.run_button.disabled is False
    assert board.stop_button.disabled is True


def test_an_artifact_loaded_from_a_file_cannot_run_torch(mlp_artifact):
    board = workbench.Dashboard(str(mlp_artifact.path), runtimes=["torch", "onnxruntime"])

    assert board.runtime_boxes["torch"].disabled
    assert not board.runtime_boxes["torch"].value
    assert "needs the PyTorch model" in board.runtime_boxes["torch"].tooltip
    ticked = [name for name, box in board.runtime_boxes.items() if box.value]
    assert ticked == ["onnxruntime"]
    with pytest.raises(workbench.InputError, match="no runtime called 'tensorrt-ish'"):
        workbench.Dashboard(mlp_artifact, runtimes=["tensorrt-ish"])


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("batch_sizes", "1, eight", "'eight' is not one"),
        ("batch_sizes", " ", "Batch sizes are empty"),
        ("threads", "default, 0", "threads must be positive whole numbers"),
    ],
)
def test_bad_text_is_shown_in_the_status_line_not_raised(mlp_artifact, field, text, message):
    board = workbench.Dashboard(mlp_artifact, batch_sizes=(1, 8), threads=(None, 2))
    assert (board.batch_sizes.value, board.threads.value) == ("1, 8", "default, 2")

    getattr(board, field).value = text
    assert message in board.status.value
    board.run()
    assert message in board.error
    assert message in board.status.value
    assert board.wait(1) is None
    assert not board.running
    getattr(board, field).value = "1, 2"
    assert board.status.value == "Ready."


def test_a_run_measures_in_the_background_and_leaves_a_static_copy(mlp_artifact, monkeypatch):
    handles: list[FakeHandle] = []
    monkeypatch.setattr(
        dashboard, "show_bundle", lambda b: handles.append(FakeHandle(b)) or handles[-1]
    )
    board = workbench.Dashboard(mlp_artifact, runtimes=["onnxruntime", "torch"], budget_s=0.1)
    board.batch_sizes.value = "1, 3"
    board._ipython_display_()

    board.run_button.click()
    assert board.run_button.disabled
    assert not board.stop_button.disabled
    results = board.wait(60)

    assert results is not None
    assert board.results is results
    assert board.error is None
    assert [m.status for m in results] == ["ok"] * 4
    medians = {m.cell.describe(): m.stats.median_ms for m in results}
    bars = board.figure.data[0]
    assert sorted(bars.y) == sorted(medians)
    assert list(bars.x) == pytest.approx([medians[label] for label in bars.y])
    assert "onnxruntime" in board.table.value
    assert "torch" in board.table.value
    assert board.status.value.startswith("Done in")
    assert "4 of 4 cells" in board.status.value
    assert board.progress.value == 1.0
    assert not board.run_button.disabled
    assert board.stop_button.disabled

    table, figure = handles  # what stays in a saved notebook, kernel or not
    assert "speed-up" in table.bundles[-1]["text/html"]
    assert "Speed-up over the baseline" in figure.bundles[-1][PLOTLY]["layout"]["title"]["text"]


def test_stop_ends_the_workers_and_keeps_the_finished_cells(mlp_artifact):
    board = workbench.Dashboard(mlp_artifact, runtimes=["onnxruntime"], budget_s=5)
    board.batch_sizes.value = "1, 2"
    board.run()
    wait_for(lambda: len(board.figure.data[0].y) == 2, 30)
    assert len(board.figure.data[0].y) == 2, board.status.value

    started = time.monotonic()
    board.stop_button.click()
    results = board.wait(10)

    assert time.monotonic() - started < 3
    assert results is not None
    assert len(results) == 2
    assert {(m.status, m.stop_reason) for m in results} == {("ok", "cancelled")}
    assert board.status.value.startswith("Stopped")
    assert "kept 2 measured cells" in board.status.value
    assert hostile.leftover_workers() == []


def test_a_failing_benchmark_shows_its_message(mlp_artifact, monkeypatch):
    model, inputs = models.mlp()
    static = workbench.export(model, inputs, dynamic_batch=False)
    board = workbench.Dashboard(static, runtimes=["onnxruntime"], batch_sizes=(8,))
    board.run()
    assert board.wait(30) is None
    assert "fixed batch of 4, so batch size 8 cannot run" in board.error
    assert board.status.value == board.error
    assert board.results is None
    assert not board.run_button.disabled

    board = workbench.Dashboard(mlp_artifact)
    for box in board.runtime_boxes.values():
        box.value = False
    board.run()
    assert board.error == "No runtime is ticked: tick at least one to measure."

    def broken(*args, **kwargs):
        raise RuntimeError("the engine fell over\nwith a long traceback")

    monkeypatch.setattr(workbench, "benchmark", broken)
    board.runtime_boxes["onnxruntime"].value = True
    board.run()
    assert board.wait(10) is None
    assert board.status.value == "RuntimeError: the engine fell over"


def test_stop_before_any_cell_is_measured_keeps_an_empty_run(mlp_artifact):
    board = workbench.Dashboard(mlp_artifact, runtimes=["onnxruntime"], budget_s=5)
    board.run()
    board.stop()
    results = board.wait(15)

    assert results is not None
    assert len(results) == 0
    assert board.error is None
    assert "kept 0 measured cells" in board.status.value
    assert not board.run_button.disabled
    assert hostile.leftover_workers() == []
