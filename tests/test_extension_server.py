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
import pytest
from jupyter_process import running

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
    logs = tmp_path_factory.mktemp("logs")
    with running("jupyter_server", root, logs / "server.log") as started:
        yield started


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
