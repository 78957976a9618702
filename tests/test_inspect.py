"""Inspecting tiny models built in code: parameters, FLOPs per sample, graph and displays."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import extension_models
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from workbench.artifact import load
from workbench.errors import InputError
from workbench.inspect import Summary, inspect

# A weight value that would be recognised in any text the summary produces.
MARKER = 0.123456789
MARKER_TEXT = "0.1234567"


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.full(shape, MARKER, dtype=np.float32), name)


def _save(tmp_path: Path, graph: onnx.GraphProto, name: str, **opsets: int) -> Path:
    imports = [helper.make_opsetid("", opsets.pop("default", 17))]
    imports += [helper.make_opsetid(domain.replace("_", "."), v) for domain, v in opsets.items()]
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=imports), path)
    return path


def _mlp_graph(batch: int | str = "batch") -> onnx.GraphProto:
    """784 -> 512 -> 10, the second Gemm with its weight stored transposed."""
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1),
    ]
    weights = [
        _weight("w1", 784, 512),
        _weight("b1", 512),
        _weight("w2", 10, 512),
        _weight("b2", 10),
    ]
    return helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])],
        weights,
    )


MLP_PARAMETERS = 784 * 512 + 512 + 512 * 10 + 10
MLP_FLOPS = 2 * (784 * 512 + 512 * 10) + (512 + 10)


def test_mlp_parameters_and_flops_per_sample(tmp_path: Path) -> None:
    summary = inspect(_save(tmp_path, _mlp_graph(), "mlp"))

    assert isinstance(summary, Summary)
    assert summary.parameters == MLP_PARAMETERS
    assert summary.parameter_bytes == 4 * MLP_PARAMETERS
    assert summary.flops == MLP_FLOPS
    assert summary.flops_by_op == {"Gemm": MLP_FLOPS}
    assert summary.flops_unknown_nodes == ()
    assert list(summary.op_types.items()) == [("Gemm", 2), ("Relu", 1)]
    assert summary.node_count == 3
    assert summary.opset == 17
    assert summary.dims == {"batch": 1}
    assert [str(spec) for spec in summary.inputs] == ["x: float32[batch, 784]"]


def test_a_fixed_batch_is_divided_out(tmp_path: Path) -> None:
    summary = inspect(load(_save(tmp_path, _mlp_graph(batch=4), "mlp4")))

    assert summary.flops == MLP_FLOPS


def test_conv_flops_follow_the_hand_formula(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="grouped", group=4, strides=[2, 2]),
        helper.make_node("ConvTranspose", ["c2", "w3"], ["y"], name="up", strides=[2, 2]),
    ]
    weights = [_weight("w1", 16, 3, 3, 3), _weight("b1", 16), _weight("w2", 32, 4, 3, 3)]
    weights.append(_weight("w3", 32, 8, 2, 2))
    graph = helper.make_graph(
        nodes,
        "convs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        weights,
    )
    summary = inspect(_save(tmp_path, graph, "convs"))

    conv = 2 * (16 * 32 * 32) * (3 * 3 * 3) + 16 * 32 * 32  # bias adds once per output
    grouped = 2 * (32 * 15 * 15) * (16 // 4 * 3 * 3)
    transposed = 2 * (32 * 15 * 15) * (8 * 2 * 2)  # each input spreads over C_out x kernel
    assert summary.flops_by_op == {"Conv": conv + grouped, "ConvTranspose": transposed}
    assert summary.flops == conv + grouped + transposed


def _sequence_graph() -> onnx.GraphProto:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["projected"], name="project"),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["x", "xt"], ["scores"], name="scores"),
        helper.make_node("MatMul", ["x", "v"], ["dot"], name="dot"),
    ]
    return helper.make_graph(
        nodes,
        "sequence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 64])],
        [
            helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
            for name in ("projected", "scores", "dot")
        ],
        [_weight("w", 64, 32), _weight("v", 64)],
    )


def test_matmul_with_a_symbolic_sequence_given_in_dims(tmp_path: Path) -> None:
    path = _save(tmp_path, _sequence_graph(), "sequence")

    summary = inspect(path, dims={"seq": 128})

    # Batched product, broadcast over batch; the 1-D operand is a vector dot per row.
    expected = 2 * 128 * 32 * 64 + 2 * 128 * 128 * 64 + 2 * 128 * 64
    assert summary.flops == expected
    assert summary.dims == {"seq": 128, "batch": 1}
    assert summary.flops_unknown_nodes == ()


def test_unknown_sequence_leaves_flops_unknown_and_says_which_nodes(tmp_path: Path) -> None:
    summary = inspect(_save(tmp_path, _sequence_graph(), "sequence"))

    assert summary.flops is None
    assert summary.flops_unknown_nodes == ("project", "scores", "dot")
    assert "unknown" in str(summary)
    assert "project" in str(summary)
    assert "give sizes to seq with dims=" in str(summary)


def test_dims_are_checked_against_the_model(tmp_path: Path) -> None:
    path = _save(tmp_path, _sequence_graph(), "sequence")

    with pytest.raises(InputError, match="named dimensions are: batch, seq"):
        inspect(path, dims={"sequence": 128})
    with pytest.raises(InputError, match="positive whole number"):
        inspect(path, dims={"seq": 0})
    with pytest.raises(InputError, match="batch dimension"):
        inspect(path, dims={"batch": 8})


def test_weights_in_external_data_are_counted_without_being_read(tmp_path: Path) -> None:
    path = tmp_path / "external.onnx"
    model = helper.make_model(_mlp_graph(), opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(
        model,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="w.bin",
        size_threshold=0,
    )
    artifact = load(path)
    assert artifact.external_files == (("w.bin", 4 * MLP_PARAMETERS),)

    summary = inspect(artifact)

    assert summary.parameters == MLP_PARAMETERS
    assert summary.parameter_bytes == 4 * MLP_PARAMETERS
    assert summary.flops == MLP_FLOPS
    assert summary.graph["initializers"]["w1"] == {
        "shape": [784, 512],
        "dtype": "float32",
        "bytes": 4 * 784 * 512,
    }


def test_if_subgraphs_are_nested_under_their_node(tmp_path: Path) -> None:
    summary = inspect(extension_models.branching(tmp_path / "branching.onnx"))

    (branch,) = summary.graph["nodes"]
    assert branch["op_type"] == "If"
    assert set(branch["subgraphs"]) == {"then_branch", "else_branch"}
    else_nodes = branch["subgraphs"]["else_branch"]["nodes"]
    assert [(n["id"], n["name"]) for n in else_nodes] == [("n0/else_branch/n0", "else_matmul")]
    assert branch["implicit_inputs"] == ["x"]
    edges = {(e["source"], e["target"], e["tensor"]) for e in summary.graph["edges"]}
    assert edges == {("input:cond", "n0", "cond"), ("input:x", "n0", "x"), ("n0", "output:y", "y")}

    # The subgraph's weight is a parameter; its MatMul runs only on one branch, so not counted.
    assert summary.parameters == 64
    assert summary.node_count == 3
    assert summary.flops_unknown_nodes == ("else_matmul",)


def test_graph_is_json_and_holds_no_weight_values(tmp_path: Path) -> None:
    graph = _mlp_graph()
    constant = helper.make_node("Constant", [], ["k"], name="k", value=_weight("k_value", 4, 4))
    odd = helper.make_node(
        "Odd", ["y", "k"], ["z"], name="odd", domain="custom", alpha=float("nan")
    )
    graph.node.extend([constant, odd])
    graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    summary = inspect(_save(tmp_path, graph, "mlp_odd", custom=1))

    text = json.dumps(summary.graph, allow_nan=False)
    assert MARKER_TEXT not in text
    assert len(text) < 10_000  # the weights alone are 1.6 MB
    json.dumps(summary.to_dict(), allow_nan=False)

    nodes = {node["name"]: node for node in summary.graph["nodes"]}
    assert nodes["k"]["attributes"]["value"] == {
        "tensor": {"shape": [4, 4], "dtype": "float32", "bytes": 64}
    }
    assert nodes["odd"]["attributes"]["alpha"] == "nan"
    assert nodes["fc2"]["attributes"] == {"transB": 1}
    edge = next(e for e in summary.graph["edges"] if e["tensor"] == "h")
    assert edge == {
        "source": "n0",
        "target": "n1",
        "tensor": "h",
        "shape": ["batch", 512],
        "dtype": "float32",
    }
    assert summary.op_types["custom.Odd"] == 1


def test_html_escapes_names_from_the_model(tmp_path: Path) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    node = helper.make_node("MatMul", [hostile, "w"], ["y"], name=hostile)
    odd = helper.make_node("<script>", ["y"], ["z"], domain="evil")
    graph = helper.make_graph(
        [node, odd],
        "hostile",
        [helper.make_tensor_value_info(hostile, TensorProto.FLOAT, ["batch", None, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [_weight("w", 4, 4)],
    )
    summary = inspect(_save(tmp_path, graph, "hostile", evil=1))

    page = summary._repr_html_()
    assert summary.flops_unknown_nodes == (hostile,)
    assert "<img" not in page
    assert "<script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "evil.&lt;script&gt;" in page


def test_plain_text_and_html_tell_the_numbers(tmp_path: Path) -> None:
    summary = inspect(_save(tmp_path, _mlp_graph(), "mlp"))

    text = str(summary)
    assert f"parameters: {MLP_PARAMETERS:,}" in text
    assert f"{MLP_FLOPS:,} per sample" in text
    assert repr(summary) == text
    page = summary._repr_html_()
    assert f"{MLP_PARAMETERS:,}" in page
    assert "opset 17" in page


def test_attention_operators_count_both_products(tmp_path: Path) -> None:
    def info(name: str, shape: list[int]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)

    nodes = [
        # Grouped-query attention: 4 query heads of 16, 2 key-value heads, values of 8, and
        # a cache of 5 past keys in front of the 20 new ones.
        helper.make_node("Attention", ["q", "k", "v", "", "pk", "pv"], ["o1"], name="onnx"),
        helper.make_node(
            "MultiHeadAttention", ["mq", "mk", "mv"], ["o2"], domain="com.microsoft", num_heads=4
        ),
        helper.make_node(
            "Attention", ["a", "aw", "ab"], ["o3"], domain="com.microsoft", num_heads=4
        ),
    ]
    inputs = [info("q", [1, 4, 10, 16]), info("k", [1, 2, 20, 16]), info("v", [1, 2, 20, 8])]
    inputs += [info("pk", [1, 2, 5, 16]), info("pv", [1, 2, 5, 8])]
    inputs += [info("mq", [1, 10, 64]), info("mk", [1, 20, 64]), info("mv", [1, 20, 32])]
    inputs.append(info("a", [1, 10, 64]))
    graph = helper.make_graph(
        nodes,
        "attention",
        inputs,
        [helper.make_tensor_value_info(f"o{i}", TensorProto.FLOAT, None) for i in (1, 2, 3)],
        [_weight("aw", 64, 192), _weight("ab", 192)],
    )
    summary = inspect(_save(tmp_path, graph, "attention", default=23, com_microsoft=1))

    assert summary.flops_by_op == {
        "Attention": 2 * 10 * (5 + 20) * (4 * 16 + 4 * 8),
        "com.microsoft.MultiHeadAttention": 2 * 10 * 20 * (64 + 32),
        # The contrib Attention also projects its input to Q, K and V.
        "com.microsoft.Attention": 2 * 10 * 64 * 192 + 2 * 10 * 10 * (64 + 64),
    }


def test_compute_inside_model_local_functions_is_counted(tmp_path: Path) -> None:
    body = [helper.make_node("MatMul", ["a", "w"], ["o"])]
    linear = helper.make_function(
        "local", "Linear", ["a", "w"], ["o"], body, [helper.make_opsetid("", 17)]
    )
    call = helper.make_node("Linear", ["x", "w"], ["y"], domain="local", name="call")
    graph = helper.make_graph(
        [call],
        "functions",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_weight("w", 5, 7)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)],
        functions=[linear],
    )
    onnx.save(model, tmp_path / "functions.onnx")

    summary = inspect(tmp_path / "functions.onnx")

    assert summary.op_types == {"local.Linear": 1}
    assert summary.flops_by_op == {"MatMul": 2 * 5 * 7}


def test_importing_the_package_does_not_import_onnx() -> None:
    code = "import sys, workbench.inspect; print('onnx' in sys.modules, 'numpy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.stdout.split() == ["False", "False"]
