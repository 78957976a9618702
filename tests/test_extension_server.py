"""The graph endpoint of the JupyterLab extension, through a real Jupyter server.

A user opening a model in JupyterLab gets its graph, and nothing else: no weights, no file
outside the server's root, nothing at all without the server's token.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import extension_models
import onnx
import pytest
from jupyter_process import running
from onnx import TensorProto, helper

from workbench.jupyter import server as graph_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("root")
    outside = tmp_path_factory.mktemp("outside")
    extension_models.marked_mlp(root / "mlp.onnx")
    (root / "weights").mkdir()
    extension_models.marked_mlp(root / "weights" / "external.onnx", external=True)
    extension_models.branching(root / "branching.onnx")
    extension_models.marked_mlp(outside / "secret.onnx")
    (root / "linked.onnx").symlink_to(outside / "secret.onnx")
    (root / "linked_folder").symlink_to(outside)
    (root / "notes.txt").write_text("not a model")
    (root / "broken.onnx").write_bytes(b"\x00 not protobuf at all \xff" * 10)
    (root / ".hidden.onnx").write_bytes((root / "mlp.onnx").read_bytes())
    (root / "shown.onnx").symlink_to(root / ".hidden.onnx")
    (root / "folder.onnx").mkdir()
    for name, graph_proto in _malformed().items():
        _save(graph_proto, root / name)
    _save(_hungry_graph(), root / "hungry.onnx")
    logs = tmp_path_factory.mktemp("logs")
    # A small memory limit for the describing worker, which the hungry model goes past.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_GRAPH_MEMORY_MB", "1024")
        with running("jupyter_server", root, logs / "server.log") as started:
            yield started


def _save(graph_proto: onnx.GraphProto, path: Path) -> None:
    model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, path)


def _malformed() -> dict[str, onnx.GraphProto]:
    """Graphs that parse as ONNX but trip the counters and describers that read them."""
    value = helper.make_tensor_value_info
    x, y = value("x", TensorProto.FLOAT, [1, 4]), value("y", TensorProto.FLOAT, [1, 4])
    odd_dtype = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    odd_dtype.data_type = 9999
    return {
        "odd_dtype.onnx": helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [odd_dtype]
        ),
        "matmul_without_outputs.onnx": helper.make_graph(
            [helper.make_node("MatMul", ["x", "x"], [])], "g", [x], [x]
        ),
        "gemm_without_inputs.onnx": helper.make_graph(
            [helper.make_node("Gemm", [], ["y"])], "g", [x], [y]
        ),
    }


def _hungry_graph(length: int = 10_000_000) -> onnx.GraphProto:
    """A model of 100 bytes whose shape inference, propagating 1-D values, takes gigabytes."""
    vector = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [length]) for n in "abc"]
    add = helper.make_node("Add", ["a", "b"], ["c"])
    return helper.make_graph([add], "g", vector[:2], [vector[2]])


def graph(server, path: str, **options) -> tuple[int, dict]:
    status, body = server.get(f"/workbench/graph?path={quote(path)}", **options)
    return status, json.loads(body or b"{}")


def test_a_model_below_the_root_is_described_without_its_weights(server) -> None:
    status, answer = graph(server, "mlp.onnx")

    assert status == 200
    assert answer["name"] == "mlp"
    nodes = answer["graph"]["nodes"]
    assert [(n["name"], n["op_type"]) for n in nodes] == [
        ("fc1", "MatMul"),
        ("bias1", "Add"),
        ("act1", "Relu"),
        ("fc2", "MatMul"),
    ]
    assert answer["graph"]["initializers"]["w1"] == {
        "shape": [64, 512],
        "dtype": "float32",
        "bytes": 4 * 64 * 512,
    }
    text = json.dumps(answer)
    assert "0.12345" not in text  # the value of every weight
    assert len(text) < 5_000 < (server.root / "mlp.onnx").stat().st_size


def test_a_model_with_external_data_opens_from_a_subfolder(server) -> None:
    status, answer = graph(server, "weights/external.onnx")

    assert status == 200
    assert answer["graph"]["initializers"]["w2"]["bytes"] == 4 * 512 * 10
    assert "0.12345" not in json.dumps(answer)


def test_subgraphs_come_nested_in_their_node(server) -> None:
    status, answer = graph(server, "branching.onnx")

    assert status == 200
    (branch,) = answer["graph"]["nodes"]
    assert sorted(branch["subgraphs"]) == ["else_branch", "then_branch"]
    assert branch["subgraphs"]["then_branch"]["nodes"][0]["id"] == "n0/then_branch/n0"


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_without_the_token_the_endpoint_refuses(server, token: str) -> None:
    status, body = server.get("/workbench/graph?path=mlp.onnx", token=token)

    assert status == 403
    assert b"MatMul" not in body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("../outside/secret.onnx", 403),
        ("weights/../../secret.onnx", 403),
        ("/etc/passwd.onnx", 403),
        ("linked.onnx", 403),  # a symbolic link inside the root to a model outside it
        ("linked_folder/secret.onnx", 403),
        (".hidden.onnx", 403),
        ("shown.onnx", 403),  # a visible link to a hidden file
        ("folder.onnx", 400),
        ("missing.onnx", 404),
        ("notes.txt", 400),
        ("weights", 400),
        ("", 400),
    ],
)
def test_paths_outside_the_root_or_not_models_are_refused(server, path: str, status: int) -> None:
    answer_status, answer = graph(server, path)

    assert answer_status == status
    assert answer["message"].endswith(".")
    assert "MatMul" not in json.dumps(answer)


def test_an_encoded_parent_folder_is_refused_too(server) -> None:
    status, _ = server.get("/workbench/graph?path=%2e%2e%2foutside%2fsecret.onnx")

    assert status == 403


def test_a_file_that_is_not_onnx_gets_one_sentence(server) -> None:
    status, answer = graph(server, "broken.onnx")

    assert status == 422
    assert answer["message"].startswith("broken.onnx is not an ONNX model")
    assert str(server.root) not in answer["message"]


def test_models_past_the_size_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extension_models.marked_mlp(tmp_path / "mlp.onnx")
    monkeypatch.setattr(graph_server, "MAX_MODEL_BYTES", 1000)

    with pytest.raises(graph_server.GraphRequestError) as refused:
        graph_server.resolve_inside(tmp_path, "mlp.onnx")

    assert refused.value.status == 413
    assert os.path.getsize(tmp_path / "mlp.onnx") > 1000


def test_answers_past_the_size_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = extension_models.synthetic(tmp_path / "big.onnx", 200)
    monkeypatch.setattr(graph_server, "MAX_ANSWER_BYTES", 10_000)

    with pytest.raises(graph_server.GraphRequestError) as refused:
        graph_server.describe_answer(path, "big.onnx")

    assert refused.value.status == 413
    assert "big.onnx" in refused.value.message


@pytest.mark.parametrize("name", sorted(_malformed()))
def test_a_malformed_graph_is_still_described(server, name: str) -> None:
    status, answer = graph(server, name)

    assert status == 200, answer
    assert len(answer["graph"]["nodes"]) == 1


def test_malformed_nodes_are_listed_as_not_counted(tmp_path: Path) -> None:
    import workbench

    for name, graph_proto in _malformed().items():
        _save(graph_proto, tmp_path / name)
        summary = workbench.inspect(tmp_path / name)
        if name == "odd_dtype.onnx":  # elements known, bytes not
            assert (summary.parameters, summary.parameter_bytes) == (16, 0)
        else:
            assert len(summary.flops_unknown_nodes) == 1, name


def test_a_model_that_exhausts_memory_costs_its_worker_not_the_server(server) -> None:
    status, answer = graph(server, "hungry.onnx")

    assert status == 422, answer
    assert answer["message"].startswith("hungry.onnx could not be described: the process")
    assert "1024 MB" in answer["message"]
    # A new worker describes the next model.
    status, answer = graph(server, "mlp.onnx")
    assert status == 200
    assert answer["name"] == "mlp"


def test_describing_a_model_never_reads_its_weight_files(
    server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import workbench.artifact

    def no_reading(*args, **kwargs):
        raise AssertionError("the weight files were read")

    monkeypatch.setattr(workbench.artifact, "file_digest", no_reading)
    text = graph_server.describe_answer(server.root / "weights" / "external.onnx", "external.onnx")

    assert json.loads(text)["graph"]["initializers"]
