"""The Jupyter server side of the JupyterLab extension: one endpoint that describes a model.

``GET /workbench/graph?path=<path relative to the server's root>`` answers with the graph
description of ``workbench.inspect`` (nodes, edges, shapes, initializer sizes, never a weight
value), so the browser never receives the model file itself.

The endpoint requires an authenticated user, reads only regular ``.onnx`` files inside the
server's root directory (no ``..``, no absolute path, no symbolic link that leads outside), and
refuses files and answers past a size limit. The model is parsed and described in a worker
process with a memory limit and a deadline, so that a malformed or hostile file costs that
worker, never the Jupyter server: the answer is then one sentence with a 4xx status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

logger = logging.getLogger(__name__)

ROUTE = "/workbench/graph"
MEMORY_LIMIT_MB = float(os.environ.get("WORKBENCH_GRAPH_MEMORY_MB", "4096"))
"""The describing worker is killed past this resident size (parsing a 2 GiB model fits)."""
DEADLINE_S = 120.0
MAX_MODEL_BYTES = 2 * 1024**3
"""Protobuf cannot parse a message past 2 GiB; larger models keep their weights outside."""

MAX_ANSWER_BYTES = 64 * 1024**2
"""A graph description larger than this would not be drawable in a browser anyway."""

MAX_PATH_CHARS = 4096


class GraphHandler(APIHandler):
    """Describe one model file below the server's root directory."""

    @web.authenticated
    async def get(self) -> None:
        relative = self.get_query_argument("path", "")
        try:
            # NOTE: the server's root, not the contents manager's, whose base class defaults
            # to "/" when a manager that is not file-based leaves it unset.
            root = self.settings.get("server_root_dir") or self.contents_manager.root_dir
            model_path = resolve_inside(
                Path(os.path.expanduser(root)),
                relative,
                allow_hidden=bool(getattr(self.contents_manager, "allow_hidden", False)),
            )
            answer = await asyncio.to_thread(describe_in_worker, model_path, relative)
        except GraphRequestError as refusal:
            # NOTE: written here rather than raised as HTTPError, whose message tornado would
            # %-format: a file name may hold a percent sign.
            self.set_status(refusal.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": refusal.message}))
            return
        self.set_header("Content-Type", "application/json")
        self.finish(answer)


class GraphRequestError(Exception):
    """A request the endpoint answers with an HTTP error status and one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        # Raised in the describing worker, the status comes back as the error's kind.
        self.worker_kind = f"http {status}"


def resolve_inside(root: Path, relative: str, *, allow_hidden: bool = False) -> Path:
    """The model file that ``relative`` names below ``root``, or an HTTP error saying why not."""
    if not relative or len(relative) > MAX_PATH_CHARS or "\x00" in relative:
        raise GraphRequestError(400, "Give the model as ?path=<file.onnx below the root>.")
    parts = PurePosixPath(relative).parts
    if relative.startswith(("/", "\\")) or ".." in parts or "\\" in relative:
        raise GraphRequestError(403, f"{relative} is outside the server's root directory.")
    if not allow_hidden and any(part.startswith(".") for part in parts):
        raise GraphRequestError(403, f"{relative} is hidden, and the server hides such files.")
    if not relative.endswith(".onnx"):
        raise GraphRequestError(400, f"{relative} is not an .onnx file.")

    real_root = root.resolve()
    try:
        target = (real_root / relative).resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise GraphRequestError(404, f"{relative} does not exist.") from None
    except (OSError, RuntimeError):  # a symbolic link loop, a name too long
        raise GraphRequestError(400, f"{relative} cannot be opened.") from None
    # NOTE: the check runs on the resolved path, so a link inside the root that points
    # outside it is refused like a `..` would be.
    if not target.is_relative_to(real_root):
        raise GraphRequestError(403, f"{relative} is outside the server's root directory.")
    hidden = any(part.startswith(".") for part in target.relative_to(real_root).parts)
    if hidden and not allow_hidden:
        raise GraphRequestError(403, f"{relative} leads to a hidden file, which the server hides.")
    if not target.is_file():
        raise GraphRequestError(400, f"{relative} is not a regular file.")
    if target.stat().st_size > MAX_MODEL_BYTES:
        raise GraphRequestError(413, f"{relative} is larger than 2 GiB.")
    return target


_worker: Any = None
_worker_lock = threading.Lock()


def describe_in_worker(model_path: Path, relative: str) -> str:
    """describe_answer() run in the server's describing worker, started or restarted as needed."""
    global _worker  # noqa: PLW0603 - one worker for the server's lifetime
    from workbench.bench.process import WorkerDiedError, WorkerFailedError, WorkerProcess

    with _worker_lock:
        if _worker is None or not _worker.alive:
            _worker = WorkerProcess("graph", 1, MEMORY_LIMIT_MB)
        try:
            return _worker.request(
                "call",
                DEADLINE_S,
                function=f"{__name__}:describe_answer",
                kwargs={"model_path": str(model_path), "relative": relative},
            )
        except WorkerFailedError as failure:
            status = failure.kind.removeprefix("http ")
            if status.isdigit():
                raise GraphRequestError(int(status), failure.message) from None
            logger.warning("describing %s failed: %s", model_path, failure.details)
            raise GraphRequestError(
                422, f"{relative} could not be described: {_first_line(failure.message)}"
            ) from None
        except WorkerDiedError as death:
            _worker.kill()
            _worker = None
            raise GraphRequestError(
                422, f"{relative} could not be described: the process reading it {death.cause}."
            ) from None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no reason given"
    return line if len(line) <= 300 else line[:300] + "…"


def describe_answer(model_path: Path | str, relative: str) -> str:
    """The JSON text of the answer: name, path and graph description of one model."""
    from workbench.errors import WorkbenchError
    from workbench.inspect.summary import describe_file

    model_path = Path(model_path)
    try:
        graph = describe_file(model_path)
    except WorkbenchError as exc:
        message = _first_line(str(exc))
        # Messages name absolute paths; the browser is told only the path it asked for.
        for named in (str(model_path), str(model_path.resolve())):
            message = message.replace(named, relative)
        message = message.replace(str(model_path.parent.resolve()) + os.sep, "")
        raise GraphRequestError(422, message) from None
    except Exception as exc:  # a malformed graph trips many a parser and counter
        logger.warning("describing %s failed", model_path, exc_info=True)
        raise GraphRequestError(
            422, f"{relative} could not be described: {type(exc).__name__}: {_first_line(str(exc))}"
        ) from None
    answer: dict[str, Any] = {
        "version": 1,
        "name": model_path.stem,
        "path": relative,
        "graph": graph,
        "last_modified": datetime.fromtimestamp(
            model_path.stat().st_mtime, timezone.utc
        ).isoformat(),
    }
    text = json.dumps(answer, separators=(",", ":"))
    if len(text) > MAX_ANSWER_BYTES:
        raise GraphRequestError(
            413,
            f"The graph of {relative} is larger than {MAX_ANSWER_BYTES // 1024**2} MiB and is "
            "not sent to the browser.",
        )
    return text


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "workbench.jupyter.server"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Add the graph endpoint to a running Jupyter server."""
    web_app = server_app.web_app
    pattern = url_path_join(web_app.settings["base_url"], ROUTE)
    web_app.add_handlers(".*$", [(pattern, GraphHandler)])
    logger.info("The workbench graph endpoint is at %s", pattern)
