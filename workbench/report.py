"""One self-contained HTML report of a study run: environment, tables, plots, parity, noise.

plotly.js travels inside the file, so the report opens without a network.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.results import Results
    from workbench.studies import Study


def study_report(study: Study, path: Path, run: int | None = None) -> Path:
    """Write the report of one run (the latest by default) of every model in the study."""
    runs = study.runs
    chosen = run if run is not None else (runs[-1] if runs else None)
    every = {target: study.results(chosen, target) for target in study.targets}
    return _write(path, every, name=study.name, store=study.store.path, run=chosen, runs=len(runs))


def report_from_store(
    name: str, path: str | os.PathLike[str], *, store: Any = None, run: int | None = None
) -> Path:
    """The report of a stored study, read from the store alone (``workbench report``)."""
    from workbench.store.rebuild import results_from_store
    from workbench.store.sqlite import Store

    opened = store if isinstance(store, Store) else Store(store)
    runs = opened.runs(name)
    chosen = run if run is not None else (runs[-1] if runs else None)
    table = opened.measurements(name, chosen)
    models = list(dict.fromkeys(table["artifact"])) if len(table) else [None]
    every = {}
    for sha in models:
        results = results_from_store(opened, name, chosen, sha)
        every[results.model] = results
    return _write(Path(path), every, name=name, store=opened.path, run=chosen, runs=len(runs))


def _write(
    path: Path, every: dict[str, Results], *, name: str, store: Path, run: int | None, runs: int
) -> Path:
    from workbench._html import STYLE, escape, table
    from workbench.viz.report import write_report

    about = [
        ("name", name),
        ("run", run),
        ("runs so far", runs),
        ("store", store),
        ("written", datetime.datetime.now().isoformat(timespec="seconds")),
    ]
    sections = [("Study", STYLE + table(("", ""), about))]
    figures: list[Any] = []
    environment = None
    for target, results in every.items():
        environment = results.environment
        plots = results.plot()
        figures.extend(plots if isinstance(plots, list) else [plots])
        if any(item.ok for item in results.measurements):
            figures.append(results.plot("cold-start"))
            if results.flops_per_sample and results.peak_gflops:
                figures.append(results.plot("roofline"))
        sections.append((f"Results: {target}", STYLE + results._repr_html_()))
        warnings = noise_lines(results)
        if warnings:
            items = "".join(f"<li>{escape(line)}</li>" for line in warnings)
            sections.append((f"Noise warnings: {target}", f"<ul>{items}</ul>"))
    if environment is not None:
        sections.append(("Environment", STYLE + table(("", ""), environment.rows())))
    return write_report(path, f"Study {name}", figures, sections, sections_before=2)


def noise_lines(results: Results) -> list[str]:
    """One sentence per cell whose numbers noise puts in doubt: busy cores, outliers, shifts."""
    from workbench.bench.shifts import noise_warning

    lines = []
    for item in results.measurements:
        warning = noise_warning(item) if item.ok else None
        if warning:
            lines.append(f"{item.cell.describe()}: {warning}")
    return lines
