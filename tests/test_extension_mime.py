"""What a notebook gets when it displays a summary: the graph for JupyterLab's viewer, with
HTML and text for other front ends, and per-node timings once a profile is attached."""

from __future__ import annotations

import json
import math
from pathlib import Path

import extension_models
import pytest
from IPython.testing import globalipapp

import workbench
from workbench.errors import InputError

GRAPH = "application/vnd.workbench.graph+json"


def _formatter():
    # NOTE: IPython's shared test shell, as the magics tests use; a second kind of shell
    # instance in the same process is refused.
    shell = globalipapp.get_ipython()
    shell.display_formatter.formatters["text/html"].enabled = True
    return shell.display_formatter


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return extension_models.marked_mlp(tmp_path_factory.mktemp("mime") / "mlp.onnx")


def test_a_summary_displays_as_the_graph_with_fallbacks(mlp_path: Path) -> None:
    summary = workbench.inspect(mlp_path)

    data, _ = _formatter().format(summary)

    assert set(data) >= {GRAPH, "text/html", "text/plain"}
    payload = data[GRAPH]
    assert payload["name"] == "mlp"
    assert payload["timings"] is None
    assert [node["op_type"] for node in payload["graph"]["nodes"]] == [
        "MatMul",
        "Add",
        "Relu",
        "MatMul",
    ]
    assert "0.12345" not in json.dumps(payload)  # weights never enter the notebook
    assert "<table" in data["text/html"]
    assert data["text/plain"].startswith("mlp: 4 nodes")


def test_hostile_names_stay_escaped_in_the_html_fallback(tmp_path: Path) -> None:
    summary = workbench.inspect(extension_models.hostile(tmp_path / "hostile.onnx"))

    bundle = summary._repr_mimebundle_()

    names = [node["name"] for node in bundle[GRAPH]["graph"]["nodes"]]
    assert names == list(extension_models.HOSTILE_NAMES)  # kept as text, for textContent
    # The fallback names the hostile input: shown, escaped, never as a tag.
    assert "&lt;img src=x onerror=" in bundle["text/html"]
    assert "<img" not in bundle["text/html"]


def test_a_profile_paints_its_times_onto_the_graph(mlp_path: Path) -> None:
    profile = workbench.profile(mlp_path, runs=5)

    timed = workbench.inspect(mlp_path).with_timings(profile)

    timings = timed._repr_mimebundle_()[GRAPH]["timings"]
    assert timings["runtime"] == profile.runtime
    assert timings["total_ms"] == pytest.approx(profile.total_ms)
    names = {node["name"] for node in timed.graph["nodes"]}
    assert set(timings["nodes"]) <= names
    assert set(timings["nodes"]) & names
    shares = [entry["share"] for entry in timings["nodes"].values()]
    assert all(0 <= share <= 1 for share in shares)
    assert 0 < sum(shares) <= 1.0001  # engine layers tied to no node hold the rest
    # The summary it came from is unchanged: with_timings returns a new one.
    assert workbench.inspect(mlp_path)._repr_mimebundle_()[GRAPH]["timings"] is None


def test_timings_of_another_model_are_refused(mlp_path: Path, tmp_path: Path) -> None:
    other = workbench.inspect(extension_models.branching(tmp_path / "branching.onnx"))
    timing = {"ms": 1.0, "share": 1.0}
    overlay = {"runtime": "onnxruntime", "unit": "ms", "total_ms": 1.0, "nodes": {"fc1": timing}}

    with pytest.raises(InputError, match="another model"):
        other.with_timings(overlay)
    with pytest.raises(InputError, match="per-node times"):
        other.with_timings({"runtime": "onnxruntime"})


def test_timings_that_are_not_times_are_refused(mlp_path: Path) -> None:
    summary = workbench.inspect(mlp_path)
    name = summary.graph["nodes"][0]["name"]

    for entry in ({"ms": "slow", "share": 0.5}, {"ms": 1.0, "share": math.nan}, {"ms": -1}):
        with pytest.raises(workbench.InputError, match=f"timing of node '{name}'"):
            summary.with_timings({"nodes": {name: entry}})
