"""Variants: what a chain of passes made, how it compares with its parent, and its lineage."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench import _html

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

    from workbench.artifact import Artifact
    from workbench.optimize.metrics import ErrorStats

STATUSES = ("ok", "rejected", "skipped", "failed")
"""ok: made and faithful to its parent; rejected: made, but its outputs drifted past the guard;
skipped: the pass does not apply (the reason says why); failed: the tool failed or crashed."""


@dataclass(frozen=True)
class Guard:
    """The accuracy guard's verdict on a variant against its parent, with error statistics."""

    against: str
    precision: str
    ok: bool
    rule: str
    errors: ErrorStats

    def describe(self) -> str:
        verdict = "passes" if self.ok else "FAILS"
        return f"{verdict} {self.rule} against {self.against}: {self.errors.describe()}"


@dataclass(frozen=True, eq=False)
class Variant:
    """One model made by a chain of passes (``fp32`` is the model as given).

    ``metric`` is the task metric on the user's data and ``drop`` its fall from the fp32 model
    (positive is worse); both are NaN when no data was given.
    """

    name: str
    passes: tuple[str, ...]
    precision: str
    status: str
    artifact: Artifact | None = None
    parent: Variant | None = None
    reason: str = ""
    guard: Guard | None = None
    metric_name: str = ""
    metric: float = math.nan
    drop: float = math.nan
    engines: tuple[str, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    made_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def path(self) -> Any:
        return None if self.artifact is None else self.artifact.path

    def lineage(self) -> list[Variant]:
        """This variant and its ancestors, the model as given first."""
        chain, current = [], self
        while current is not None:
            chain.append(current)
            current = current.parent
        return chain[::-1]

    def row(self) -> dict[str, Any]:
        errors = self.guard.errors if self.guard else None
        return {
            "variant": self.name,
            "parent": self.parent.name if self.parent else None,
            "precision": self.precision,
            "status": self.status,
            "reason": self.reason,
            "max_abs": errors.max_abs if errors else math.nan,
            "cosine": errors.cosine if errors else math.nan,
            "agreement": errors.agreement if errors else math.nan,
            "metric": self.metric,
            "drop": self.drop,
            "megabytes": self.artifact.total_bytes / 2**20 if self.artifact else math.nan,
            "made_s": self.made_s,
            "path": str(self.path) if self.path else None,
        }

    def __str__(self) -> str:
        text = f"{self.name} [{self.status}]"
        if self.reason:
            text += f": {self.reason}"
        elif self.guard:
            text += f": {self.guard.describe()}"
        if not math.isnan(self.metric):
            text += f"; {self.metric_name} {self.metric:.4f} (drop {self.drop:+.4f})"
        return text

    def __repr__(self) -> str:
        return f"Variant({self.name!r}, {self.status})"


class Variants(list):
    """The variants of one optimize() call, the model as given first; a list with views."""

    def get(self, name: str) -> Variant:
        for variant in self:
            if variant.name == name:
                return variant
        raise KeyError(f"no variant {name!r}; the variants are {', '.join(v.name for v in self)}")

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([variant.row() for variant in self])

    def tree(self) -> str:
        """The lineage as an indented tree: each variant under the one it was made from."""
        children: dict[Variant | None, list[Variant]] = {}
        for variant in self:
            children.setdefault(variant.parent, []).append(variant)
        lines: list[str] = []

        def walk(node: Variant, prefix: str, last: bool, top: bool) -> None:
            branch = "" if top else ("└─ " if last else "├─ ")
            step = node.passes[-1] if node.passes else "as given"
            lines.append(f"{prefix}{branch}{step}  [{node.name}: {_mark(node)}]")
            below = children.get(node, [])
            for index, child in enumerate(below):
                extension = "" if top else ("   " if last else "│  ")
                walk(child, prefix + extension, index == len(below) - 1, False)

        for root in [v for v in self if v.parent is None or v.parent not in self]:
            walk(root, "", True, True)
        return "\n".join(lines)

    def plot(self) -> go.Figure:
        """Each variant's error against its parent and its metric drop, by status."""
        from workbench.viz.optimize import variants_figure

        return variants_figure(self.to_pandas())

    def __str__(self) -> str:
        return self.tree() + "\n\n" + "\n".join(str(variant) for variant in self)

    def _repr_html_(self) -> str:
        headers = ("variant", "status", "precision", "guard", "metric (drop)", "size")
        rows = []
        for variant in self:
            metric = (
                ""
                if math.isnan(variant.metric)
                else f"{variant.metric_name} {variant.metric:.4f} ({variant.drop:+.4f})"
            )
            guard = variant.reason or (variant.guard.describe() if variant.guard else "")
            size = f"{variant.artifact.total_bytes / 2**20:.2f} MiB" if variant.artifact else ""
            rows.append((variant.name, variant.status, variant.precision, guard, metric, size))
        tree = f"<pre class='wb-tree'>{_html.escape(self.tree())}</pre>"
        return _html.STYLE + tree + _html.table(headers, rows)


def _mark(variant: Variant) -> str:
    return variant.status if variant.status != "ok" else variant.precision
