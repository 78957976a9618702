"""Optimization lab: passes that make variants, an accuracy guard, and the search over them.

Importing this package is cheap; the tools each pass wraps are imported in worker processes.
"""

from workbench._callable import make_callable
from workbench.optimize.lab import lineage, optimize
from workbench.optimize.passes import PASSES, NotApplicable, Pass
from workbench.optimize.search import Choice, Tuning, autotune
from workbench.optimize.sensitivity import sensitivity
from workbench.optimize.sensitivity_result import Sensitivity
from workbench.optimize.variant import Guard, Variant, Variants

__all__ = [
    "PASSES",
    "Choice",
    "Guard",
    "NotApplicable",
    "Pass",
    "Sensitivity",
    "Tuning",
    "Variant",
    "Variants",
    "autotune",
    "lineage",
    "optimize",
    "sensitivity",
]

# NOTE: workbench.optimize(model) still optimizes after this folder has been imported.
make_callable(__name__, "workbench.optimize.lab:optimize")
