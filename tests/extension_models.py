"""Small ONNX models for the inspect and JupyterLab extension tests and the performance script.

Built with onnx.helper, so no exporter runs: a model with weights whose value is easy to spot,
one whose names are hostile HTML, one with If branches, and synthetic graphs of any size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MARKER = 0.123456789
"""The value of every weight: if it shows up in any answer, a weight leaked."""

HOSTILE_NAMES = (
    '<img src=x onerror="window.__wbHacked=1">',
    "<script>window.__wbHacked=1</script>",
    '<a data-commandlinker-command="filebrowser:delete" href="#">bait</a>',
)


def _weight(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array(np.full(shape, MARKER, dtype=np.float32), name)


def _save(graph: onnx.GraphProto, path: Path, **save_options: object) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path), **save_options)
    return path


def marked_mlp(path: Path, *, external: bool = False) -> Path:
    """x[batch, 64] -> MatMul (64x512) -> Add -> Relu -> MatMul (512x10) -> y."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
            helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
            helper.make_node("Relu", ["hb"], ["a"], name="act1"),
            helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2"),
        ],
        "marked_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        [_weight("w1", 64, 512), _weight("b1", 512), _weight("w2", 512, 10)],
    )
    if not external:
        return _save(graph, path)
    return _save(
        graph,
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{path.stem}.weights",
        size_threshold=0,
    )


def hostile(path: Path) -> Path:
    """Three Relu nodes whose names, tensors and doc strings are HTML meant to run."""
    first, second, third = HOSTILE_NAMES
    nodes = [
        helper.make_node("Relu", [first], [second], name=first, doc_string=third),
        helper.make_node("Relu", [second], [third], name=second),
        helper.make_node("Relu", [third], ["out"], name=third),
    ]
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info(first, TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
        doc_string=second,
    )
    return _save(graph, path)


def branching(path: Path) -> Path:
    """One If node whose branches hold a Relu and a MatMul with an 8x8 weight."""
    then_branch = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["then_out"], name="then_relu")],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, ["batch", 8])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w_else"], ["else_out"], name="else_matmul")],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, ["batch", 8])],
        [_weight("w_else", 8, 8)],
    )
    node = helper.make_node(
        "If", ["cond"], ["y"], name="branch", then_branch=then_branch, else_branch=else_branch
    )
    graph = helper.make_graph(
        [node],
        "branching",
        [
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
    )
    return _save(graph, path)


def synthetic(path: Path, nodes: int, *, width: int = 4) -> Path:
    """A graph of ``nodes`` elementwise ops in ``width`` parallel lanes with skip connections.

    Each block of ``width`` nodes reads the previous block and, every fourth block, the block
    eight before it, like the residual connections of a deep network; no weights.
    """
    made, blocks = [], [["x"] * width]
    ops = ("Relu", "Sigmoid", "Tanh", "Abs")
    index = 0
    while index < nodes:
        block = []
        for lane in range(min(width, nodes - index)):
            name = f"t{index}"
            sources = [blocks[-1][lane % len(blocks[-1])]]
            if len(blocks) % 4 == 0 and len(blocks) > 8:
                sources.append(blocks[-8][lane % len(blocks[-8])])
            if len(sources) == 1:
                made.append(helper.make_node(ops[index % 4], sources, [name], name=f"node{index}"))
            else:
                made.append(helper.make_node("Add", sources, [name], name=f"node{index}"))
            block.append(name)
            index += 1
        blocks.append(block)
    graph = helper.make_graph(
        made,
        f"synthetic_{nodes}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 8]) for name in blocks[-1]],
    )
    return _save(graph, path)
