"""How close a model gets to the machine's ceiling, and what its cold start costs.

The peak is measured for real, briefly, in a worker; everything else is computed from
measurements built here by hand, so every expected figure can be worked out on paper.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

import workbench
from workbench.bench import peak as peak_module
from workbench.bench.measurement import Cell, Measurement, finished
from workbench.bench.peak import Peak, measure_peak, peak_for
from workbench.results import Results, with_roofline
from workbench.runtimes import RuntimeConfig
from workbench.store.environment import current_environment
from workbench.viz.roofline import cold_start, roofline

FLOPS = 3_000_000_000  # per sample
PEAK = 400.0  # GFLOP/s
# (runtime, batch, median ms, first call ms, load s) -> attained GFLOP/s = 3 × batch / median s
CELLS = (
    ("torch", 1, 20.0, 90.0, 0.5),  # 150 GFLOP/s, 37.5% of the peak
    ("onnxruntime:opt=all", 1, 10.0, 40.0, 0.25),  # 300 GFLOP/s, 75%
    ("onnxruntime:opt=all", 4, 30.0, 60.0, 0.25),  # 400 GFLOP/s, 100%
)
EXPECTED_GFLOPS = [150.0, 300.0, 400.0]


def _measurement(label: str, batch: int, median_ms: float, first_ms: float, load_s: float):
    cell = Cell(RuntimeConfig.parse(label), batch, None)
    samples = [int(median_ms * 1e6)] * 5
    return finished(cell, samples, [median_ms], first_ms=first_ms, load_s=load_s)


@pytest.fixture
def results() -> Results:
    measurements = [_measurement(*cell) for cell in CELLS]
    crashed = Measurement(Cell(RuntimeConfig("openvino"), 1, None), "crashed", cause="SIGSEGV")
    return Results((*measurements, crashed), current_environment(), "resnet-ish")


class CountingStore:
    """Stands in for the store: keeps peaks in a dict and counts the reads."""

    def __init__(self) -> None:
        self.peaks: dict[str, tuple[float, dict]] = {}
        self.reads = 0

    def get_peak(self, fingerprint: str) -> float | None:
        self.reads += 1
        found = self.peaks.get(fingerprint)
        return None if found is None else found[0]

    def set_peak(self, fingerprint: str, gflops: float, details: dict) -> None:
        self.peaks[fingerprint] = (gflops, details)


@pytest.fixture
def fake_measure(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Replace the real measurement by one that records the thread counts it was asked for."""
    calls: list[int | None] = []

    def measure(threads: int | None = None, seconds: float = 2.0) -> Peak:
        calls.append(threads)
        return Peak(123.0, threads or 2, 512, "numpy", {"gflops_by_try": {"numpy 512": 123.0}})

    monkeypatch.setattr(peak_module, "measure_peak", measure)
    monkeypatch.setattr(peak_module, "_measured", {})
    return calls


def test_the_peak_is_measured_in_a_worker_and_is_sane(monkeypatch: pytest.MonkeyPatch):
    pids = []

    class Recorded(peak_module.WorkerProcess):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            pids.append(self.pid)

    monkeypatch.setattr(peak_module, "WorkerProcess", Recorded)
    torch.set_num_threads(1)

    found = measure_peak(threads=2, seconds=0.4, sizes=(128, 256))

    assert 1 < found.gflops < 10_000
    assert found.threads == 2
    assert found.size in (128, 256)
    assert found.method in ("numpy", "torch")
    tries = found.details["gflops_by_try"]
    assert set(tries) == {"numpy 128", "numpy 256", "torch 128", "torch 256"}
    assert found.gflops == max(tries.values())
    assert pids
    assert os.getpid() not in pids
    assert torch.get_num_threads() == 1  # the worker's threads never touched ours


def test_a_store_keeps_the_peak_so_it_is_measured_once(fake_measure):
    environment, store = current_environment(), CountingStore()

    first = peak_for(environment, store)
    again = peak_for(environment, store)

    assert first == again == 123.0
    assert fake_measure == [None]
    gflops, details = store.peaks[environment.fingerprint]
    assert gflops == 123.0
    assert details["method"] == "numpy"
    assert details["size"] == 512
    assert store.reads == 2


def test_a_peak_on_fewer_threads_has_its_own_key(fake_measure):
    environment, store = current_environment(), CountingStore()

    peak_for(environment, store)
    peak_for(environment, store, threads=environment.cores_usable)  # the same as the default
    peak_for(environment, store, threads=environment.cores_usable + 1)

    assert fake_measure == [None, environment.cores_usable + 1]
    assert len(store.peaks) == 2


def test_the_sqlite_store_keeps_the_peak_across_sessions(fake_measure, tmp_path):
    from workbench.store.sqlite import open_store

    environment = current_environment()
    with open_store(tmp_path / "store.sqlite") as store:
        peak_for(environment, store)
    with open_store(tmp_path / "store.sqlite") as store:
        assert peak_for(environment, store) == 123.0

    assert fake_measure == [None]


