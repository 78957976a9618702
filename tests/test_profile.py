"""The user's story through `workbench.profile`: which nodes of my model take the time?

Every node name the profile reports as part of the graph must be a node name of the ONNX file,
whatever the engine renamed, fused or inserted; what cannot be tied to a node is listed apart.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import hostile_runtimes as hostile
import models
import numpy as np
import onnx
import plotly.graph_objects as go
import pytest
from onnx import TensorProto, helper, numpy_helper

import workbench
from workbench.bench.process import WorkerDiedError
from workbench.runtimes import register, unregister

RUNS = 20
SCRIPT_NAME = "<img src=x onerror=alert(1)>"


def _conv_net(path: Path) -> Path:
    """Two 3x3 convolutions with ReLU on 64x64 images, then pooling and a classifier."""
    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)

    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="conv_1", pads=pads),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu_1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv_2", pads=pads),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu_2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["logits"], name="classifier", transB=1),
    ]
    weights = [weight("w1", 32, 3, 3, 3), weight("b1", 32), weight("w2", 32, 32, 3, 3)]
    weights += [weight("b2", 32), weight("w3", 10, 32), weight("b3", 10)]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 64, 64])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph(nodes, "conv_net", [image], [logits], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _residual_net(path: Path) -> Path:
    """A residual block without biases: 3x3, 3x3 plus a 1x1 shortcut, added, then ReLU."""
    rng = np.random.default_rng(1)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)

    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["image", "w0"], ["x"], name="stem", pads=pads),
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=pads),
        helper.make_node("Relu", ["a"], ["a_relu"], name="relu_a"),
        helper.make_node("Conv", ["a_relu", "wb"], ["b"], name="conv_b", pads=pads),
        helper.make_node("Conv", ["x", "ws"], ["s"], name="shortcut"),
        helper.make_node("Add", ["b", "s"], ["sum"], name="residual"),
        helper.make_node("Relu", ["sum"], ["out"], name="relu_out"),
    ]
    weights = [weight("w0", 16, 3, 3, 3), weight("wa", 16, 16, 3, 3)]
    weights += [weight("wb", 16, 16, 3, 3), weight("ws", 16, 16, 1, 1)]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 16, 32, 32])
    graph = helper.make_graph(nodes, "residual_net", [image], [out], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _node_names(target: workbench.Artifact | Path) -> set[str]:
    return {node["name"] for node in workbench.inspect(target).graph["nodes"]}


@pytest.fixture(scope="module")
def conv_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _conv_net(tmp_path_factory.mktemp("conv") / "conv_net.onnx")


@pytest.fixture(scope="module")
def ort_profile(conv_net: Path) -> workbench.Profile:
    return workbench.profile(conv_net, runs=RUNS)


@pytest.fixture(scope="module")
def openvino_profile(conv_net: Path) -> workbench.Profile:
    return workbench.profile(conv_net, "openvino", runs=RUNS)


@pytest.fixture(autouse=True)
def _no_worker_survives():
    # Only processes started during the test count: kernels of earlier notebook tests may linger.
    before = set(hostile.leftover_workers())
    yield
    assert [found for found in hostile.leftover_workers() if found not in before] == []


def _check_tied_to_graph(profile: workbench.Profile, names: set[str]) -> None:
    table = profile.per_node
    assert set(table.loc[table["in_graph"], "node"]) <= names
    assert set(profile.unmatched) == set(table.loc[~table["in_graph"], "node"])
    assert not set(profile.unmatched) & names
    assert all(set(fused) <= names for fused in table["fused"])
    assert table["share"].sum() == pytest.approx(1.0)
    assert profile.total_ms == pytest.approx(table["ms"].sum())
    assert profile.per_op_type["ms"].sum() == pytest.approx(profile.total_ms)


def test_onnxruntime_time_lands_on_the_convolutions(ort_profile, conv_net):
    _check_tied_to_graph(ort_profile, _node_names(conv_net))
    by_node = ort_profile.per_node.set_index("node")

    # At the highest level ONNX Runtime fuses each Conv with its Relu under a new name.
    assert {"conv_1", "conv_2"} <= set(by_node.index)
    assert by_node.loc["conv_2", "fused"] == ("relu_2",)
    assert by_node.loc["conv_2", "ms"] > by_node.loc["conv_1", "ms"]
    conv_share = ort_profile.per_op_type.set_index("op_type").loc["Conv", "share"]
    assert conv_share > 0.5
    assert ort_profile.per_op_type["op_type"].iloc[0] == "Conv"
    assert ort_profile.statistic == "median"
    assert ort_profile.runs == RUNS
    assert ort_profile.provider == "CPUExecutionProvider"
    assert 0 < ort_profile.total_ms <= ort_profile.run_ms * 1.5


def test_onnxruntime_without_optimization_reports_every_node_by_its_own_name(conv_net):
    profile = workbench.profile(conv_net, "onnxruntime:opt=disable", runs=5)
    assert set(profile.per_node["node"]) == _node_names(conv_net)
    assert profile.per_node["in_graph"].all()
    assert set(profile.per_node["matched_by"]) == {"name"}
    assert profile.runtime == "onnxruntime:opt=disable"


def test_a_fused_node_that_keeps_its_name_lists_what_it_absorbed(conv_net):
    profile = workbench.profile(conv_net, "onnxruntime:opt=extended", runs=5)
    by_node = profile.per_node.set_index("node")
    assert by_node.loc["conv_1", "fused"] == ("relu_1",)
    assert by_node.loc["conv_1", "engine_ops"] == ("FusedConv",)
    assert profile.overlay()["nodes"]["relu_1"] == {
        "ms": 0.0,
        "share": 0.0,
        "fused_into": ["conv_1"],
    }


def test_openvino_maps_its_layers_onto_graph_names(openvino_profile, conv_net):
    _check_tied_to_graph(openvino_profile, _node_names(conv_net))
    by_node = openvino_profile.per_node.set_index("node")

    assert {"conv_1", "conv_2", "classifier"} <= set(by_node.index)
    assert by_node.loc["conv_1", "fused"] == ("relu_1",)
    assert by_node.loc["conv_1", "engine_ops"] == ("Convolution",)
    assert openvino_profile.per_op_type["op_type"].iloc[0] == "Conv"
    assert openvino_profile.statistic == "mean"


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_every_convolution_of_a_residual_block_keeps_its_name(runtime, tmp_path):
    path = _residual_net(tmp_path / "residual_net.onnx")
    profile = workbench.profile(path, runtime, runs=5)
    _check_tied_to_graph(profile, _node_names(path))
    convolutions = profile.per_node[profile.per_node["op_type"] == "Conv"]
    assert set(convolutions["node"]) == {"stem", "conv_a", "conv_b", "shortcut"}
    assert convolutions["in_graph"].all()
    # Both engines fold the ReLU into the convolution before it.
    assert "relu_a" in convolutions.set_index("node").loc["conv_a", "fused"]


def test_an_exported_model_keeps_its_exporter_node_names(tmp_path):
    model, inputs = models.cnn()
    artifact = workbench.export(model, inputs, tmp_path / "cnn.onnx")
    names = _node_names(artifact)
    for runtime in ("onnxruntime", "openvino"):
        profile = workbench.profile(artifact, runtime, batch_size=2, runs=5)
        _check_tied_to_graph(profile, names)
        in_graph = profile.per_node[profile.per_node["in_graph"]]
        assert list(in_graph["op_type"]).count("Conv") == 1
        assert {"Conv", "Gemm"} <= set(in_graph["op_type"])


def test_overlay_paints_graph_nodes_by_name(ort_profile, openvino_profile, conv_net):
    names = _node_names(conv_net)
    for profile in (ort_profile, openvino_profile):
        overlay = json.loads(json.dumps(profile.overlay()))
        assert overlay["runtime"] == profile.runtime
        assert overlay["unit"] == "ms"
        assert set(overlay["nodes"]) <= names
        assert {"conv_1", "conv_2"} <= set(overlay["nodes"])
        shares = [entry["share"] for entry in overlay["nodes"].values()]
        in_graph = profile.per_node.loc[profile.per_node["in_graph"], "share"].sum()
        assert sum(shares) == pytest.approx(in_graph, abs=1e-4)
    # OpenVINO folds each Relu into its convolution: the viewer is told where its time went.
    assert openvino_profile.overlay()["nodes"]["relu_1"]["fused_into"] == ["conv_1"]


def test_results_render_as_table_text_and_figures(tmp_path):
    path = tmp_path / "escape.onnx"
    relu = helper.make_node("Relu", ["x"], ["y"], name=SCRIPT_NAME)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    graph = helper.make_graph([relu], "escape", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    profile = workbench.profile(str(path), "onnxruntime:opt=disable", runs=3)

    assert list(profile.per_node["node"]) == [SCRIPT_NAME]
    page = profile._repr_html_()
    assert "<img" not in page
    assert "&lt;img" in page
    assert str(profile).startswith("Profile of escape on onnxruntime:opt=disable")
    assert SCRIPT_NAME in str(profile)
    figures = profile.plot()
    assert len(figures) == 2
    assert all(isinstance(figure, go.Figure) for figure in figures)
    assert "<img" not in json.dumps(figures[0].to_plotly_json()["data"][0]["y"][0])
    assert profile.to_pandas() is not profile.per_node


@pytest.mark.parametrize(
    ("runtime", "error", "words"),
    [
        ("no-such-engine", workbench.UnknownRuntimeError, ["no runtime called 'no-such-engine'"]),
        ("onnxruntime:profile=/tmp", workbench.UnknownRuntimeError, ["no option 'profile'"]),
        ("torch", workbench.InputError, ["profile with onnxruntime or openvino"]),
        ("onnx-reference", workbench.WorkbenchError, ["no per-node profiler"]),
        (
            "onnxruntime:provider=qnn",
            workbench.RuntimeNotAvailableError,
            ["Profiling conv_net on onnxruntime:provider=qnn failed", "no QNNExecutionProvider"],
        ),
    ],
)
def test_a_runtime_that_cannot_profile_is_refused_in_a_sentence(conv_net, runtime, error, words):
    with pytest.raises(error) as raised:
        workbench.profile(conv_net, runtime, runs=2)
    assert all(word in str(raised.value) for word in words)


def test_bad_arguments_are_refused_before_any_worker_starts(conv_net):
    with pytest.raises(workbench.InputError, match="runs must be a positive whole number"):
        workbench.profile(conv_net, runs=0)
    with pytest.raises(workbench.InputError, match="dtype float64"):
        workbench.profile(conv_net, inputs=np.zeros((1, 3, 64, 64)))
    with pytest.raises(workbench.InputError, match="an Artifact or a path"):
        workbench.profile(42)


def test_the_engine_trace_is_removed(conv_net, monkeypatch, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    workbench.profile(conv_net, runs=2)
    assert list(scratch.iterdir()) == []


def test_a_crashing_engine_is_an_error_not_a_dead_kernel(conv_net, tmp_path):
    scratch = tmp_path / "scratch"
    register(hostile.Segfault(at_load=True))
    try:
        with pytest.MonkeyPatch.context() as patch:
            scratch.mkdir()
            patch.setattr(tempfile, "tempdir", str(scratch))
            with pytest.raises(WorkerDiedError) as raised:
                workbench.profile(conv_net, "hostile-segfault", runs=2)
    finally:
        unregister("hostile-segfault")
    assert raised.value.status == "crashed"
    assert "Profiling conv_net on hostile-segfault stopped" in str(raised.value)
    assert "segmentation fault" in str(raised.value)
    assert list(scratch.iterdir()) == []


def test_the_module_stays_callable_once_imported(conv_net):
    import workbench.profile

    assert callable(workbench.profile)
    assert workbench.Profile.__module__ == "workbench.profile"
