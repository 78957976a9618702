"""One self-contained HTML report of a study run: environment, tables, plots, parity, noise.

plotly.js travels inside the file, so the report opens without a network.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.results import Results
    from workbench.studies import Study


def study_report(study: Study, path: Path, run: int | None = None) -> Path:
    """Write the report of one run (the latest by default) of every model in the study."""
    from workbench._html import STYLE, escape, table
    from workbench.viz.report import write_report

    runs = study.runs
    chosen = run if run is not None else (runs[-1] if runs else None)
    figures: list[Any] = []
    sections = [
        (
            "Study",
            STYLE
            + table(
                ("", ""),
                [
                    ("name", study.name),
                    ("run", chosen),
                    ("runs so far", len(runs)),
                    ("store", study.store.path),
                    ("written", datetime.datetime.now().isoformat(timespec="seconds")),
                ],
            ),
        )
    ]
    environment = None
    for target in study.targets:
        results = study.results(chosen, target)
        environment = results.environment
        plots = results.plot()
        figures.extend(plots if isinstance(plots, list) else [plots])
        sections.append((f"Results: {target}", STYLE + results._repr_html_()))
        warnings = noise_lines(results)
        if warnings:
            items = "".join(f"<li>{escape(line)}</li>" for line in warnings)
            sections.append((f"Noise warnings: {target}", f"<ul>{items}</ul>"))
    if environment is not None:
        sections.append(("Environment", STYLE + table(("", ""), environment.rows())))
    return write_report(path, f"Study {study.name}", figures, sections, sections_before=2)


def noise_lines(results: Results) -> list[str]:
    """One sentence per cell whose numbers the machine's noise puts in doubt."""
    lines = []
    for item in results.measurements:
        if item.noisy:
            lines.append(
                f"{item.cell.describe()}: other processes used {item.noise_cores:.2f} cores "
                "while it ran (above 0.2); close them or re-run on a quiet machine."
            )
    return lines
