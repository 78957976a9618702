"""JupyterLab in a real Chromium: a server in a temporary folder and one browser per module.

The browser is Debian's ``chromium`` (``WORKBENCH_CHROMIUM`` names another), driven by
Playwright. Without Playwright, the browser, or the built extension these tests are skipped with
the reason, unless ``WORKBENCH_REQUIRE_BROWSER=1`` (as in CI) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the helper modules next to the other tests

import extension_models  # noqa: E402 - importable once the folder above is on the path
from jupyter_process import CHROMIUM, running  # noqa: E402


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[ui]'"
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium, or set WORKBENCH_CHROMIUM"
    from jupyter_core.paths import jupyter_path

    folders = jupyter_path("labextensions")
    if not any(Path(folder, "onnx-workbench", "package.json").is_file() for folder in folders):
        return (
            "the extension is not built: pip install -e . with Node.js, SKIP_JUPYTER_BUILDER unset"
        )
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("WORKBENCH_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"The browser tests must run here, but {reason}.")
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """JupyterLab serving a folder that holds a few models."""
    root = tmp_path_factory.mktemp("lab")
    extension_models.marked_mlp(root / "mlp.onnx")
    extension_models.hostile(root / "hostile.onnx")
    extension_models.branching(root / "branching.onnx")
    logs = tmp_path_factory.mktemp("lab-logs")
    extra = (
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    )
    with running("jupyterlab", root, logs / "lab.log", *extra) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, lab):
    """A fresh page at JupyterLab, with errors of the page collected in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.errors = []
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.set_default_timeout(60_000)
    opened.goto(f"{lab.url}/lab?reset&token={lab.token}")
    opened.wait_for_selector(".jp-DirListing-item", timeout=90_000)
    yield opened
    context.close()
