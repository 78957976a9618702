"""The extension in JupyterLab, in a real Chromium: a user opens models from the file browser,
inspects one in a notebook, reloads the page, and meets a model whose names are hostile."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import nbformat

TIMINGS = {
    "runtime": "onnxruntime",
    "unit": "ms",
    "total_ms": 2.0,
    "nodes": {
        "fc1": {"ms": 1.5, "share": 0.75, "op_type": "MatMul", "fused_with": []},
        "act1": {"ms": 0.5, "share": 0.25, "op_type": "Relu", "fused_with": []},
    },
}


def open_file(page, name: str):
    """Double-click a file in the file browser; the graph view that opens, once drawn."""
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    view = page.locator(".jp-MainAreaWidget.wb-graph-document .wb-graph").last
    view.locator(".wb-graph-canvas").wait_for()
    page.wait_for_function(
        "el => el.dataset.state === 'ready'", arg=view.element_handle(), timeout=60_000
    )
    return view


def search(view, text: str):
    box = view.locator(".wb-graph-search")
    box.fill(text)
    box.press("Enter")
    panel = view.locator(".wb-graph-panel")
    panel.wait_for(state="visible")
    return panel


def test_a_model_opens_from_the_file_browser_as_its_graph(page) -> None:
    view = open_file(page, "mlp.onnx")

    assert view.get_attribute("data-nodes") == "4"
    assert view.locator(".wb-graph-status").inner_text() == "4 nodes, 5 edges"

    panel = search(view, "fc1")
    assert panel.locator(".wb-graph-title").inner_text() == "MatMul"
    text = panel.inner_text()
    assert "w1 float32[64,512] initializer, 128.0 KiB" in text
    assert "x float32[batch,64]" in text
    assert "0.12345" not in text

    # The search centred the match left of the 340-pixel panel; after the panel is closed, a
    # click there opens it again.
    canvas = view.locator(".wb-graph-canvas")
    size = canvas.bounding_box()
    free = max(size["width"] / 2, size["width"] - 340)
    panel.locator(".wb-graph-close").click()
    assert panel.is_hidden()
    canvas.click(position={"x": free / 2, "y": size["height"] / 2})
    panel.wait_for(state="visible")
    assert panel.locator(".wb-graph-title").inner_text() == "MatMul"
    assert page.errors == []


def test_subgraphs_open_and_close_from_the_panel(page) -> None:
    view = open_file(page, "branching.onnx")
    assert view.get_attribute("data-nodes") == "1"

    panel = search(view, "If")
    assert "then_branch (1 nodes)" in panel.inner_text()
    panel.locator(".wb-graph-toggle", has_text="Expand").click()
    page.wait_for_function("el => el.dataset.nodes === '3'", arg=view.element_handle())
    panel.locator(".wb-graph-toggle", has_text="Collapse").click()
    page.wait_for_function("el => el.dataset.nodes === '1'", arg=view.element_handle())


def test_hostile_names_stay_text(page) -> None:
    view = open_file(page, "hostile.onnx")

    panel = search(view, "<img")
    assert panel.locator(".wb-graph-title").inner_text() == "Relu"
    assert '<img src=x onerror="window.__wbHacked=1">' in panel.inner_text()
    search(view, "commandlinker")
    search(view, "<script>")
    page.wait_for_timeout(500)  # time for an injected handler to fire, if one existed

    assert page.evaluate("window.__wbHacked") is None
    assert page.locator("img[src=x]").count() == 0
    assert page.locator('[data-commandlinker-command="filebrowser:delete"]').count() == 0
    assert page.locator(".wb-graph script").count() == 0
    assert page.errors == []


def write_notebook(lab, name: str) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell('import workbench\nworkbench.inspect("mlp.onnx")'),
        nbformat.v4.new_code_cell(
            f'workbench.inspect("mlp.onnx").with_timings({json.dumps(TIMINGS)})'
        ),
    ]
    nbformat.write(notebook, lab.root / name)


def saved_outputs(path: Path, count: int, timeout: float = 30) -> list[set[str]]:
    """The MIME types of each output in the saved notebook, once it holds ``count`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        saved = nbformat.read(path, as_version=4)
        kinds = [set(output.get("data", {})) for cell in saved.cells for output in cell.outputs]
        if len(kinds) >= count or time.monotonic() > deadline:
            return kinds
        time.sleep(0.5)


def shut_down_kernels(lab) -> None:
    status, body = lab.get("/api/kernels")
    assert status == 200
    for kernel in json.loads(body):
        request = urllib.request.Request(
            f"{lab.url}/api/kernels/{kernel['id']}",
            method="DELETE",
            headers={"Authorization": f"token {lab.token}"},
        )
        urllib.request.urlopen(request, timeout=30).close()


def test_a_notebook_output_shows_the_graph_and_again_after_a_reload(page, lab) -> None:
    write_notebook(lab, "inspect.ipynb")
    page.locator(".jp-DirListing-item", has_text="inspect.ipynb").first.dblclick()
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")

    outputs = page.locator(".jp-OutputArea-output .wb-graph")
    outputs.nth(1).wait_for(timeout=120_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output .wb-graph')]"
        ".filter(el => el.dataset.state === 'ready').length === 2"
    )
    assert outputs.first.get_attribute("data-nodes") == "4"
    legend = outputs.nth(1).locator(".wb-graph-legend")
    assert "Share of time on onnxruntime" in legend.inner_text()
    panel = search(outputs.nth(1), "fc1")
    assert "1.50 ms (75.0% of 2.00 ms)" in panel.inner_text()

    page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first.click()
    page.keyboard.press("Control+s")
    kinds = saved_outputs(lab.root / "inspect.ipynb", count=2)
    assert all("application/vnd.workbench.graph+json" in kind for kind in kinds)
    assert len(kinds) == 2

    shut_down_kernels(lab)
    page.reload()
    page.wait_for_selector(".jp-DirListing-item", timeout=90_000)
    if page.locator(".jp-Notebook").count() == 0:
        page.locator(".jp-DirListing-item", has_text="inspect.ipynb").first.dblclick()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-OutputArea-output .wb-graph')]"
        ".filter(el => el.dataset.state === 'ready').length === 2",
        timeout=60_000,
    )
    assert outputs.first.get_attribute("data-nodes") == "4"
    assert outputs.nth(1).locator(".wb-graph-legend").is_visible()
