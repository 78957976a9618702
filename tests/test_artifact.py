"""``workbench.load`` on files that are not what they should be, and on hostile external data.

Every failure is one ``ModelFileError`` that names the file and says what was expected; none is
a protobuf or onnx traceback, and no external-data location outside the model's folder is read.
"""

from __future__ import annotations

import os
import traceback
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import workbench

WEIGHT = np.arange(6, dtype=np.float32).reshape(2, 3)


def _graph(name: str = "add", nodes: list | None = None, initializers: list | None = None):
    return helper.make_graph(
        nodes or [helper.make_node("Add", ["x", "w"], ["y"])],
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(WEIGHT, "w")]
        if initializers is None
        else initializers,
    )


def _model(graph: onnx.GraphProto | None = None) -> onnx.ModelProto:
    return helper.make_model(graph or _graph(), opset_imports=[helper.make_opsetid("", 17)])


def _save_external(folder: Path, location: str = "model.data") -> Path:
    """A model whose weight lives in ``location`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save(_model(), str(path), save_as_external_data=True, location=location, size_threshold=0)
    return path


def _relocate(path: Path, location: str) -> None:
    """Point every external tensor of the model file at ``location``, by hand."""
    proto = onnx.load(str(path), load_external_data=False)
    for tensor in proto.graph.initializer:
        assert tensor.data_location == TensorProto.EXTERNAL
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(proto.SerializeToString())


def _load_error(path: object) -> str:
    """Load, expect a ModelFileError without a chained traceback, return its message."""
    with pytest.raises(workbench.ModelFileError) as caught:
        workbench.load(path)
    assert type(caught.value) is workbench.ModelFileError
    assert isinstance(caught.value, ValueError)
    shown = "".join(traceback.format_exception(caught.value))
    assert "During handling of the above exception" not in shown
    assert "direct cause" not in shown
    return str(caught.value)


# --- a good model, for contrast ----------------------------------------------------------------


def test_a_model_with_external_data_beside_it_loads(tmp_path):
    path = _save_external(tmp_path)
    artifact = workbench.load(path)
    assert artifact.external_files == (("model.data", WEIGHT.nbytes),)
    assert artifact.total_bytes == path.stat().st_size + WEIGHT.nbytes
    assert artifact.inputs == (workbench.TensorSpec("x", "float32", ("batch", 3)),)
    assert artifact.outputs == (workbench.TensorSpec("y", "float32", ("batch", 3)),)
    assert artifact.opset == 17
    assert artifact.batch_is_dynamic


def test_a_link_that_stays_inside_the_folder_is_followed(tmp_path):
    path = _save_external(tmp_path / "m")
    os.symlink("model.data", tmp_path / "m" / "alias.data")
    _relocate(path, "alias.data")
    assert workbench.load(path).external_files == (("alias.data", WEIGHT.nbytes),)


# --- files that are not ONNX models ------------------------------------------------------------


def test_a_missing_path(tmp_path):
    path = tmp_path / "nowhere" / "model.onnx"
    message = _load_error(path)
    assert str(path) in message
    assert "does not exist" in message
    assert "expected the path of an .onnx file" in message


def test_a_folder(tmp_path):
    message = _load_error(tmp_path)
    assert str(tmp_path) in message
    assert "is a folder" in message
    assert ".onnx file" in message


def test_not_a_path():
    message = _load_error(42)
    assert "got a int" in message
    assert "pathlib.Path" in message


def test_an_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.touch()
    message = _load_error(path)
    assert str(path) in message
    assert "is empty" in message
    assert "expected an ONNX model" in message


def _written(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _real_model_bytes() -> bytes:
    return _model().SerializeToString()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("truncated.onnx", _real_model_bytes()[: len(_real_model_bytes()) // 2]),
        ("random.onnx", np.random.default_rng(0).bytes(4096)),
        ("text.onnx", b"This is a README, not a model.\nSecond line.\n"),
        ("notes.txt", b"This is a README, not a model.\nSecond line.\n"),
        ("model.json", b"{this is not json"),
        ("model.onnxtxt", b"garbage that the ONNX text parser rejects"),
    ],
    ids=["truncated", "random", "text", "txt-suffix", "json-suffix", "onnxtxt-suffix"],
)
def test_files_that_do_not_parse(tmp_path, name, data):
    path = _written(tmp_path, name, data)
    experimental = name.endswith(".onnxtxt")  # onnx warns that this text format is experimental
    with pytest.warns(UserWarning, match="onnxtxt") if experimental else nullcontext():
        message = _load_error(path)
    assert str(path) in message
    assert "is not an ONNX model" in message
    assert "could not be parsed" in message
    assert "expected a .onnx file" in message


def test_a_protobuf_that_is_no_model(tmp_path):
    path = _written(
        tmp_path, "empty-model.onnx", onnx.ModelProto(producer_name="x").SerializeToString()
    )
    message = _load_error(path)
    assert str(path) in message
    assert "no IR version or no graph outputs" in message
    assert "expected a .onnx file" in message


def test_the_first_half_of_an_exported_model(mlp_artifact, tmp_path):
    data = mlp_artifact.path.read_bytes()
    path = _written(tmp_path, "half.onnx", data[: len(data) // 2])
    message = _load_error(path)
    assert str(path) in message
    assert "is not an ONNX model" in message


# --- hostile or broken external data -----------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    ["../outside.bin", "sub/../../outside.bin", "", "ABSOLUTE"],
    ids=["parent", "parent-inside-path", "empty", "absolute"],
)
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(WEIGHT.tobytes())
    path = _save_external(tmp_path / "model")
    if location == "ABSOLUTE":
        location = str(outside)
    _relocate(path, location)
    message = _load_error(path)
    assert str(path) in message
    assert "tensor 'w'" in message
    assert repr(location) in message
    assert "not a plain file name inside the model's folder" in message


def test_a_link_that_leads_outside_the_folder_is_refused(tmp_path):
    secret = tmp_path / "other" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(WEIGHT.tobytes())
    path = _save_external(tmp_path / "model")
    os.symlink(secret, tmp_path / "model" / "weights.bin")
    _relocate(path, "weights.bin")
    message = _load_error(path)
    assert str(path) in message
    assert "tensor 'w'" in message
    assert "'weights.bin'" in message
    assert "leads outside the model's folder" in message
    assert str(secret) not in message  # where the link leads is not told


def test_a_hostile_location_inside_a_subgraph_is_refused(tmp_path):
    """Tensors in attributes of nodes inside an If branch are checked too."""
    constant = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(WEIGHT[0], "hidden")
    )
    tensor = constant.attribute[0].t
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../../etc/passwd")
    branch = helper.make_graph(
        [constant], "then", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [3])]
    )
    other = helper.make_graph(
        [helper.make_node("Constant", [], ["d"], value=numpy_helper.from_array(WEIGHT[1], "d"))],
        "else",
        [],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, [3])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
            helper.make_node("Greater", ["s", "zero"], ["cond"]),
            helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=other),
        ],
        "branchy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[numpy_helper.from_array(np.float32(0), "zero")],
    )
    path = _written(tmp_path, "branchy.onnx", _model(graph).SerializeToString())
    message = _load_error(path)
    assert "tensor 'hidden'" in message
    assert "'../../etc/passwd'" in message


def test_a_missing_data_file(tmp_path):
    path = _save_external(tmp_path / "model")
    (tmp_path / "model" / "model.data").unlink()
    message = _load_error(path)
    assert str(path) in message
    assert "tensor 'w'" in message
    assert "'model.data'" in message
    assert "does not exist" in message
    assert "copy the data file beside the model" in message


def test_a_data_file_that_is_a_folder(tmp_path):
    path = _save_external(tmp_path / "model")
    data = tmp_path / "model" / "model.data"
    data.unlink()
    data.mkdir()
    message = _load_error(path)
    assert "'model.data'" in message
    assert "does not exist" in message
