"""Start a Jupyter server or JupyterLab in a temporary folder for a test, and stop it after."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
"""The browser of the browser tests: Debian's Chromium unless WORKBENCH_CHROMIUM names another."""

SERVER_EXTENSION = "--ServerApp.jpserver_extensions={'workbench.jupyter.server': True}"


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    root: Path
    log: Path

    def get(self, path: str, *, token: str | None = None) -> tuple[int, bytes]:
        """Status and body of a GET; ``token`` replaces the server's own (``""`` sends none)."""
        request = urllib.request.Request(self.url + path)
        used = self.token if token is None else token
        if used:
            request.add_header("Authorization", f"token {used}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running(app: str, root: Path, log: Path, *extra: str) -> Iterator[Server]:
    """``app`` is ``jupyter_server`` or ``jupyterlab``, started on a free port with a token."""
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        app,
        f"--port={port}",
        "--ip=127.0.0.1",
        "--no-browser",
        "--allow-root",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_unauthenticated_access=False",
        SERVER_EXTENSION,
        *extra,
    ]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(log.parent / "config")}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        server = Server(f"http://127.0.0.1:{port}", token, root, log)
        try:
            _wait_until_up(server, process)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(server: Server, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {server.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            status, _ = server.get("/api/status")
            if status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not start in {timeout} s: {server.log.read_text()[-3000:]}")
