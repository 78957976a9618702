"""Quantization debugging through the public API: which layer int8 hurts, and keeping it fp32."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import workbench
from workbench.optimize import optimize, sensitivity

LAYERS = ("fc1", "fc2", "head <i>")
"""The MLP's Gemm nodes; the last name holds markup, as an untrusted model's might."""


def _outlier_mlp(path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A 16-32-32-8 MLP whose middle layer int8 ruins, written to ``path``.

    Hidden unit 5 of the first layer never fires (zero weights, negative bias), and the middle
    layer reads it with a weight of 500: harmless in fp32, but one scale per tensor then rounds
    every other weight of that layer to zero.
    """
    rng = np.random.default_rng(0)
    sizes = [(16, 32), (32, 32), (32, 8)]
    weights = [rng.standard_normal((out, into)).astype(np.float32) * 0.3 for into, out in sizes]
    biases = [rng.standard_normal(out).astype(np.float32) * 0.1 for _, out in sizes]
    weights[0][5, :], biases[0][5] = 0.0, -1.0
    weights[1][:, 5], weights[1][0, 5] = 0.0, 500.0

    nodes, tensors, current = [], [], "x"
    for index, (name, weight, bias) in enumerate(zip(LAYERS, weights, biases, strict=True)):
        tensors += [numpy_helper.from_array(weight, f"w{index}")]
        tensors += [numpy_helper.from_array(bias, f"b{index}")]
        out = f"h{index}"
        nodes.append(
            helper.make_node(
                "Gemm", [current, f"w{index}", f"b{index}"], [out], name=name, transB=1
            )
        )
        if index < len(LAYERS) - 1:
            nodes.append(helper.make_node("Relu", [out], [f"r{index}"], name=f"relu{index}"))
            out = f"r{index}"
        current = out
    graph = helper.make_graph(
        nodes,
        "outlier_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["batch", 8])],
        tensors,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return weights, biases


def _forward(x: np.ndarray, weights: list[np.ndarray], biases: list[np.ndarray]) -> np.ndarray:
    for index, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        x = x @ weight.T + bias
        x = np.maximum(x, 0) if index < len(weights) - 1 else x
    return x


@pytest.fixture(scope="module")
def outlier_mlp(tmp_path_factory):
    path = tmp_path_factory.mktemp("outlier") / "outlier_mlp.onnx"
    weights, biases = _outlier_mlp(path)
    inputs = np.random.default_rng(1).standard_normal((256, 16)).astype(np.float32)
    labels = _forward(inputs, weights, biases).argmax(axis=-1)
    return workbench.load(path), inputs, labels


@pytest.fixture(scope="module")
def found(outlier_mlp, tmp_path_factory):
    """The user's first call: the outlier MLP's sensitivity to int8-dynamic, with labels."""
    artifact, inputs, labels = outlier_mlp
    folder = tmp_path_factory.mktemp("variants")
    return sensitivity(artifact, inputs, labels, out_dir=folder, progress=False)


def _graph(variant) -> list[onnx.NodeProto]:
    return list(onnx.load(str(variant.path)).graph.node)


def _readers(variant, tensor: str) -> list[tuple[str, int | None]]:
    """The operators reading ``tensor``, each with the element type of its weight, if any."""
    graph = onnx.load(str(variant.path)).graph
    weights = {item.name: item.data_type for item in graph.initializer}
    return [
        (node.op_type, next((weights[i] for i in node.input if i in weights), None))
        for node in graph.node
        if tensor in node.input
    ]


def test_the_layer_int8_ruins_is_ranked_first_and_kept_in_fp32(outlier_mlp, found):
    artifact = outlier_mlp[0]

    # Everything in int8 costs accuracy; the middle layer alone in fp32 wins most of it back.
    assert found.metric_name == "accuracy"
    assert found.fp32_metric == 1.0
    assert found.quantized.drop > 0.1
    first, *others = found.layers
    assert first.name == "fc2"
    assert found.exclude == ("fc2",)
    assert first.recovered > 0.5 * found.quantized.drop
    assert all(layer.recovered < first.recovered for layer in others)
    assert first.trial.errors.mean_abs < min(layer.trial.errors.mean_abs for layer in others)

    # The re-quantization keeps fc2 in float and quantizes the other two, with its lineage.
    variant = found.variant
    assert variant.name == "int8-dynamic-keep-1-fp32"
    assert variant.path.name == "int8-dynamic-keep-1-fp32.onnx"
    assert variant.status == "ok", variant
    assert variant.drop < found.quantized.drop / 2
    assert variant.artifact.parent == artifact.sha256
    assert "fc2" in variant.artifact.provenance.options["nodes_to_exclude"]
    assert sum(node.op_type == "MatMulInteger" for node in _graph(variant)) == 2
    # fc2 reads the first ReLU's output (r0) as it is, with a float32 weight.
    assert _readers(variant, "r0") == [("MatMul", onnx.TensorProto.FLOAT)]

    # The trade-off starts from everything in int8 and ends with nothing left to quantize.
    curve = found.trade_off()
    assert curve["kept"].tolist() == [0, 1, 2, 3]
    assert curve["added"].tolist() == ["", "fc2", *[layer.name for layer in others]]
    assert curve["drop"].iloc[0] == pytest.approx(found.quantized.drop)
    assert curve["drop"].iloc[1] == pytest.approx(variant.drop)
    assert curve["drop"].iloc[-1] == 0.0
    assert curve["megabytes"].iloc[0] < curve["megabytes"].iloc[1] < curve["megabytes"].iloc[-1]

    table = found.to_pandas()
    assert table["layer"].tolist()[0] == "fc2"
    assert table["worth_excluding"].tolist() == [True, False, False]


def test_the_displays_name_the_layers_and_escape_them(found):
    assert "worth keeping in fp32: fc2" in str(found)
    page = found._repr_html_()
    assert "head &lt;i&gt;" in page
    assert "head <i>" not in page
    figure = found.plot()
    hover = [str(trace.customdata) for trace in figure.data if trace.customdata is not None]
    assert any("head &lt;i&gt;" in text for text in hover)
    assert not any("head <i>" in text for text in hover)


def test_groups_keep_their_nodes_in_fp32_together(outlier_mlp, tmp_path):
    artifact, inputs, _ = outlier_mlp
    groups = {"body": ["fc1", "fc2"], "head": ["head <i>"]}

    grouped = sensitivity(artifact, inputs, groups=groups, top=1, out_dir=tmp_path, progress=False)

    assert grouped.metric_name == "agreement"
    assert [layer.name for layer in grouped.layers] == ["body", "head"]
    assert grouped.exclude == ("fc1", "fc2")
    # top=1 ends the trade-off after the first group.
    assert grouped.trade_off()["kept"].tolist() == [0, 1]
    nodes = _graph(grouped.variant)
    assert sum(node.op_type == "MatMulInteger" for node in nodes) == 1


def test_excluding_a_gemm_through_optimize_keeps_it_fp32(outlier_mlp, tmp_path):
    artifact = outlier_mlp[0]
    options = {"int8-dynamic": {"nodes_to_exclude": ["fc1"]}}

    variants = optimize(artifact, "int8-dynamic", options=options, out_dir=tmp_path, progress=False)

    variant = variants.get("int8-dynamic")
    assert sum(node.op_type == "MatMulInteger" for node in _graph(variant)) == 2
    assert _readers(variant, "x") == [("MatMul", onnx.TensorProto.FLOAT)]


def test_a_model_with_nothing_to_quantize_or_no_data_is_one_clear_error(outlier_mlp, tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "no_weights",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    path = tmp_path / "no_weights.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    inputs = np.ones((8, 4), np.float32)

    with pytest.raises(workbench.InputError, match=r"nothing for int8-dynamic to quantize.*Relu"):
        sensitivity(path, inputs, progress=False)
    with pytest.raises(workbench.InputError, match="needs data="):
        sensitivity(outlier_mlp[0], progress=False)
    with pytest.raises(workbench.InputError, match="method must be one of"):
        sensitivity(outlier_mlp[0], inputs, method="fp16", progress=False)
