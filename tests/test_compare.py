"""Comparing two runs, told on synthetic runs whose true speed-ups are known."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

import workbench
from workbench.bench.measurement import Cell, Measurement, finished
from workbench.results import Results
from workbench.runtimes import RuntimeConfig
from workbench.store.environment import current_environment

BASE_MS = {"torch": 2.0, "onnxruntime": 1.0, "openvino": 0.8}
BATCHES = (1, 8)
ENVIRONMENT = dataclasses.replace(
    current_environment(), packages={"onnxruntime": "1.30.0", "torch": "2.5.0"}
)


def _cell(label: str, batch: int, threads: int | None = None) -> Cell:
    return Cell(RuntimeConfig(label), batch, threads)


def _measure(cell: Cell, latency_ms: float, generator, rounds: int, **fields) -> Measurement:
    """Rounds whose medians wander by 3%, each of 40 calls that scatter by 5% around them."""
    medians = latency_ms * generator.lognormal(0.0, 0.03, rounds)
    samples = np.concatenate([median * generator.lognormal(0.0, 0.05, 40) for median in medians])
    round_medians = [float(np.median(chunk)) for chunk in np.split(samples, rounds)]
    return finished(cell, (samples * 1e6).astype(int).tolist(), round_medians, **fields)


def _run(
    speed: float = 1.0,
    *,
    seed: int = 0,
    labels: tuple[str, ...] = tuple(BASE_MS),
    rounds: int = 10,
    environment=ENVIRONMENT,
    sha256: str = "ab" * 32,
    model: str = "mlp",
    **fields,
) -> Results:
    """One run of every runtime and batch size, ``speed`` times as fast as the first run."""
    generator = np.random.default_rng(seed)
    measurements = [
        _measure(_cell(label, batch), BASE_MS[label] * batch / speed, generator, rounds, **fields)
        for label in labels
        for batch in BATCHES
    ]
    return Results(tuple(measurements), environment, model, sha256)


@pytest.mark.parametrize(
    ("speed", "verdict"), [(1.0, "not distinguishable"), (1.5, "faster"), (0.7, "slower")]
)
def test_each_cell_gets_the_verdict_of_its_true_speed_up(speed, verdict):
    comparison = workbench.compare(_run(seed=1), _run(speed, seed=2))

    assert len(comparison.cells) == 6
    for cell in comparison.cells:
        assert cell.verdict == verdict
        assert cell.speedup.basis == "round medians"
        assert cell.speedup.low <= speed <= cell.speedup.high
        assert cell.speedup.value == pytest.approx(speed, rel=0.06)


def test_re_runs_of_the_same_thing_are_mostly_not_distinguishable():
    verdicts = [
        cell.verdict
        for seed in range(20)
        for cell in workbench.compare(_run(seed=seed), _run(seed=100 + seed)).cells
    ]
    assert verdicts.count("not distinguishable") / len(verdicts) >= 0.85


def test_a_small_shift_of_a_whole_run_is_within_the_run_to_run_allowance():
    a, b = _run(seed=21, rounds=40), _run(1.04, seed=22, rounds=40)

    strict = workbench.compare(a, b, run_to_run=0)
    allowing = workbench.compare(a, b)

    assert {cell.verdict for cell in strict.cells} == {"faster"}
    assert {cell.verdict for cell in allowing.cells} == {"not distinguishable"}
    assert "intervals allow 2% run-to-run wander" in str(allowing)


def test_with_too_few_rounds_the_ratio_comes_from_the_samples():
    comparison = workbench.compare(_run(rounds=3, seed=3), _run(2.0, rounds=10, seed=4))

    assert {cell.speedup.basis for cell in comparison.cells} == {"samples"}
    assert {cell.verdict for cell in comparison.cells} == {"faster"}


def test_every_difference_of_the_environments_is_listed():
    changed = dataclasses.replace(
        ENVIRONMENT,
        cpu="Imaginary CPU 9000",
        cpu_flags=(*[f for f in ENVIRONMENT.cpu_flags if f != "avx2"], "imaginary_flag"),
        cores_usable=ENVIRONMENT.cores_usable + 2,
        packages={"onnxruntime": "1.32.0", "openvino": "2025.1.0"},
    )

    comparison = workbench.compare(_run(seed=5), _run(seed=6, environment=changed))

    lost = " -avx2" if "avx2" in ENVIRONMENT.cpu_flags else ""
    assert list(comparison.differences) == [
        f"CPU: {ENVIRONMENT.cpu} → Imaginary CPU 9000",
        f"instruction sets: +imaginary_flag{lost}",
        f"usable cores: {ENVIRONMENT.cores_usable} → {ENVIRONMENT.cores_usable + 2}",
        "onnxruntime 1.30.0 → 1.32.0",
        "torch 2.5.0 → absent",
        "openvino absent → 2025.1.0",
    ]
    assert "changed: onnxruntime 1.30.0 → 1.32.0" in str(comparison)
    assert workbench.compare(_run(seed=5), _run(seed=6)).differences == ()


def test_cells_in_one_run_only_and_failed_cells_say_so():
    a = _run(seed=7, labels=("torch", "onnxruntime"))
    b = _run(seed=8, labels=("onnxruntime", "openvino"))
    crashed = Measurement(_cell("onnxruntime", 8), status="crashed", cause="signal 11\nmore")
    b = dataclasses.replace(b, measurements=(*b.measurements[:1], crashed, *b.measurements[2:]))

    verdicts = {(c.runtime, c.batch_size): c.verdict for c in workbench.compare(a, b).cells}

    assert verdicts == {
        ("torch", 1): "only in a",
        ("torch", 8): "only in a",
        ("onnxruntime", 1): "not distinguishable",
        ("onnxruntime", 8): "failed in b: crashed (signal 11)",
        ("openvino", 1): "only in b",
        ("openvino", 8): "only in b",
    }


def test_runs_of_different_models_are_not_matched_unless_asked():
    a, b = _run(seed=9), _run(seed=10, sha256="cd" * 32, model="mlp-v2")

    apart = workbench.compare(a, b)
    together = workbench.compare(a, b, match_model=False)

    assert {cell.verdict for cell in apart.cells} == {"only in a", "only in b"}
    assert len(apart.cells) == 12
    assert apart.differences[0] == f"model: mlp (sha256 {'ab' * 6}) → mlp-v2 (sha256 {'cd' * 6})"
    assert {cell.verdict for cell in together.cells} == {"not distinguishable"}


def test_noisy_cells_are_warned_about_with_the_reason():
    comparison = workbench.compare(_run(seed=11), _run(seed=12, noise_cores=0.6))

    (warning,) = comparison.warnings
    assert warning.startswith("6 of run b's 6 cells were measured on a noisy machine")
    assert all("run b: Other processes used 0.6 cores" in cell.note for cell in comparison.cells)
    table = comparison.to_pandas()
    assert table["noisy_b"].all()
    assert not table["noisy_a"].any()


def test_the_table_has_one_row_per_cell_with_the_interval():
    table = workbench.compare(_run(seed=13), _run(1.5, seed=14)).to_pandas()

    assert len(table) == 6
    assert list(table["runtime"].unique()) == list(BASE_MS)
    assert (table["speedup_low"] <= table["speedup"]).all()
    assert (table["speedup"] <= table["speedup_high"]).all()
    ratio = table["median_a_ms"] / table["median_b_ms"]
    assert np.allclose(ratio, 1.5, rtol=0.06)
    assert (table["verdict"] == "faster").all()

    empty = workbench.compare(Results((), ENVIRONMENT), Results((), ENVIRONMENT)).to_pandas()
    assert empty.empty
    assert "speedup_low" in empty.columns


def test_text_and_html_show_the_verdicts_and_escape_names():
    a = _run(seed=15, labels=("torch",), model="<script>alert(1)</script>")
    b = _run(0.5, seed=16, labels=("torch",), model="<script>alert(1)</script>")

    comparison = workbench.compare(a, b)
    text, html = str(comparison), comparison._repr_html_()

    assert "2 slower" in text
    assert "speed-up of b [95% CI]" in text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_figure_has_a_marker_per_cell_with_intervals_and_a_line_at_one():
    a = _run(seed=17, labels=("torch", "onnxruntime"))
    b = _run(1.5, seed=18, labels=("onnxruntime", "openvino"))

    figure = workbench.compare(a, b).plot()

    (trace,) = figure.data
    assert trace.name == "faster"
    assert len(trace.x) == 2
    assert all(low > 0 for low in trace.error_x.arrayminus)
    assert any(shape.x0 == 1 == shape.x1 for shape in figure.layout.shapes)
    note = " ".join(str(item.text) for item in figure.layout.annotations)
    assert "torch · batch 1: only in a" in note
    assert "openvino · batch 8: only in b" in note


def test_compare_stays_callable_when_its_module_was_imported_first():
    code = (
        "from workbench.compare import Comparison\n"
        "import workbench\n"
        "from workbench.results import Results\n"
        "from workbench.store.environment import current_environment\n"
        "empty = Results((), current_environment())\n"
        "print(type(workbench.compare(empty, empty)) is Comparison)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "True", done.stderr