def test_without_a_store_the_peak_is_kept_for_the_process(fake_measure):
    environment = current_environment()

    assert peak_for(environment) == peak_for(environment) == 123.0
    assert fake_measure == [None]


def test_attained_gflops_and_share_of_the_peak(results: Results):
    table = with_roofline(results, FLOPS, PEAK).to_pandas()

    measured = table.iloc[:3]
    assert list(measured["flops_per_sample"]) == [FLOPS] * 3
    assert np.allclose(measured["gflops_per_s"], EXPECTED_GFLOPS)
    assert np.allclose(measured["share_of_peak"], [0.375, 0.75, 1.0])
    assert np.allclose(measured["share_of_peak"], measured["gflops_per_s"] / PEAK)
    crashed = table.iloc[3]
    assert math.isnan(crashed["gflops_per_s"])
    assert math.isnan(crashed["share_of_peak"])


def test_the_table_shows_gflops_only_when_flops_are_known(results: Results):
    plain = str(results)
    known = with_roofline(results, FLOPS, PEAK)

    assert "GFLOP/s" not in plain
    assert "GFLOP/s (of peak)" in str(known)
    assert "300.0 (75%)" in str(known)
    assert "400.0 (100%)" in known._repr_html_()
    assert "150.0" in str(with_roofline(results, FLOPS))  # no peak: no share


def test_unknown_flops_give_nan_and_a_figure_that_says_why(results: Results):
    class NoCount:
        flops = None

    unknown = with_roofline(results, NoCount(), PEAK)
    table = unknown.to_pandas()

    assert table["flops_per_sample"].isna().all()
    assert table["gflops_per_s"].isna().all()
    assert table["share_of_peak"].isna().all()
    assert "GFLOP/s" not in str(unknown)
    figure = unknown.roofline()
    assert not figure.data
    assert "FLOPs per sample are unknown" in figure.layout.annotations[0].text
    assert results.to_pandas()["gflops_per_s"].isna().all()  # a plain Results too


def test_flops_come_from_inspecting_the_artifact(results: Results, mlp_artifact):
    known = with_roofline(results, mlp_artifact, PEAK)

    assert known.flops_per_sample == workbench.inspect(mlp_artifact).flops > 0
    assert known.measurements == results.measurements
    with pytest.raises(ValueError, match="positive"):
        with_roofline(results, mlp_artifact, 0.0)


def test_cold_start_keeps_load_first_call_and_warm_median_apart(results: Results):
    table = results.cold_start()

    assert list(table.columns) == [
        "model",
        "runtime",
        "batch_size",
        "threads",
        "status",
        "load_s",
        "first_ms",
        "warm_median_ms",
        "first_over_warm",
    ]
    for row, item in zip(table.itertuples(), results.measurements, strict=True):
        assert row.load_s == item.load_s or math.isnan(item.load_s)
        assert row.first_ms == item.first_ms or math.isnan(item.first_ms)
    assert np.allclose(table["first_over_warm"].iloc[:3], [4.5, 4.0, 2.0])
    assert math.isnan(table["first_over_warm"].iloc[3])


def test_the_roofline_figure_has_the_peak_line_and_the_attained_bars(results: Results):
    figure = with_roofline(results, FLOPS, PEAK).roofline()

    lines = [shape for shape in figure.layout.shapes if shape.y0 == shape.y1 == PEAK]
    assert len(lines) == 1
    bars = {trace.name: trace for trace in figure.data}
    assert set(bars) == {"batch 1", "batch 4"}
    assert list(bars["batch 1"].x) == ["torch", "onnxruntime:opt=all"]
    assert np.allclose(bars["batch 1"].y, [150.0, 300.0])
    assert list(bars["batch 1"].text) == ["38% of peak", "75% of peak"]
    assert np.allclose(bars["batch 4"].y, [400.0])
    assert figure.layout.yaxis.range[1] > PEAK
    assert "openvino" in figure.layout.annotations[-1].text  # the crashed cell is named


def test_a_figure_against_another_peak_relabels_the_bars(results: Results):
    figure = roofline(with_roofline(results, FLOPS).to_pandas(), 600.0)

    assert [shape.y0 for shape in figure.layout.shapes] == [600.0]
    assert list(figure.data[0].text) == ["25% of peak", "50% of peak"]


def test_the_cold_start_figure_shows_load_first_call_and_warm_median(results: Results):
    for table in (results.to_pandas(), results.cold_start()):
        figure = cold_start(table)

        bars = {trace.name: trace for trace in figure.data}
        assert list(bars["model load"].x) == ["torch", "onnxruntime:opt=all"]
        assert np.allclose(bars["model load"].y, [0.5, 0.25])
        assert np.allclose(bars["first call"].y, [90.0, 40.0, 60.0])
        assert np.allclose(bars["warm median"].y, [20.0, 10.0, 30.0])
        assert bars["first call"].x[2] == "onnxruntime:opt=all · batch 4"
        assert bars["first call"].text[0] == "4.5× warm"
