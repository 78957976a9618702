"""The user's story through `workbench.benchmark`: measure a small model on every engine.

Budgets are tiny, so the numbers themselves mean little; what is checked is that every number
is there, consistent with the others, and honest about what it is.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
from pathlib import Path

import hostile_runtimes as hostile
import models
import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

import workbench

BUDGET_S = 0.3
QUICK = {"budget_s": 0.2, "warmup_s": 0.02, "min_rounds": 2, "progress": False}
ENGINES = ("torch", "onnxruntime", "openvino")
PROVIDERS = {"torch": "cpu", "onnxruntime": "CPUExecutionProvider", "openvino": "CPU"}
COLUMNS = {
    "rerun_low_ms",
    "rerun_high_ms",
    "flops_per_sample",
    "gflops_per_s",
    "share_of_peak",
    "model",
    "runtime",
    "engine",
    "variant",
    "provider",
    "batch_size",
    "threads",
    "threads_used",
    "status",
    "cause",
    "n",
    "median_ms",
    "mean_ms",
    "std_ms",
    "p90_ms",
    "p99_ms",
    "min_ms",
    "ci_low_ms",
    "ci_high_ms",
    "throughput_per_s",
    "peak_rss_mb",
    "load_s",
    "first_ms",
    "parity_ok",
    "max_abs_err",
    "max_rel_err",
    "noise_cores",
    "noisy",
    "stop_reason",
    "rounds",
    "baseline",
    "speedup",
    "speedup_low",
    "speedup_high",
    "verdict",
}


@pytest.fixture(scope="module")
def artifact(mlp_artifact) -> workbench.Artifact:
    return mlp_artifact


@pytest.fixture(scope="module")
def results(artifact) -> workbench.Results:
    return workbench.benchmark(
        artifact, runtimes=list(ENGINES), batch_sizes=(1, 4), budget_s=BUDGET_S, progress=False
    )


@pytest.fixture(autouse=True)
def _no_worker_survives():
    yield
    assert hostile.leftover_workers() == []


def _one_sentence(message: str) -> None:
    assert "\n" not in message
    assert message.endswith(".")
    assert not re.search(r"\. [A-Z]", message), "more than one sentence"


# -- a healthy sweep ------------------------------------------------------------------------


def test_every_engine_and_batch_size_is_measured(results):
    assert [(m.cell.label, m.cell.batch_size) for m in results] == [
        (engine, batch) for engine in ENGINES for batch in (1, 4)
    ]
    for item in results:
        stats = item.stats
        assert item.status == "ok", item.cause
        assert item.cause == ""
        assert stats.n == len(item.samples_ns) > 0
        assert stats.ci_low_ms <= stats.median_ms <= stats.ci_high_ms
        assert stats.p99_ms >= stats.p90_ms >= stats.median_ms >= stats.min_ms > 0
        assert item.throughput_per_s == pytest.approx(item.cell.batch_size / stats.median_ms * 1e3)
        assert item.peak_rss_mb > 10
        assert item.first_ms > 0
        assert item.load_s > 0
        assert len(item.round_medians_ms) >= 1
        assert item.noise_cores >= 0
        assert item.provider == PROVIDERS[item.cell.config.name]
        assert item.stop_reason in ("precision", "budget")
        # The budget bounds the time spent in timed calls, give or take the last round.
        assert sum(item.samples_ns) / 1e9 <= BUDGET_S + 0.3


def test_outputs_are_compared_with_torch_before_speed(results):
    assert results.reference == "torch"
    for item in results:
        if item.cell.label == "torch":
            assert item.parity is None
            assert results.verdict(item) == "baseline"
            assert item.cell not in results.speedups
            continue
        assert item.parity.reference == "torch"
        assert item.parity.ok, item.parity.detail
        assert item.parity.max_abs < 1e-4
        speedup = results.speedups[item.cell]
        assert speedup.rounds >= 1
        assert 0 < speedup.low <= speedup.value <= speedup.high
        assert results.verdict(item) in ("faster", "slower", "not distinguishable")
        assert results.verdict(item) == speedup.verdict


def test_the_table_has_one_row_per_cell(results):
    table = results.to_pandas()

    assert len(table) == len(results) == 6
    assert set(table.columns) == COLUMNS
    assert list(table["runtime"]) == [m.cell.label for m in results]
    assert (table["status"] == "ok").all()
    assert (table["baseline"] == "torch").all()
    assert list(table["n"]) == [m.stats.n for m in results]
    torch_rows = table[table["runtime"] == "torch"]
    assert torch_rows["speedup"].isna().all()
    assert (torch_rows["verdict"] == "baseline").all()
    others = table[table["runtime"] != "torch"]
    assert others["parity_ok"].all()
    assert (others["speedup_low"] <= others["speedup"]).all()
    assert (others["speedup"] <= others["speedup_high"]).all()
    assert (table["rounds"] >= 1).all()


def test_samples_have_one_row_per_timed_call(results):
    samples = results.samples()

    assert list(samples.columns) == ["runtime", "batch_size", "threads", "latency_ms"]
    assert len(samples) == sum(m.stats.n for m in results)
    for item in results:
        mine = samples[
            (samples["runtime"] == item.cell.label)
            & (samples["batch_size"] == item.cell.batch_size)
        ]
        assert len(mine) == item.stats.n
        assert mine["latency_ms"].median() == pytest.approx(item.stats.median_ms)


def test_the_summary_names_the_fastest_runtime(results):
    text = str(results)

    for batch in (1, 4):
        cells = [m for m in results if m.cell.batch_size == batch]
        fastest = min(cells, key=lambda m: m.stats.median_ms)
        line = next(
            line for line in text.splitlines() if line.startswith(f"fastest at batch {batch}")
        )
        assert line.split(": ", 1)[1].startswith(fastest.cell.label)
    for engine in ENGINES:
        assert engine in text
    assert "baseline" in text
    html = results._repr_html_()
    assert html.count("<tr") == 7
    assert "fastest at batch 1" in html


def test_plots_and_a_self_contained_report(results, tmp_path):
    figures = results.plot()
    figures = figures if isinstance(figures, list) else [figures]
    assert figures
    assert all(isinstance(figure, go.Figure) for figure in figures)
    assert isinstance(results.plot("latency"), go.Figure)
    with pytest.raises(ValueError, match="speedup, latency, throughput"):
        results.plot("pie")

    path = results.to_html(tmp_path / "report.html")

    text = Path(path).read_text()
    assert get_plotlyjs()[:2000] in text
    assert '<script src="http' not in text
    assert "Environment" in text
    assert results.model in text


def test_a_model_given_as_a_module_is_exported_then_measured():
    model, example_inputs = models.mlp()

    results = workbench.benchmark(model, example_inputs, runtimes=["torch", "onnxruntime"], **QUICK)

    assert [m.status for m in results] == ["ok", "ok"]
    assert results.export_parity is not None
    assert results.export_parity.ok
    assert results.measurements[1].parity.ok


def test_a_model_file_is_measured_on_every_engine_that_can_read_it(artifact):
    results = workbench.benchmark(str(artifact.path), **QUICK)

    # torch is left out: a file does not carry the PyTorch model.
    assert [m.cell.label for m in results] == ["onnxruntime", "openvino"]
    assert results.reference == "onnxruntime"
    assert all(m.ok for m in results)
    assert results.measurements[1].parity.ok


def test_a_thread_sweep_runs_each_count(artifact):
    results = workbench.benchmark(artifact, runtimes=["torch", "openvino"], threads=(1, 2), **QUICK)

    cells = [(m.cell.label, m.cell.threads, m.threads_used) for m in results]
    assert cells == [("torch", 1, 1), ("torch", 2, 2), ("openvino", 1, 1), ("openvino", 2, 2)]
    assert all(m.ok for m in results)
    # Each thread count is compared with the baseline at the same thread count.
    assert set(results.speedups) == {m.cell for m in results if m.cell.label == "openvino"}
    assert "fastest at batch 1, 2 threads" in str(results)


# -- wrong outputs ----------------------------------------------------------------------------


def test_wrong_outputs_are_marked_and_never_win(artifact, registered):
    name = registered(hostile.Garbage())

    results = workbench.benchmark(artifact, runtimes=["onnxruntime", name], **QUICK)

    faithful, garbage = results.measurements
    assert garbage.ok
    assert garbage.stats.median_ms < faithful.stats.median_ms  # it would win if it were ranked
    assert not garbage.parity.ok
    assert garbage.parity.max_abs > 0.01
    assert results.verdict(garbage) == "wrong outputs"
    assert results.winners() == {(1, None): "onnxruntime"}
    row = results.to_pandas().iloc[1]
    assert (row["verdict"], row["parity_ok"]) == ("wrong outputs", False)
    assert "wrong outputs" in str(results)
    assert name not in str(results).split("fastest at batch 1: ")[1].splitlines()[0]


# -- bad requests are refused with one sentence -------------------------------------------------


def test_an_unknown_runtime_lists_the_known_ones(artifact):
    with pytest.raises(workbench.UnknownRuntimeError) as caught:
        workbench.benchmark(artifact, runtimes=["onnxruntime", "tflite"], **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    assert "'tflite'" in message
    for engine in ENGINES:
        assert engine in message


def test_an_unknown_option_names_the_options(artifact):
    with pytest.raises(workbench.UnknownRuntimeError) as caught:
        workbench.benchmark(artifact, runtimes=["onnxruntime:foo=1"], **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    assert "no option 'foo'" in message
    assert "provider, opt" in message


def test_a_missing_provider_names_the_available_ones(artifact):
    with pytest.raises(workbench.RuntimeNotAvailableError) as caught:
        workbench.benchmark(
            artifact, runtimes=["onnxruntime", "onnxruntime:provider=cuda"], **QUICK
        )

    message = str(caught.value)
    _one_sentence(message)
    assert "CUDAExecutionProvider" in message
    assert "available are: " in message
    assert "CPUExecutionProvider" in message.split("available are: ")[1]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (
            np.zeros((4, 31), np.float32),
            ["'input'", "size 31 in dimension 1", "float32[batch, 32]"],
        ),
        (np.zeros((4, 32), np.float64), ["'input'", "dtype float64", "float32[batch, 32]"]),
        (np.zeros((4, 2, 32), np.float32), ["'input'", "3 dimensions", "float32[batch, 32]"]),
        ({"image": np.zeros((4, 32), np.float32)}, ["no value", "'input'"]),
    ],
    ids=["shape", "dtype", "rank", "name"],
)
def test_inputs_that_do_not_fit_the_model_are_refused(artifact, value, words):
    with pytest.raises(workbench.InputError) as caught:
        workbench.benchmark(artifact, runtimes=["onnxruntime"], inputs=value, **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    for word in words:
        assert word in message


def test_inputs_that_fit_are_used(artifact):
    value = np.full((3, 32), 0.5, np.float32)

    results = workbench.benchmark(
        artifact, runtimes=["onnxruntime", "openvino"], inputs=value, batch_sizes=(3, 5), **QUICK
    )

    assert [m.cell.batch_size for m in results] == [3, 5, 3, 5]
    assert all(m.ok and (m.parity is None or m.parity.ok) for m in results)


@pytest.mark.parametrize("batch_sizes", [(0,), ("8",), "8", (1, -4), (), (True,), 2.5, (2.0,)])
def test_batch_sizes_must_be_positive_whole_numbers(artifact, batch_sizes):
    with pytest.raises(workbench.InputError, match="batch_sizes must be positive whole numbers"):
        workbench.benchmark(artifact, runtimes=["onnxruntime"], batch_sizes=batch_sizes, **QUICK)


@pytest.mark.parametrize("threads", [(0,), True, (1, True), 1.5, ("2",)])
def test_thread_counts_must_be_positive_whole_numbers(artifact, threads):
    with pytest.raises(workbench.InputError, match="threads must be positive whole numbers"):
        workbench.benchmark(artifact, runtimes=["onnxruntime"], threads=threads, **QUICK)


@pytest.mark.parametrize("budget_s", [0, -1.0, math.nan, "1", True])
def test_the_budget_must_be_a_positive_number_of_seconds(artifact, budget_s):
    with pytest.raises(workbench.InputError, match="budget_s must be a positive number"):
        workbench.benchmark(artifact, runtimes=["onnxruntime"], budget_s=budget_s)


def test_numpy_integers_are_whole_numbers(artifact):
    # A sweep is often written with numpy: np.arange or values taken from an array.
    results = workbench.benchmark(
        artifact,
        runtimes=["onnxruntime"],
        batch_sizes=np.array([1, 3]),
        threads=np.int64(1),
        **QUICK,
    )

    assert [(m.cell.batch_size, m.cell.threads) for m in results] == [(1, 1), (3, 1)]
    assert all(type(m.cell.batch_size) is int for m in results)
    assert all(m.ok for m in results)


def test_a_static_batch_says_to_export_with_a_dynamic_one():
    model, (example,) = models.mlp()
    static = workbench.export(model, (example[:1],), dynamic_batch=False)

    with pytest.raises(workbench.InputError) as caught:
        workbench.benchmark(static, runtimes=["onnxruntime"], batch_sizes=(1, 2), **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    assert "fixed batch of 1" in message
    assert "batch size 2" in message
    assert "dynamic_batch=True" in message


def test_the_torch_runtime_needs_the_module(artifact):
    loaded = workbench.load(artifact.path)

    with pytest.raises(workbench.InputError) as caught:
        workbench.benchmark(loaded, runtimes=["onnxruntime", "torch"], **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    assert "'torch'" in message
    assert "PyTorch model" in message
    assert "torch.nn.Module" in message


def test_a_missing_file_is_a_model_file_error(tmp_path):
    missing = tmp_path / "nowhere" / "model.onnx"

    with pytest.raises(workbench.ModelFileError) as caught:
        workbench.benchmark(missing, **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    assert str(missing) in message
    assert "does not exist" in message


# -- what runs here ---------------------------------------------------------------------------


def test_runtimes_lists_what_runs_here_and_what_does_not(registered):
    registered(hostile.NotInstalled())

    listing = workbench.runtimes()

    rows = {row.name: row for row in listing}
    for engine in ENGINES:
        assert rows[engine].available, rows[engine].reason
        # openvino's own version string adds a build number to the package's
        assert rows[engine].version.startswith(importlib.metadata.version(engine))
    assert "CPUExecutionProvider" in rows["onnxruntime"].details["providers"]
    assert "CPU" in rows["openvino"].details["devices"]
    missing = rows["not-installed"]
    assert not missing.available
    assert "not_a_real_engine is not installed" in missing.reason
    assert missing.install == "pip install not-a-real-engine"
    text = str(listing)
    line = next(line for line in text.splitlines() if line.startswith("not-installed"))
    assert " no " in line
    assert "pip install not-a-real-engine" in line
    assert "CPUExecutionProvider" in text
    assert "<table" in listing._repr_html_()


def test_an_unavailable_runtime_is_refused_with_its_install_command(artifact, registered):
    name = registered(hostile.NotInstalled())

    with pytest.raises(workbench.RuntimeNotAvailableError) as caught:
        workbench.benchmark(artifact, runtimes=[name], **QUICK)

    message = str(caught.value)
    _one_sentence(message)
    assert "not_a_real_engine is not installed" in message
    assert "pip install not-a-real-engine" in message


def test_the_default_runtimes_skip_the_unavailable_ones(artifact, registered):
    registered(hostile.NotInstalled())

    results = workbench.benchmark(artifact, **QUICK)

    assert [m.cell.label for m in results] == list(ENGINES)
    assert not any(math.isnan(m.stats.median_ms) for m in results)
