"""The tutorials in notebooks/ run from top to bottom, and their two forms agree.

Each tutorial is a jupytext pair: a percent-format ``.py`` file to review and a ``.ipynb`` to
open. The fast tests check the pair and the committed state; the slow ones execute every
notebook in a fresh kernel of this interpreter, and fail on any error, including an IPython
``UsageError`` from a bad magic, which some notebook runners report as a pass.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NOTEBOOK_TIMEOUT_S = 240

# A line that reads like a magic turned into a comment: jupytext leaves such a line commented
# when a hand-written .py mixes commented and uncommented magics, and the magic never runs.
COMMENTED_MAGIC = re.compile(r"^\s*#\s*(\w+\s*=\s*)?%{1,2}[A-Za-z_]", re.MULTILINE)


def by_name(path: Path) -> str:
    return path.stem


def test_every_tutorial_is_a_pair() -> None:
    scripts = {path.stem for path in NOTEBOOKS_DIR.glob("*.py")}
    notebooks = {path.stem for path in NOTEBOOKS}
    assert notebooks, f"no notebooks found in {NOTEBOOKS_DIR}"
    assert scripts == notebooks, (
        f"unpaired files: {sorted(scripts ^ notebooks)}; run `jupytext --sync notebooks/*.py`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=by_name)
def test_notebook_matches_its_script(path: Path) -> None:
    import jupytext

    script = jupytext.read(path.with_suffix(".py"))
    notebook = nbformat.read(path, as_version=4)

    assert [(c.cell_type, c.source) for c in notebook.cells] == [
        (c.cell_type, c.source) for c in script.cells
    ], f"{path.name} differs from {path.stem}.py; run `jupytext --sync {path.stem}.py`"
    assert notebook.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=by_name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} holds outputs"
            assert cell.execution_count is None, f"{path.name} cell {index} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=by_name)
def test_no_magic_is_left_as_a_comment(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        found = COMMENTED_MAGIC.search(cell.source) if cell.cell_type == "code" else None
        assert found is None, (
            f"{path.name} cell {index} holds the commented magic {found.group(0).strip()!r}; "
            "in the .py every magic must be commented the same way, then re-sync the pair"
        )


@pytest.fixture(scope="session")
def kernel_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A folder holding a ``python3`` kernel that runs this very interpreter.

    NOTE: a ``python3`` kernelspec in the user's own Jupyter folder would otherwise win, and it
    may point at another Python without the workbench installed.
    """
    from ipykernel.kernelspec import write_kernel_spec

    folder = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(folder / "python3")
    return [str(folder)]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=by_name)
def test_notebook_runs(path: Path, tmp_path: Path, kernel_dirs: list[str]) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    manager = KernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs)
    )
    assert manager.kernel_spec.argv[0] == sys.executable
    deadline = time.monotonic() + NOTEBOOK_TIMEOUT_S
    client = NotebookClient(
        notebook,
        km=manager,
        # Files the tutorial writes land in a scratch folder, not next to the notebook.
        resources={"metadata": {"path": str(tmp_path)}},
        # One deadline for the whole notebook: each cell may use what is left of it.
        timeout_func=lambda _cell: max(1, int(deadline - time.monotonic())),
        startup_timeout=60,
    )

    client.execute()

    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.execution_count is not None, f"{path.name} cell {index} never ran"
        for output in cell.outputs:
            assert output.output_type != "error", f"{path.name} cell {index}: {output.ename}"
            text = _output_text(output)
            assert "UsageError" not in text, f"{path.name} cell {index}: {text[:500]}"
            assert "Traceback (most recent call last)" not in text, f"{path.name} cell {index}"


def _output_text(output: nbformat.NotebookNode) -> str:
    if output.output_type == "stream":
        return str(output.text)
    data = output.get("data", {})
    return str(data.get("text/plain", "")) + str(data.get("text/html", ""))
