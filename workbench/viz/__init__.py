"""Figures and the HTML report, drawn from the tidy tables of a study.

Importing this package stays instant: plotly is imported the first time a figure is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.viz.figures import choose, latency_distribution, speedup, throughput_vs_batch
    from workbench.viz.optimize import (
        pareto_figure,
        sensitivity_figure,
        variants_figure,
        waterfall_figure,
    )
    from workbench.viz.report import html_report, write_report
    from workbench.viz.roofline import cold_start, roofline

__all__ = [
    "choose",
    "cold_start",
    "html_report",
    "latency_distribution",
    "pareto_figure",
    "roofline",
    "sensitivity_figure",
    "speedup",
    "throughput_vs_batch",
    "variants_figure",
    "waterfall_figure",
    "write_report",
]

_MODULE_OF = {
    "choose": "figures",
    "latency_distribution": "figures",
    "speedup": "figures",
    "throughput_vs_batch": "figures",
    "html_report": "report",
    "write_report": "report",
    "roofline": "roofline",
    "cold_start": "roofline",
    "pareto_figure": "optimize",
    "sensitivity_figure": "optimize",
    "variants_figure": "optimize",
    "waterfall_figure": "optimize",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        offered = ", ".join(__all__)
        raise AttributeError(f"workbench.viz has no attribute {name!r}; it offers {offered}.")
    value = getattr(importlib.import_module(f"workbench.viz.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
