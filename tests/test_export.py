"""Exporting tiny models with ``workbench.export`` and reading them back with ``workbench.load``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from models import MODELS, cnn, mlp, transformer, two_inputs
from torch import nn

import workbench

ORT_PROVIDERS = ["CPUExecutionProvider"]


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the file in this process, independently of the workbench's own parity check."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=ORT_PROVIDERS)
    return session.run(None, feeds)


class DataDependentBranch(nn.Module):
    """Python control flow on a tensor value: torch.export refuses it, tracing records one path."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.linear(x)
        return -self.linear(x)


class Singular(nn.Module):
    """Singular values: no ONNX translation in either exporter."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(x)[1]


# --- the three registry models, batch dynamic and static --------------------------------------


@pytest.fixture(
    scope="module",
    params=[(name, dynamic) for name in MODELS for dynamic in (True, False)],
    ids=lambda p: f"{p[0]}-{'dynamic' if p[1] else 'static'}",
)
def exported(request, tmp_path_factory):
    name, dynamic = request.param
    model, inputs = MODELS[name]()
    path = tmp_path_factory.mktemp(name) / f"{name}.onnx"
    artifact = workbench.export(model, inputs, path, dynamic_batch=dynamic)
    return name, dynamic, model, inputs, path, artifact


def test_export_passes_parity(exported):
    _, _, _, _, path, artifact = exported
    assert path.is_file()
    assert artifact.path == path
    assert artifact.parity is not None
    assert artifact.parity.ok, str(artifact.parity)
    assert artifact.parity_ok is True
    assert artifact.parity.summary.startswith("parity ok")
    assert (artifact.parity.reference, artifact.parity.candidate) == ("torch", "onnxruntime")
    assert "parity ok" in repr(artifact)


def test_parity_runs_a_second_batch_size_only_when_dynamic(exported):
    _, dynamic, _, inputs, _, artifact = exported
    batch = inputs[0].shape[0]
    expected_batches = [batch, batch + 2] if dynamic else [batch]
    rows = artifact.parity.rows
    assert sorted({row.batch_size for row in rows}) == expected_batches
    names = [spec.name for spec in artifact.outputs]
    assert len(rows) == len(names) * len(expected_batches)
    for row in rows:
        assert row.name in names
        assert row.shape[0] == row.batch_size
        assert row.max_abs <= row.atol + row.rtol * 10  # float32 error, far inside tolerance


def test_batch_dimension_is_symbolic_only_when_dynamic(exported):
    _, dynamic, _, inputs, path, artifact = exported
    batch = inputs[0].shape[0]
    want = "batch" if dynamic else batch
    assert [spec.shape[0] for spec in artifact.inputs] == [want] * len(inputs)
    assert [spec.shape[1:] for spec in artifact.inputs] == [tuple(t.shape[1:]) for t in inputs]
    assert artifact.batch_is_dynamic is dynamic
    # The file itself says the same, not only the artifact's record of it.
    proto = onnx.load(str(path))
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert (dim.dim_param if dynamic else dim.dim_value) == want
    # And ONNX Runtime treats it so: another batch size runs only when the batch is dynamic.
    feeds = {artifact.inputs[0].name: inputs[0].repeat(2, *[1] * (inputs[0].dim() - 1)).numpy()}
    if dynamic:
        assert _run_onnx(path, feeds)[0].shape[0] == 2 * batch
    else:
        with pytest.raises(Exception, match=r"(?i)dimension|shape"):
            _run_onnx(path, feeds)


def test_identity_and_provenance(exported):
    _, dynamic, _, _, path, artifact = exported
    assert artifact.sha256 == _sha256(path)
    assert artifact.model_bytes == path.stat().st_size
    assert artifact.external_files == ()
    assert artifact.total_bytes == path.stat().st_size
    assert artifact.opset > 0
    assert artifact.ir_version > 0
    assert artifact.opset == artifact.opsets["ai.onnx"]
    assert artifact.provenance.tool == "workbench.export"
    assert artifact.provenance.exporter == "dynamo"
    assert artifact.provenance.fallback_reason == ""
    assert artifact.provenance.options == {"dynamic_batch": dynamic, "opset": None}
    assert artifact.provenance.versions["torch"] == torch.__version__
    assert [spec.dtype for spec in artifact.outputs] == ["float32"] * len(artifact.outputs)
    assert [spec.dtype for spec in artifact.inputs] == ["float32"]


def test_the_file_computes_what_the_model_computes(exported):
    """Checked here with ONNX Runtime in this process, not through the parity report."""
    _, _, model, inputs, path, artifact = exported
    with torch.inference_mode():
        want = model(*inputs).numpy()
    got = _run_onnx(path, {artifact.inputs[0].name: inputs[0].numpy()})
    assert len(got) == 1
    np.testing.assert_allclose(got[0], want, rtol=1e-3, atol=1e-4)


def test_load_gives_the_same_identity_and_signature(exported):
    _, _, _, _, path, artifact = exported
    loaded = workbench.load(path)
    assert loaded.sha256 == artifact.sha256
    assert loaded.inputs == artifact.inputs
    assert loaded.outputs == artifact.outputs
    assert (loaded.opset, loaded.ir_version) == (artifact.opset, artifact.ir_version)
    assert loaded.provenance.tool == "load"
    assert loaded.parity is None
    assert loaded.parity_ok is None


# --- inputs in other shapes --------------------------------------------------------------------


def test_two_inputs_given_by_name_and_two_outputs(tmp_path):
    model, (x, mask) = two_inputs()
    artifact = workbench.export(model, {"x": x, "mask": mask}, tmp_path / "two.onnx")
    assert artifact.parity.ok, str(artifact.parity)
    assert [spec.name for spec in artifact.inputs] == ["x", "mask"]
    assert [spec.shape for spec in artifact.inputs] == [("batch", 16), ("batch", 16)]
    assert [spec.shape for spec in artifact.outputs] == [("batch", 8), ("batch",)]
    rows = {(row.name, row.batch_size) for row in artifact.parity.rows}
    names = [spec.name for spec in artifact.outputs]
    assert rows == {(name, batch) for name in names for batch in (3, 5)}
    relu, total = _run_onnx(artifact.path, {"x": x.numpy(), "mask": mask.numpy()})
    with torch.inference_mode():
        want_relu, want_total = model(x, mask)
    np.testing.assert_allclose(relu, want_relu.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(total, want_total.numpy(), rtol=1e-3, atol=1e-4)


def test_a_single_tensor_is_accepted_and_no_path_means_a_scratch_file():
    model, (x,) = mlp()
    artifact = workbench.export(model, x)
    assert artifact.path.is_file()
    assert artifact.path.suffix == ".onnx"
    assert artifact.path.name.startswith("Sequential-")
    assert artifact.parity.ok


class Variadic(nn.Module):
    """``forward(self, first, *rest)``: a wrapper's usual signature."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 2)

    def forward(self, first: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return self.linear(first + sum(rest))


@pytest.mark.parametrize("dynamic", [True, False], ids=["dynamic", "static"])
def test_variadic_inputs_are_named_as_the_file_names_them(tmp_path, dynamic):
    torch.manual_seed(0)
    inputs = tuple(torch.randn(3, 4) for _ in range(3))
    artifact = workbench.export(
        Variadic().eval(), inputs, tmp_path / "v.onnx", dynamic_batch=dynamic
    )
    assert artifact.provenance.exporter == "dynamo", artifact.provenance.fallback_reason
    assert [spec.name for spec in artifact.inputs] == ["first", "rest_0", "rest_1"]
    assert artifact.batch_is_dynamic is dynamic
    assert artifact.parity.ok, str(artifact.parity)
    assert len(artifact.parity.rows) == (2 if dynamic else 1)


# --- training mode -----------------------------------------------------------------------------


def test_one_example_sample_still_gives_a_dynamic_batch_with_the_dynamo_exporter(tmp_path):
    # torch.export takes a size of 1 for a constant: one image sliced from a dataset (a view
    # with the dataset's strides) made the batch of the demo's CNN impossible to keep dynamic.
    from workbench.demo import digits_cnn, load_digits

    one_image = load_digits().test_x[:1]
    artifact = workbench.export(digits_cnn().eval(), one_image, tmp_path / "one.onnx")
    assert artifact.provenance.exporter == "dynamo", artifact.provenance.fallback_reason
    assert artifact.inputs[0].shape[0] == "batch"
    assert [row.batch_size for row in artifact.parity.rows] == [1, 3]
    assert artifact.parity.ok


def test_a_model_in_training_mode_is_exported_in_eval_mode_and_restored(tmp_path):
    model, inputs = transformer()
    model.train()
    with pytest.warns(workbench.WorkbenchWarning, match="training mode"):
        artifact = workbench.export(model, inputs, tmp_path / "t.onnx", dynamic_batch=False)
    assert model.training
    assert all(module.training for module in model.modules())
    # Dropout is active in training mode, so only an eval-mode export can match eval outputs.
    assert artifact.parity.ok, str(artifact.parity)
    with torch.inference_mode():
        want = model.eval()(*inputs).numpy()
    got = _run_onnx(artifact.path, {artifact.inputs[0].name: inputs[0].numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_training_mode_is_restored_when_the_export_fails(tmp_path):
    model, _ = cnn()
    model.train()
    with (
        pytest.warns(workbench.WorkbenchWarning, match="training mode"),
        pytest.raises(workbench.InputError),
    ):
        workbench.export(model, torch.randn(4, 3, 8, 8), tmp_path / "c.onnx")
    assert model.training
    assert model[1].training  # the batch norm too


def test_an_eval_model_gives_no_warning(tmp_path):
    model, inputs = mlp()
    workbench.export(model, inputs, tmp_path / "m.onnx")  # a warning would be an error here
    assert not model.training


# --- the TorchScript fallback ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the trace's own caveat
def test_data_dependent_control_flow_falls_back_to_torchscript(tmp_path, no_staging_left):
    model = DataDependentBranch().eval()
    x = torch.rand(4, 8)  # positive, so the traced branch is the one every check takes
    artifact = workbench.export(model, (x,), tmp_path / "branch.onnx")
    assert artifact.provenance.exporter == "torchscript"
    reason = artifact.provenance.fallback_reason
    assert reason.startswith("TorchExportError")
    assert "data-dependent" in reason  # the cause, not the exporter's boilerplate
    assert "Next steps" not in reason
    assert artifact.parity.ok, str(artifact.parity)
    assert {row.batch_size for row in artifact.parity.rows} == {4, 6}
    # The TorchScript exporter leaves output batch dims unnamed; the workbench names them.
    assert artifact.inputs[0].shape == ("batch", 8)
    assert artifact.outputs[0].shape == ("batch", 4)
    assert artifact.sha256 == _sha256(artifact.path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["branch.onnx"]
    no_staging_left(tmp_path)


def test_a_dynamo_failure_after_a_partial_write_falls_back_cleanly(tmp_path, monkeypatch):
    from workbench.export import pytorch

    def broken(model, inputs, target, dynamic_batch, opset):
        target.write_bytes(b"half a model")
        (target.parent / "weights.data").write_bytes(b"\0" * 64)
        raise RuntimeError("the dynamo exporter broke here")

    monkeypatch.setattr(pytorch, "_export_dynamo", broken)
    model, inputs = mlp()
    artifact = workbench.export(model, inputs, tmp_path / "m.onnx", dynamic_batch=False)
    assert artifact.provenance.exporter == "torchscript"
    assert artifact.provenance.fallback_reason == "RuntimeError: the dynamo exporter broke here"
    assert artifact.parity.ok
    assert artifact.inputs[0].shape == (4, 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no stray weights.data


# --- both exporters failing --------------------------------------------------------------------


def test_an_operator_neither_exporter_knows_is_named(tmp_path, no_staging_left):
    path = tmp_path / "svd.onnx"
    with pytest.raises(workbench.ExportError) as caught:
        workbench.export(Singular().eval(), (torch.randn(4, 3, 3),), path)
    message = str(caught.value)
    assert "Singular" in message
    assert "aten::linalg_svd" in message
    assert "opset=" in message
    assert "custom translation" in message
    assert "Next steps" not in message
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    no_staging_left(tmp_path)


# --- wrong inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "words"),
    [
        ("a string", ["example_inputs must be a tensor", "got a str"]),
        ([torch.randn(4, 32), 3], ["example_inputs[1] is a int", "torch.Tensor"]),
        ({"input": [1.0, 2.0]}, ["example_inputs['input'] is a list", "torch.Tensor"]),
        (42, ["example_inputs must be a tensor", "got a int"]),
        (torch.randn(4, 31), ["Sequential failed", "(4, 31)", "forward(", "mat1 and mat2"]),
        ((torch.randn(4, 32), torch.randn(4, 32)), ["Sequential failed", "TypeError", "forward("]),
    ],
    ids=["string", "list-with-int", "dict-with-list", "int", "wrong-features", "too-many"],
)
def test_bad_inputs_raise_input_error_and_write_nothing(tmp_path, inputs, words):
    model, _ = mlp()
    path = tmp_path / "out" / "m.onnx"
    with pytest.raises(workbench.InputError) as caught:
        workbench.export(model, inputs, path)
    for word in words:
        assert word in str(caught.value)
    assert not path.exists()
    assert not path.parent.exists() or list(path.parent.iterdir()) == []


def test_export_takes_a_module(tmp_path):
    _, inputs = mlp()
    with pytest.raises(workbench.ExportError, match=r"takes a torch\.nn\.Module; got a function"):
        workbench.export(lambda x: x, inputs, tmp_path / "f.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_path_is_refused(tmp_path):
    model, inputs = mlp()
    with pytest.raises(workbench.ExportError, match="is a folder"):
        workbench.export(model, inputs, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- atomic write ------------------------------------------------------------------------------


@pytest.fixture
def previous(tmp_path):
    """A good model already at the path, which a failed export must leave as it was."""
    from onnx import TensorProto, helper

    path = tmp_path / "model.onnx"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "previous",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [4, 32])],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path, path.read_bytes()


def test_a_crash_while_moving_into_place_leaves_the_previous_file(
    previous, monkeypatch, no_staging_left
):
    from workbench.export import pytorch

    path, before = previous

    def crash(staging, staged, target):
        assert staged.stat().st_size > 0  # the new model was written completely, then this
        raise OSError("no space left on device")

    monkeypatch.setattr(pytorch, "_move_into_place", crash)
    model, inputs = cnn()
    with pytest.raises(OSError, match="no space left"):
        workbench.export(model, inputs, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]
    no_staging_left(path.parent)


def test_both_exporters_crashing_mid_write_leave_nothing(tmp_path, monkeypatch, no_staging_left):
    from torch.onnx import ONNXProgram

    from workbench.export import pytorch

    def half_save(self, destination, *args, **kwargs):
        Path(destination).write_bytes(b"\x08\x08half")
        raise OSError("disk full while saving")

    def half_script(model, inputs, target, dynamic_batch, opset):
        target.write_bytes(b"\x08\x08half")
        raise RuntimeError("tracing crashed")

    monkeypatch.setattr(ONNXProgram, "save", half_save)
    monkeypatch.setattr(pytorch, "_export_torchscript", half_script)
    model, inputs = mlp()
    path = tmp_path / "m.onnx"
    with pytest.raises(workbench.ExportError) as caught:
        workbench.export(model, inputs, path)
    assert "disk full while saving" in str(caught.value)
    assert "tracing crashed" in str(caught.value)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
    no_staging_left(tmp_path)


def test_a_failed_export_over_a_previous_file_keeps_it(previous, no_staging_left):
    path, before = previous
    with pytest.raises(workbench.ExportError):
        workbench.export(Singular().eval(), (torch.randn(4, 3, 3),), path)
    assert path.read_bytes() == before
    assert workbench.load(path).inputs[0].shape == (4, 32)
    no_staging_left(path.parent)


# --- parity failures are reported, not raised --------------------------------------------------


def _shift_onnx_outputs(monkeypatch, offset: float) -> None:
    """Make ONNX Runtime's answers in the parity worker differ from PyTorch's by ``offset``."""
    from workbench.executors import local

    real = local.run_in_worker

    def shifted(*args, **kwargs):
        return [[out + np.float32(offset) for out in outs] for outs in real(*args, **kwargs)]

    monkeypatch.setattr(local, "run_in_worker", shifted)


def test_a_parity_failure_is_a_warning_and_a_report(tmp_path, monkeypatch):
    _shift_onnx_outputs(monkeypatch, 0.05)
    model, inputs = two_inputs()
    with pytest.warns(workbench.WorkbenchWarning, match="TwoInputs: parity FAILED"):
        artifact = workbench.export(model, inputs, tmp_path / "two.onnx")
    report = artifact.parity
    assert report.ok is False
    assert artifact.parity_ok is False
    assert "parity FAILED" in repr(artifact)
    assert all(not row.ok for row in report.rows)
    assert report.worst.name in {spec.name for spec in artifact.outputs}
    assert report.worst.max_abs == pytest.approx(0.05, rel=1e-3)
    assert "FAILED" in report.summary
    assert repr(report.worst.name) in report.summary
    text = str(report)
    assert "onnxruntime vs torch" in text
    for word in ("output", "max abs", "verdict", "outside tolerance", report.worst.name):
        assert word in text
    assert len(text.splitlines()) >= 1 + len(report.rows)
    html = report._repr_html_().split("</style>")[-1]  # the style sheet names every class
    assert "<table" in html
    assert html.count('class="wb-bad"') == 1 + len(report.rows)  # the verdict and each row
    assert 'class="wb-good"' not in html
    assert report.worst.name in html
    assert artifact.path.is_file()  # the file is kept: the user decides what to do with it


def test_tolerances_decide_the_verdict(tmp_path, monkeypatch):
    _shift_onnx_outputs(monkeypatch, 0.05)
    model, inputs = mlp()
    artifact = workbench.export(
        model, inputs, tmp_path / "m.onnx", tolerances={"float32": (0.1, 0.0)}
    )
    assert artifact.parity.ok
    assert {(row.atol, row.rtol) for row in artifact.parity.rows} == {(0.1, 0.0)}
    with pytest.warns(workbench.WorkbenchWarning, match="parity FAILED"):
        strict = workbench.export(
            model, inputs, tmp_path / "m2.onnx", tolerances={"float32": (0.01, 0.0)}
        )
    assert not strict.parity.ok
    assert "atol 0.01" in strict.parity.summary


def test_nan_in_the_export_fails_parity(tmp_path, monkeypatch):
    from workbench.executors import local

    real = local.run_in_worker

    def with_nan(*args, **kwargs):
        runs = real(*args, **kwargs)
        runs[0][0] = runs[0][0].copy()
        runs[0][0][0, 0] = np.nan
        return runs

    monkeypatch.setattr(local, "run_in_worker", with_nan)
    model, inputs = mlp()
    with pytest.warns(workbench.WorkbenchWarning, match="NaN"):
        artifact = workbench.export(model, inputs, tmp_path / "m.onnx")
    assert [row.ok for row in artifact.parity.rows] == [False, True]
    assert artifact.parity.worst.batch_size == 4


def test_a_parity_worker_failure_is_reported(tmp_path, monkeypatch):
    from workbench.bench.process import WorkerFailedError
    from workbench.executors import local

    def fail(*args, **kwargs):
        raise WorkerFailedError("load", "the session could not be created")

    monkeypatch.setattr(local, "run_in_worker", fail)
    model, inputs = mlp()
    with pytest.warns(workbench.WorkbenchWarning, match="parity not established"):
        artifact = workbench.export(model, inputs, tmp_path / "m.onnx")
    assert artifact.parity.ok is False
    assert artifact.parity.rows == ()
    assert "the session could not be created" in artifact.parity.summary


# --- load and external data --------------------------------------------------------------------


def test_load_of_the_shared_export(mlp_artifact):
    loaded = workbench.load(str(mlp_artifact.path))
    assert loaded.path == mlp_artifact.path
    assert loaded.sha256 == mlp_artifact.sha256 == _sha256(mlp_artifact.path)
    assert loaded.inputs == mlp_artifact.inputs
    assert loaded.outputs == mlp_artifact.outputs
    assert loaded.name == "mlp"


def test_external_data_beside_the_model_is_listed_and_counted(mlp_artifact, tmp_path):
    proto = onnx.load(str(mlp_artifact.path))
    path = tmp_path / "split.onnx"
    onnx.save(
        proto, str(path), save_as_external_data=True, location="split.onnx.data", size_threshold=0
    )
    data = tmp_path / "split.onnx.data"
    assert data.stat().st_size >= (32 * 64 + 64 + 64 * 10 + 10) * 4  # every weight moved there
    loaded = workbench.load(path)
    assert loaded.external_files == (("split.onnx.data", data.stat().st_size),)
    assert loaded.model_bytes == path.stat().st_size
    assert loaded.total_bytes == path.stat().st_size + data.stat().st_size
    assert loaded.total_bytes > mlp_artifact.total_bytes // 2
    assert loaded.sha256 == _sha256(path, data)
    assert loaded.inputs == mlp_artifact.inputs
    # The weights count: changing the data file changes the identity.
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\1")
    assert workbench.load(path).sha256 != loaded.sha256


def test_external_data_in_a_subfolder_is_allowed(mlp_artifact, tmp_path):
    proto = onnx.load(str(mlp_artifact.path))
    path = tmp_path / "m.onnx"
    (tmp_path / "weights").mkdir()
    onnx.save(
        proto, str(path), save_as_external_data=True, location="weights/m.bin", size_threshold=0
    )
    loaded = workbench.load(path)
    assert [name for name, _ in loaded.external_files] == ["weights/m.bin"]
    feeds = {"input": np.ones((2, 32), dtype=np.float32)}
    assert _run_onnx(path, feeds)[0].shape == (2, 10)
