"""One self-contained HTML page holding a study's figures and tables.

The page carries plotly.js inline, once, so it opens from a disk or an e-mail attachment with no
network at all.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench._html import STYLE, escape

if TYPE_CHECKING:
    import plotly.graph_objects as go

_PAGE_STYLE = (
    "<style>body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;"
    "max-width:1100px;margin:24px auto;padding:0 16px}h1{font-size:22px}"
    "h2{font-size:17px;margin-top:28px}.wb-figure{margin:18px 0}</style>"
)
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def html_report(
    title: str,
    figures: Sequence[go.Figure],
    sections: Sequence[tuple[str, str]],
    *,
    sections_before: int = 0,
) -> str:
    """A whole HTML document: the figures, then the sections, each under its escaped heading.

    ``sections`` are (heading, HTML fragment) pairs whose fragments are already safe HTML; the
    first ``sections_before`` of them go above the figures, the rest below.
    """
    before, after = sections[:sections_before], sections[sections_before:]
    body = [
        f"<h1>{escape(title)}</h1>",
        *(_section(heading, fragment) for heading, fragment in before),
        *_figures(figures),
        *(_section(heading, fragment) for heading, fragment in after),
    ]
    head = f'<meta charset="utf-8"><title>{escape(title)}</title>{STYLE}{_PAGE_STYLE}'
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>'
        + head
        + "</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_report(
    path: str | os.PathLike[str],
    title: str,
    figures: Sequence[go.Figure],
    sections: Sequence[tuple[str, str]],
    *,
    sections_before: int = 0,
) -> Path:
    """Write the report to ``path`` in one step, so a reader never sees half a page."""
    target = Path(path)
    document = html_report(title, figures, sections, sections_before=sections_before)
    target.parent.mkdir(parents=True, exist_ok=True)

    # The temporary file lives in the same folder, so that os.replace is an atomic rename.
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(document)
        # NOTE: mkstemp makes the file private to its owner; a report is meant to be shared.
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _figures(figures: Sequence[go.Figure]) -> list[str]:
    """Each figure as a fragment; only the first carries plotly.js."""
    return [
        '<div class="wb-figure">'
        + figure.to_html(
            full_html=False,
            include_plotlyjs=index == 0,
            include_mathjax=False,
            config=_PLOT_CONFIG,
            default_height="480px",
        )
        + "</div>"
        for index, figure in enumerate(figures)
    ]


def _section(heading: str, fragment: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>\n{fragment}\n</section>"
