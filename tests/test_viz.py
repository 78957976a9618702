"""The figures and the HTML report, drawn from small tables built here by hand."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from workbench import viz

# Median latency in ms of one call at batch size 1; larger batches scale it by batch ** 0.8.
MEDIAN_AT_BATCH_1 = {"torch": 10.0, "onnxruntime": 4.0, "openvino": 5.0}
FAILED_RUNTIME = "onnxruntime:cuda"
WRONG = ("openvino", 1)  # the one cell whose outputs drifted


def make_table(batch_sizes: tuple[int, ...] = (1,), *, all_failed: bool = False) -> pd.DataFrame:
    """One row per cell of a study: three runtimes that ran and one that failed everywhere."""
    rows = []
    for batch in batch_sizes:
        base = _cell("torch", batch)
        for runtime in [*MEDIAN_AT_BATCH_1, FAILED_RUNTIME]:
            row = _cell(runtime, batch) if runtime in MEDIAN_AT_BATCH_1 else _failed(runtime, batch)
            if all_failed:
                row = _failed(runtime, batch)
            rows.append(_compare(row, base))
    return pd.DataFrame(rows)


def _cell(runtime: str, batch: int) -> dict:
    median = MEDIAN_AT_BATCH_1[runtime] * batch**0.8
    wrong = (runtime, batch) == WRONG
    return {
        "runtime": runtime,
        "engine": runtime.split(":", maxsplit=1)[0],
        "provider": "cpu",
        "batch_size": batch,
        "threads": None,
        "status": "ok",
        "cause": "",
        "median_ms": median,
        "ci_low_ms": median * 0.95,
        "ci_high_ms": median * 1.1,
        "throughput_per_s": 1000.0 * batch / median,
        "parity_ok": not wrong,
        "model": "tiny-mlp",
    }


def _failed(runtime: str, batch: int) -> dict:
    row = dict.fromkeys(("median_ms", "ci_low_ms", "ci_high_ms", "throughput_per_s"), math.nan)
    cause = "CUDAExecutionProvider is not available on this machine."
    return (
        row
        | {"runtime": runtime, "batch_size": batch, "threads": None, "status": "failed"}
        | {
            "cause": cause,
            "parity_ok": None,
            "model": "tiny-mlp",
        }
    )


def _compare(row: dict, base: dict) -> dict:
    """Add the speed-up columns as the results table states them."""
    row = row | {"baseline": "torch"}
    if row["runtime"] == "torch" or row["status"] != "ok":
        verdict = "baseline" if row["runtime"] == "torch" else row["status"]
        return (
            row
            | {"speedup": math.nan, "speedup_low": math.nan, "speedup_high": math.nan}
            | {"verdict": verdict}
        )
    value = base["median_ms"] / row["median_ms"]
    low = base["ci_low_ms"] / row["ci_high_ms"]
    high = base["ci_high_ms"] / row["ci_low_ms"]
    verdict = "wrong outputs" if not row["parity_ok"] else "faster"
    return row | {"speedup": value, "speedup_low": low, "speedup_high": high, "verdict": verdict}


def make_samples(table: pd.DataFrame, calls: int = 50) -> pd.DataFrame:
    """Timed calls spread around each ok cell's median."""
    generator = np.random.default_rng(0)
    frames = []
    for row in table[table["status"] == "ok"].itertuples():
        latency = row.median_ms * generator.uniform(0.9, 1.2, size=calls)
        frames.append(
            pd.DataFrame(
                {
                    "runtime": row.runtime,
                    "batch_size": row.batch_size,
                    "threads": None,
                    "latency_ms": latency,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def bars_by_runtime(fig: go.Figure, batch: int) -> dict[str, dict]:
    """Each bar of one batch size: its value, its error arrays and how it is drawn."""
    found = {}
    for trace in fig.data:
        if trace.type != "bar" or trace.offsetgroup != f"batch {batch}":
            continue
        for index, runtime in enumerate(trace.y):
            found[runtime] = {
                "x": trace.x[index],
                "plus": trace.error_x.array[index],
                "minus": trace.error_x.arrayminus[index],
                "text": trace.text[index],
                "pattern": trace.marker.pattern.shape,
            }
    return found


# The speed-up figure


@pytest.mark.parametrize("batch_sizes", [(1,), (1, 4, 16)])
def test_speedup_bars_and_error_bars_are_the_tables_numbers(batch_sizes):
    table = make_table(batch_sizes)
    fig = viz.speedup(table)

    for batch in batch_sizes:
        bars = bars_by_runtime(fig, batch)
        expected = table[(table["batch_size"] == batch) & table["speedup"].notna()]
        assert sorted(bars) == sorted(expected["runtime"])
        for row in expected.itertuples():
            bar = bars[row.runtime]
            assert bar["x"] == pytest.approx(row.speedup)
            assert bar["x"] + bar["plus"] == pytest.approx(row.speedup_high)
            assert bar["x"] - bar["minus"] == pytest.approx(row.speedup_low)
    assert bars_by_runtime(fig, 1)["onnxruntime"]["x"] == pytest.approx(2.5)


def test_speedup_draws_the_baseline_as_a_line_at_one():
    fig = viz.speedup(make_table())

    lines = [shape for shape in fig.layout.shapes if shape.type == "line"]
    assert [(line.x0, line.x1) for line in lines] == [(1, 1)]
    assert any("1\N{MULTIPLICATION SIGN} = torch" in note.text for note in fig.layout.annotations)
    assert "torch" not in bars_by_runtime(fig, 1)  # its speed-up is the line itself


def test_speedup_names_the_failed_runtime_instead_of_drawing_it():
    fig = viz.speedup(make_table((1, 4)))

    plotted = {runtime for trace in fig.data for runtime in trace.y}
    assert FAILED_RUNTIME not in plotted
    notes = " ".join(note.text for note in fig.layout.annotations)
    assert f"{FAILED_RUNTIME} at batch 1, 4: failed" in notes
    assert "CUDAExecutionProvider" in notes


def test_speedup_marks_the_bar_with_wrong_outputs():
    fig = viz.speedup(make_table((1, 4)))

    wrong = bars_by_runtime(fig, 1)["openvino"]
    assert wrong["text"] == "wrong outputs"
    assert wrong["pattern"] == "/"
    right = bars_by_runtime(fig, 4)["openvino"]
    assert right["text"] != "wrong outputs"
    assert not right["pattern"]


def test_speedup_hover_shows_the_median_and_its_interval():
    table = make_table()
    fig = viz.speedup(table)

    trace = next(t for t in fig.data if "onnxruntime" in t.y)
    row = table[(table["runtime"] == "onnxruntime")].iloc[0]
    index = list(trace.y).index("onnxruntime")
    assert list(trace.customdata[index][:3]) == pytest.approx(
        [row.median_ms, row.ci_low_ms, row.ci_high_ms]
    )
    assert "ms" in trace.hovertemplate


def test_speedup_with_nothing_to_compare_says_so():
    fig = viz.speedup(make_table(all_failed=True))

    assert not fig.data
    assert "No runtime has a speed-up" in " ".join(note.text for note in fig.layout.annotations)


def test_a_sweep_over_threads_names_the_threads_of_each_bar():
    table = pd.concat(
        [make_table().assign(threads=1), make_table().assign(threads=math.nan)], ignore_index=True
    )
    fig = viz.speedup(table)

    plotted = {runtime for trace in fig.data for runtime in trace.y}
    assert plotted == {
        "onnxruntime · 1 thread",
        "onnxruntime · default threads",
        "openvino · 1 thread",
        "openvino · default threads",
    }


# The throughput figure


def test_throughput_lines_run_over_the_sorted_batch_sizes():
    table = make_table((16, 1, 4))
    fig = viz.throughput_vs_batch(table)

    assert {trace.name for trace in fig.data} == set(MEDIAN_AT_BATCH_1)
    assert fig.layout.xaxis.type == "log"
    for trace in fig.data:
        assert list(trace.x) == [1, 4, 16]
        rows = table[table["runtime"] == trace.name].sort_values("batch_size")
        assert list(trace.y) == pytest.approx(list(rows["throughput_per_s"]))
        # The slow end of the median's interval is the low end of the throughput's.
        slow = 1000.0 * rows["batch_size"] / rows["ci_high_ms"]
        fast = 1000.0 * rows["batch_size"] / rows["ci_low_ms"]
        assert list(trace.y - trace.error_y.arrayminus) == pytest.approx(list(slow))
        assert list(trace.y + trace.error_y.array) == pytest.approx(list(fast))


def test_throughput_marks_wrong_outputs_and_names_failures():
    fig = viz.throughput_vs_batch(make_table((1, 4)))

    openvino = next(trace for trace in fig.data if trace.name == "openvino")
    assert list(openvino.marker.symbol) == ["x", "circle"]
    assert FAILED_RUNTIME in " ".join(note.text for note in fig.layout.annotations)


# The latency distribution


def test_latency_distribution_has_one_box_trace_per_batch_size():
    table = make_table((1, 4))
    samples = make_samples(table)
    fig = viz.latency_distribution(samples)

    assert [trace.name for trace in fig.data] == ["batch 1", "batch 4"]
    assert sum(len(trace.y) for trace in fig.data) == len(samples)
    assert list(fig.layout.xaxis.ticktext) == list(MEDIAN_AT_BATCH_1)
    assert "ms" in fig.layout.yaxis.title.text


def test_latency_distribution_uses_a_log_axis_only_for_a_wide_spread():
    narrow = make_samples(make_table((1,)))
    wide = make_samples(make_table((1, 64)))  # batch 64 is about 28 times slower than batch 1

    assert viz.latency_distribution(narrow).layout.yaxis.type == "linear"
    assert viz.latency_distribution(wide).layout.yaxis.type == "log"


# Choosing the figures


def titles(figures: list[go.Figure]) -> list[str]:
    return [fig.layout.title.text.split(":")[0] for fig in figures]


def test_choose_adds_throughput_only_for_several_batch_sizes():
    one = make_table((1,))
    several = make_table((1, 8))

    assert titles(viz.choose(one, make_samples(one))) == [
        "Speed-up over the baseline",
        "Latency per call",
    ]
    assert titles(viz.choose(several, make_samples(several))) == [
        "Speed-up over the baseline",
        "Throughput against batch size",
        "Latency per call",
    ]


def test_choose_returns_nothing_when_every_cell_failed():
    assert viz.choose(make_table((1, 4), all_failed=True), None) == []


def test_choose_gives_a_figure_for_a_single_runtime_without_samples():
    table = make_table()
    alone = table[table["runtime"] == "onnxruntime"]

    assert len(viz.choose(alone)) == 1


def test_every_figure_has_a_title_and_the_white_template():
    table = make_table((1, 4))
    for fig in viz.choose(table, make_samples(table)):
        assert fig.layout.title.text.endswith(": tiny-mlp")
        assert fig.layout.height >= 300
        assert fig.layout.template.layout.plot_bgcolor == "white"


# The report


def test_report_carries_plotly_js_once_and_needs_no_network():
    table = make_table((1, 4))
    figures = viz.choose(table, make_samples(table))
    page = viz.html_report("Study", figures, [("Results", "<table><tr><td>1</td></tr></table>")])

    assert len(figures) == 3
    plotly_js = get_plotlyjs()
    assert page.count(plotly_js) == 1
    # plotly.js names a few map-tile URLs of its own; what matters is everything around it.
    rest = page.replace(plotly_js, "")
    assert "cdn." not in rest
    assert "https://cdn" not in rest
    assert "src=" not in rest
    assert rest.count("Plotly.newPlot") == 3
    assert "<table><tr><td>1</td></tr></table>" in rest


def test_report_escapes_headings_and_title():
    hostile = "<script>alert(1)</script>"
    page = viz.html_report(hostile, [], [(hostile, "<p>ok</p>")])

    assert hostile not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3  # title, h1, h2
    assert "<script" not in page


def test_report_places_sections_around_the_figures():
    fig = viz.throughput_vs_batch(make_table((1, 4)))
    page = viz.html_report(
        "Study",
        [fig],
        [("Environment", "<p>env</p>"), ("Results", "<p>res</p>")],
        sections_before=1,
    )

    assert page.index("<p>env</p>") < page.index("Plotly.newPlot") < page.index("<p>res</p>")


def test_write_report_writes_the_whole_page_and_leaves_no_temporary_file(tmp_path: Path):
    fig = viz.speedup(make_table())
    target = tmp_path / "reports" / "study.html"

    written = viz.write_report(target, "Study", [fig], [("Notes", "<p>none</p>")])

    assert written == target
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.rstrip().endswith("</html>")
    assert "<p>none</p>" in text
    assert [path.name for path in target.parent.iterdir()] == ["study.html"]


def test_importing_viz_does_not_import_plotly():
    code = "import sys, workbench.viz; print('plotly' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
