"""The `workbench` command, run as a user runs it: in a subprocess, reading stdout and the exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def workbench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # The console script of the interpreter running the tests, as installed by pip.
    script = Path(sys.executable).with_name("workbench")
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "workbench.cli"]
    return subprocess.run(
        [*prefix, *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """y = relu(x W + b) with a dynamic batch: 16 features in, 4 out."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("cli") / "linear.onnx"
    onnx.save(model, path)
    return path


def test_version_and_help() -> None:
    done = workbench("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("workbench ")
    help_text = workbench("bench", "--help")
    assert help_text.returncode == 0
    assert "--batch-size" in help_text.stdout


def test_runtimes_lists_the_three_engines_without_importing_them() -> None:
    done = workbench("runtimes", "--no-probe", "--json")
    assert done.returncode == 0, done.stderr
    listed = {item["name"]: item for item in json.loads(done.stdout)}
    for name in ("torch", "onnxruntime", "openvino"):
        assert listed[name]["available"] is True
        assert listed[name]["version"]


def test_inspect_prints_parameters_and_flops(linear_model: Path) -> None:
    done = workbench("inspect", str(linear_model), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["parameters"] == 16 * 4 + 4
    assert summary["flops"] == 2 * 16 * 4 + 4


def test_bench_json_gives_one_record_per_cell(linear_model: Path) -> None:
    done = workbench(
        "bench",
        str(linear_model),
        "-r",
        "onnxruntime",
        "-r",
        "onnx-reference",
        "-b",
        "1",
        "3",
        "--budget",
        "0.2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    cells = report["cells"]
    assert sorted((c["runtime"], c["batch_size"]) for c in cells) == [
        ("onnx-reference", 1),
        ("onnx-reference", 3),
        ("onnxruntime", 1),
        ("onnxruntime", 3),
    ]
    for cell in cells:
        assert cell["status"] == "ok"
        assert cell["ci_low_ms"] <= cell["median_ms"] <= cell["ci_high_ms"]
    reference_cells = [c for c in cells if c["runtime"] == "onnx-reference"]
    assert all(c["parity_ok"] is True for c in reference_cells)
    assert report["environment"]["packages"]["onnxruntime"]


def test_bench_table_and_html_report(linear_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = workbench(
        "bench",
        str(linear_model),
        "-r",
        "onnxruntime",
        "-r",
        "openvino",
        "--budget",
        "0.2",
        "--html",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "fastest at batch 1" in done.stdout
    assert "openvino" in done.stdout
    assert out.stat().st_size > 100_000  # plotly.js travels inside the file


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["bench", "{model}", "-r", "tensorflow"], 2, "no runtime called 'tensorflow'"),
        (["bench", "{model}", "-r", "onnxruntime:speed=max"], 2, "has no option 'speed'"),
        (["bench", "{model}", "-r", "openvino:hint=fast"], 2, "takes one of latency, throughput"),
        (["bench", "{model}", "-b", "0"], 2, "batch_sizes must be positive"),
        (["bench", "{model}", "-b", "x"], 2, "invalid int value"),
        (["bench", "{missing}"], 1, "does not exist"),
        (["bench", "{model}", "-r", "onnxruntime:provider=cuda"], 1, "providers available are: "),
        (["inspect", "{model}", "--dims", "seq"], 2, "NAME=SIZE"),
        (["frobnicate"], 2, "invalid choice"),
    ],
)
def test_bad_arguments_get_one_line_and_the_right_exit(
    linear_model: Path, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    filled = [a.format(model=linear_model, missing=tmp_path / "nope.onnx") for a in args]
    done = workbench(*filled)
    assert done.returncode == code, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_onnx_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(np.random.default_rng(1).bytes(300))
    done = workbench("inspect", str(junk))
    assert done.returncode == 1
    assert f"{junk} is not an ONNX model" in done.stderr


@pytest.mark.slow
def test_demo_end_to_end_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "demo" / "workbench-demo.html"
    done = workbench("demo", "--quick", "--budget", "0.3", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    assert "parity ok" in done.stdout
    for engine in ("torch", "onnxruntime", "openvino"):
        assert engine in done.stdout
    page = out.read_text()
    assert page.count("Plotly.newPlot") >= 2
    assert "Environment" in page
    accuracy = float(done.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy > 80.0


def test_optimize_and_autotune_from_a_shell(linear_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(1).standard_normal((64, 16)).astype(np.float32))

    made = workbench(
        "optimize", str(linear_model), "-p", "slim", "int8-dynamic", "fusion",
        "--data", str(data), "-o", str(tmp_path / "variants"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "int8-dynamic [ok]" in made.stdout
    assert "fusion [skipped]: not a transformer" in made.stdout
    assert (tmp_path / "variants" / "int8-dynamic.onnx").is_file()

    html = tmp_path / "tune.html"
    tuned = workbench(
        "autotune", str(linear_model), "--data", str(data), "--budget", "3", "-t", "1",
        "--html", str(html),
    )  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    assert tuned.stdout.startswith("Recommendation: ")
    assert "onnxruntime" in tuned.stdout.splitlines()[0]
    assert "Pareto front" in html.read_text()

    wrong = workbench("optimize", str(linear_model), "--data", str(tmp_path / "nope.npy"))
    assert wrong.returncode == 2
    assert "could not be read" in wrong.stderr
