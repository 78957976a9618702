"""The Jupyter server side of the JupyterLab extension: one endpoint that describes a model.

``GET /workbench/graph?path=<path relative to the server's root>`` answers with the graph
description of ``workbench.inspect`` (nodes, edges, shapes, initializer sizes, never a weight
value), so the browser never receives the model file itself.

The endpoint requires an authenticated user, reads only regular ``.onnx`` files inside the
server's root directory (no ``..``, no absolute path, no symbolic link that leads outside), and
refuses files and answers past a size limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

logger = logging.getLogger(__name__)

ROUTE = "/workbench/graph"
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
            model_path = resolve_inside(
                Path(self.contents_manager.root_dir),
                relative,
                allow_hidden=bool(getattr(self.contents_manager, "allow_hidden", False)),
            )
            answer = await asyncio.to_thread(describe_answer, model_path, relative)
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
    if not target.is_file():
        raise GraphRequestError(400, f"{relative} is not a regular file.")
    if target.stat().st_size > MAX_MODEL_BYTES:
        raise GraphRequestError(413, f"{relative} is larger than 2 GiB.")
    return target


def describe_answer(model_path: Path, relative: str) -> str:
    """The JSON text of the answer: name, path and graph description of one model."""
    import workbench
    from workbench.errors import WorkbenchError

    try:
        summary = workbench.inspect(model_path)
    except WorkbenchError as exc:
        # The message names the absolute path; the browser is told the path it asked for.
        message = str(exc).replace(str(model_path), relative)
        raise GraphRequestError(422, message.splitlines()[0]) from None
    answer: dict[str, Any] = {
        "version": 1,
        "name": summary.name,
        "path": relative,
        "graph": summary.graph,
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
