"""The %wb magics through IPython's test shell, as a notebook user types them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

import workbench


@pytest.fixture(scope="module")
def ip():
    shell = globalipapp.get_ipython()
    # A terminal shell shows plain text only; a notebook front end asks for HTML too.
    shell.display_formatter.formatters["text/html"].enabled = True
    shell.run_line_magic("load_ext", "workbench")
    shell.run_cell(
        "import torch\n"
        "torch.manual_seed(0)\n"
        "model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),"
        " torch.nn.Linear(16, 3)).eval()\n"
        "x = torch.randn(2, 8)\n"
    )
    yield shell
    shell.run_line_magic("unload_ext", "workbench")


def run(ip, line: str):
    """Run one magic line; raise what it raised, so tests can expect a UsageError."""
    return ip.run_line_magic("wb", line)


def test_loading_the_extension_imports_no_engine() -> None:
    code = (
        "import sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'workbench')\n"
        "assert 'wb' in ip.magics_manager.magics['line']\n"
        "print(' '.join(m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'plotly')"
        " if m in sys.modules) or 'none')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "none"


def test_export_returns_the_artifact_with_its_parity(ip, tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    artifact = run(ip, f"export model x -o {target} --opset 18")
    assert isinstance(artifact, workbench.Artifact)
    assert artifact.path == target
    assert artifact.opset == 18
    assert artifact.parity.ok
    assert "Parity" in artifact._repr_html_()


def test_static_export_fixes_the_batch(ip, tmp_path: Path) -> None:
    artifact = run(ip, f"export model x -o {tmp_path / 's.onnx'} --static")
    assert artifact.inputs[0].shape == (2, 8)


def test_names_are_found_inside_a_calling_function(ip) -> None:
    ip.run_cell(
        "def export_inside():\n"
        "    local_model = model\n"
        "    local_x = x * 2\n"
        "    return get_ipython().run_line_magic('wb', 'export local_model local_x')\n"
        "inside = export_inside()\n"
    )
    inside = ip.user_ns["inside"]
    assert inside.parity.ok
    assert [row.batch_size for row in inside.parity.rows] == [2, 4]


def test_bench_returns_results_with_o_and_shows_nothing_with_q(ip) -> None:
    ip.user_ns["artifact"] = run(ip, "export model x")
    with capture_output() as captured:
        results = run(ip, "bench artifact -r onnxruntime -r openvino -b 1 3 --budget 0.2 -o -q")
    assert isinstance(results, workbench.Results)
    assert sorted((m.cell.label, m.cell.batch_size) for m in results.measurements) == [
        ("onnxruntime", 1),
        ("onnxruntime", 3),
        ("openvino", 1),
        ("openvino", 3),
    ]
    assert all(m.ok for m in results.measurements)
    assert captured.outputs == []


def test_bench_without_o_displays_the_table_and_plots_and_returns_nothing(ip) -> None:
    with capture_output() as captured:
        returned = run(ip, "bench model x -r torch -r onnxruntime --budget 0.2")
    assert returned is None
    kinds = [output.data for output in captured.outputs]
    assert any("text/html" in data and "speed-up" in data["text/html"] for data in kinds)
    assert any("application/vnd.plotly.v1+json" in data for data in kinds)


def test_inspect_and_runtimes(ip, tmp_path: Path) -> None:
    path = tmp_path / "i.onnx"
    run(ip, f"export model x -o {path}")
    summary = run(ip, f"inspect {path}")
    assert summary.parameters == 8 * 16 + 16 + 16 * 3 + 3
    listing = run(ip, "runtimes --no-probe")
    assert {"torch", "onnxruntime", "openvino"} <= {item.name for item in listing}


def test_help_is_built_from_the_arguments(ip) -> None:
    doc = ip.find_line_magic("wb").__doc__
    for verb in ("export", "inspect", "bench", "runtimes"):
        assert verb in doc
    with capture_output() as captured:
        assert run(ip, "help bench") is None
    assert "--batch-size" in captured.stdout
    with capture_output() as captured:
        assert run(ip, "bench -h") is None
    assert "--budget" in captured.stdout


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("", "required: VERB"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("export model", "required: inputs"),
        ("bench model x --frob", "unrecognized arguments: --frob"),
        ("bench model x -b eight", "invalid int value: 'eight'"),
        ("export no_such_model x", "no variable 'no_such_model'"),
        ("export $model x", "plain variable names"),
        ("export {model} x", "plain variable names"),
    ],
)
def test_bad_arguments_raise_a_usage_error_with_the_usage_line(ip, line: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        run(ip, line)
    message = str(caught.value)
    assert words in message
    if "variable" not in words:
        assert message.startswith("%wb")


def test_the_line_is_never_evaluated(ip, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    hostile = "{__import__('os').system('touch PWNED')}"
    for line in (f"export model {hostile}", f"bench {hostile}", f"inspect {hostile}"):
        with pytest.raises(UsageError):
            ip.run_line_magic("wb", line)
        ip.run_cell(f"%wb {line}")
    assert not (tmp_path / "PWNED").exists()
    assert not Path("PWNED").exists()


def test_unload_removes_the_magic_and_load_brings_it_back(ip) -> None:
    ip.run_line_magic("unload_ext", "workbench")
    assert "wb" not in ip.magics_manager.magics["line"]
    ip.run_line_magic("load_ext", "workbench")
    assert "wb" in ip.magics_manager.magics["line"]


def test_optimize_and_autotune_verbs(ip, tmp_path: Path) -> None:
    ip.run_cell(
        "import numpy as np\nimport workbench\n"
        "x_val = np.random.default_rng(0).standard_normal((64, 8)).astype('float32')\n"
        f"small = workbench.export(model, x, {str(tmp_path / 'small.onnx')!r})\n"
    )
    variants = run(ip, "optimize small -p slim int8-dynamic --data x_val -q")
    assert isinstance(variants, workbench.Variants)
    assert [v.name for v in variants] == ["fp32", "slim", "int8-dynamic"]
    assert variants.get("slim").metric_name == "agreement"

    tuning = run(
        ip, "autotune small --data x_val --metric agreement -r onnxruntime -t 1 -q --budget 2"
    )
    assert isinstance(tuning, workbench.Tuning)
    assert tuning.recommendation is not None
    assert tuning.recommendation.runtime == "onnxruntime"
    with pytest.raises(UsageError, match="no variable 'nothing'"):
        run(ip, "autotune small --data nothing -q")
