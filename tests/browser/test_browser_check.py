"""JupyterLab's own smoke test, ``python -m jupyterlab.browser_check``, passes with the
extension installed: the application starts in Chromium with no error logged.

browser_check drives Playwright for Node and asks it to download its own browser, which this
machine cannot do. Playwright takes a browser that is already present in its browsers folder,
so the test lays out such a folder whose executables are links to the system Chromium.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from jupyter_process import CHROMIUM

BROWSER_EXECUTABLES = {
    "chromium": ("chrome-linux64", "chrome"),
    "chromium-headless-shell": ("chrome-headless-shell-linux64", "chrome-headless-shell"),
}


def _node_playwright(app_dir: Path) -> Path:
    """The Playwright for Node that browser_check uses, installed where it looks for it."""
    target = app_dir / "browser_test"
    if not (target / "node_modules" / "playwright-core").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "init", "-y"], cwd=target, check=True, capture_output=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "playwright"],
            cwd=target,
            check=True,
            capture_output=True,
        )
    return target / "node_modules" / "playwright-core" / "browsers.json"


def _browsers_folder(listing: Path, folder: Path) -> None:
    """A Playwright browsers folder whose Chromium is the system's."""
    for browser in json.loads(listing.read_text())["browsers"]:
        name, revision = browser["name"], browser["revision"]
        installed = folder / f"{name.replace('-', '_')}-{revision}"
        if name in BROWSER_EXECUTABLES:
            subfolder, executable = BROWSER_EXECUTABLES[name]
            (installed / subfolder).mkdir(parents=True)
            (installed / subfolder / executable).symlink_to(CHROMIUM)
        elif name != "ffmpeg":  # ffmpeg records videos, which browser_check does not
            continue
        installed.mkdir(parents=True, exist_ok=True)
        (installed / "INSTALLATION_COMPLETE").touch()


def test_jupyterlab_browser_check_passes(tmp_path: Path) -> None:
    from jupyterlab.commands import get_app_dir

    _browsers_folder(_node_playwright(Path(get_app_dir())), tmp_path / "browsers")
    env = {**os.environ, "PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "browsers")}

    done = subprocess.run(
        [sys.executable, "-m", "jupyterlab.browser_check", "--allow-root"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "Browser test complete" in log
    assert "workbench.jupyter.server | extension was successfully loaded" in log


def _listing(*command: str) -> str:
    """What a ``jupyter`` listing prints, colours stripped (it writes to stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)


def test_the_installed_extensions_are_listed_as_enabled() -> None:
    lab = _listing("labextension", "list")
    line = next((row for row in lab.splitlines() if "onnx-workbench" in row), "")
    assert re.search(r"onnx-workbench v\S+ enabled\s+OK", line), lab

    server = _listing("server", "extension", "list")
    assert re.search(r"workbench\.jupyter\.server\s+enabled", server), server
    assert re.search(r"workbench\.jupyter\.server\s+OK", server), server
