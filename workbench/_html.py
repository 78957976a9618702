"""Small HTML pieces shared by the rich displays of results, artifacts and summaries.

Every piece of text that comes from a model or a user is escaped: node names and doc strings
are untrusted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.artifact import Artifact

STYLE = (
    "<style>.wb-table{border-collapse:collapse;font-size:12px;font-family:monospace}"
    ".wb-table th,.wb-table td{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}"
    ".wb-table th{text-align:left}.wb-bad{color:#b00020;font-weight:bold}"
    ".wb-good{color:#1b7f3b}.wb-note{color:#666;font-size:11px}</style>"
)


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` says they are already safe HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if raw else escape(cell)}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table class="wb-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def artifact_html(artifact: Artifact) -> str:
    parity = {None: "not checked", True: "ok", False: "FAILED"}[artifact.parity_ok]
    rows = [
        ("file", artifact.path),
        ("sha256", artifact.sha256[:16]),
        ("opset / IR", f"{artifact.opset} / {artifact.ir_version}"),
        ("size", f"{artifact.total_bytes:,} bytes"),
        ("inputs", "; ".join(str(spec) for spec in artifact.inputs)),
        ("outputs", "; ".join(str(spec) for spec in artifact.outputs)),
        ("made by", artifact.provenance.exporter or artifact.provenance.tool),
        ("parity", parity),
    ]
    if artifact.provenance.fallback_reason:
        rows.append(("fallback", artifact.provenance.fallback_reason))
    parity_html = artifact.parity._repr_html_() if artifact.parity is not None else ""
    return STYLE + table(("artifact", artifact.name), rows) + parity_html
