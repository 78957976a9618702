"""What is inside an ONNX model: its signature, operators, parameters and compute per sample."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import _html
from workbench.artifact import Artifact, TensorSpec, load, read_graph
from workbench.errors import InputError, ModelFileError
from workbench.inspect.flops import count_flops, forget_weight_values, infer_shapes
from workbench.inspect.graph import count_parameters, describe, op_key, walk_graphs

if TYPE_CHECKING:
    from workbench.profile import Profile

logger = logging.getLogger(__name__)

TOP_OP_TYPES = 10
"""How many op types the plain-text and HTML views list; ``op_types`` holds them all."""

_NAMES_SHOWN = 3


@dataclass(frozen=True, repr=False)
class Summary:
    """Signature, operators, parameters and FLOPs per sample of one ONNX model.

    ``flops`` counts convolutions, matrix products and attention only, a multiply-add being two
    operations. When ``flops_unknown_nodes`` is not empty, those nodes were left out and
    ``flops`` is a lower bound; it is None when no compute node could be counted at all.
    ``parameters`` counts the elements of every initializer, small shape constants included.
    ``graph`` describes nodes and edges for a graph viewer and never holds weight values.
    ``timings`` is the per-node overlay of a profile, once ``with_timings`` attached one.
    """

    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    opsets: dict[str, int]
    ir_version: int
    node_count: int
    op_types: dict[str, int]
    parameters: int
    parameter_bytes: int
    flops: int | None
    flops_by_op: dict[str, int]
    flops_unknown_nodes: tuple[str, ...]
    dims: dict[str, int]
    graph: dict[str, Any] = field(compare=False)
    timings: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def flops_is_lower_bound(self) -> bool:
        return bool(self.flops_unknown_nodes)

    def with_timings(self, profile: Profile | Mapping[str, Any]) -> Summary:
        """The same summary with per-node times, which the JupyterLab graph view paints.

        ``profile`` is a :class:`workbench.Profile` of this model or its ``overlay()``.
        """
        overlay = profile if isinstance(profile, Mapping) else profile.overlay()
        if not isinstance(overlay.get("nodes"), Mapping):
            raise InputError(
                "with_timings takes a workbench.Profile or its overlay() dict, with per-node "
                f"times under 'nodes'; got a {type(profile).__name__} without them."
            )
        for name, entry in overlay["nodes"].items():
            fields = entry if isinstance(entry, Mapping) else {}
            if not all(_non_negative(fields.get(key)) for key in ("ms", "share")):
                raise InputError(
                    f"The timing of node {name!r} must hold 'ms' and 'share' as non-negative "
                    f"finite numbers; got {entry!r}."
                )
        known = {node["name"] for node in _all_nodes(self.graph)}
        if known and not known & set(overlay["nodes"]):
            raise InputError(
                f"None of the profiled nodes is in {self.name}: the profile is of another model. "
                "Profile this model and attach that profile."
            )
        return dataclasses.replace(self, timings=dict(overlay))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """The interactive graph for JupyterLab, with HTML and text for other front ends."""
        graph = {"version": 1, "name": self.name, "graph": self.graph, "timings": self.timings}
        return {
            GRAPH_MIME_TYPE: graph,
            "text/html": self._repr_html_(),
            "text/plain": str(self),
        }

    def to_dict(self) -> dict[str, Any]:
        """Every field as plain data that ``json.dumps`` accepts."""
        return {
            "path": str(self.path),
            "inputs": _spec_dicts(self.inputs),
            "outputs": _spec_dicts(self.outputs),
            "opset": self.opset,
            "opsets": dict(self.opsets),
            "ir_version": self.ir_version,
            "node_count": self.node_count,
            "op_types": dict(self.op_types),
            "parameters": self.parameters,
            "parameter_bytes": self.parameter_bytes,
            "flops": self.flops,
            "flops_by_op": dict(self.flops_by_op),
            "flops_unknown_nodes": list(self.flops_unknown_nodes),
            "dims": dict(self.dims),
            "graph": self.graph,
        }

    def __str__(self) -> str:
        lines = [
            f"{self.name}: {self.node_count} nodes, {_opset_text(self)}",
            f"inputs:     {'; '.join(map(str, self.inputs)) or 'none'}",
            f"outputs:    {'; '.join(map(str, self.outputs))}",
            f"parameters: {self.parameters:,} ({_bytes_text(self.parameter_bytes)})",
            f"FLOPs:      {_flops_text(self)}",
        ]
        if self.dims:
            lines.append(f"dims:       {_dims_text(self.dims)}")
        return "\n".join([*lines, "", _html.text_table(_OP_HEADERS, _op_rows(self))])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = [
            ("inputs", "; ".join(map(str, self.inputs)) or "none"),
            ("outputs", "; ".join(map(str, self.outputs))),
            ("opset / IR", _opset_text(self)),
            ("nodes", f"{self.node_count:,}"),
            ("parameters", f"{self.parameters:,} ({_bytes_text(self.parameter_bytes)})"),
            ("FLOPs", _flops_text(self)),
        ]
        if self.dims:
            rows.append(("dims", _dims_text(self.dims)))
        card = _html.table(("model", self.name), rows)
        return _html.STYLE + card + _html.table(_OP_HEADERS, _op_rows(self))


def _non_negative(value: Any) -> bool:
    import math

    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def describe_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The graph description of an .onnx file alone, as ``inspect(path).graph`` gives it.

    Cheaper than inspect(): no FLOPs, and the files of external data are checked to lie in the
    model's folder but never opened (inspect() hashes them for the artifact's sha256).
    """
    from workbench.artifact import _check_model_path, check_external_data

    model_path = _check_model_path(path)
    model = read_graph(model_path)
    check_external_data(model, model_path)
    forget_weight_values(model)
    return describe(infer_shapes(model).graph)


def inspect(
    target: Artifact | str | os.PathLike[str], *, dims: Mapping[str, int] | None = None
) -> Summary:
    """Summarise a model without reading its weights.

    ``target`` is an artifact or the path of an .onnx file. ``dims`` gives sizes to named
    dimensions of the inputs, such as ``{"seq": 128}``; the first dimension of every input is
    the batch and is taken as 1, so FLOPs are per sample.
    """
    artifact = target if isinstance(target, Artifact) else load(target)
    if not artifact.path.is_file():
        raise ModelFileError(
            f"{artifact.path} no longer exists, so the artifact cannot be inspected; export or "
            "load the model again."
        )
    model = read_graph(artifact.path)
    forget_weight_values(model)

    counted = count_flops(model, dims or {})
    parameters, parameter_bytes = count_parameters(model.graph)
    op_types = Counter(op_key(node) for graph in walk_graphs(model.graph) for node in graph.node)
    # The viewer shows shapes as the model states them, batch and other names kept symbolic.
    graph = describe(infer_shapes(model).graph)

    summary = Summary(
        path=artifact.path,
        inputs=artifact.inputs,
        outputs=artifact.outputs,
        opset=artifact.opset,
        opsets=dict(artifact.opsets),
        ir_version=artifact.ir_version,
        node_count=op_types.total(),
        op_types=dict(op_types.most_common()),
        parameters=parameters,
        parameter_bytes=parameter_bytes,
        flops=counted.total,
        flops_by_op=counted.by_op,
        flops_unknown_nodes=counted.unknown_nodes,
        dims=counted.dims,
        graph=graph,
    )
    logger.info(
        "Inspected %s: %d nodes, %d parameters, FLOPs %s",
        artifact.path,
        summary.node_count,
        parameters,
        _flops_text(summary),
    )
    return summary


_OP_HEADERS = ("op type", "nodes", "FLOPs")

GRAPH_MIME_TYPE = "application/vnd.workbench.graph+json"
"""The output type the JupyterLab extension draws as an interactive graph."""


def _all_nodes(graph: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = list(graph["nodes"])
    for node in graph["nodes"]:
        for subgraph in node.get("subgraphs", {}).values():
            nodes.extend(_all_nodes(subgraph))
    return nodes


def _op_rows(summary: Summary) -> list[tuple[str, str, str]]:
    rows = [
        (op, f"{count:,}", _si(summary.flops_by_op[op]) if op in summary.flops_by_op else "")
        for op, count in list(summary.op_types.items())[:TOP_OP_TYPES]
    ]
    hidden = len(summary.op_types) - TOP_OP_TYPES
    if hidden > 0:
        rows.append((f"... {hidden} more op types", "", ""))
    return rows


def _flops_text(summary: Summary) -> str:
    unknown = summary.flops_unknown_nodes
    listed = ", ".join(unknown[:_NAMES_SHOWN]) + (", ..." if len(unknown) > _NAMES_SHOWN else "")
    unsized = {dim for spec in summary.inputs for dim in spec.shape if isinstance(dim, str)}
    unsized -= set(summary.dims)
    hint = f"; give sizes to {', '.join(sorted(unsized))} with dims=" if unsized else ""
    if summary.flops is None:
        return f"unknown: no compute node had inferable shapes ({listed}){hint}"
    text = f"{summary.flops:,} per sample ({_si(summary.flops)})"
    if unknown:
        text += (
            f", a lower bound: {len(unknown)} compute node(s) with unknown shapes or inside "
            f"If/Loop/Scan bodies not counted ({listed}){hint}"
        )
    return text


def _spec_dicts(specs: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
    return [{"name": spec.name, "dtype": spec.dtype, "shape": list(spec.shape)} for spec in specs]


def _opset_text(summary: Summary) -> str:
    others = [f"{domain} {version}" for domain, version in summary.opsets.items()]
    others = [text for text in others if not text.startswith("ai.onnx ")]
    extra = f" ({', '.join(others)})" if others else ""
    return f"opset {summary.opset}{extra}, IR {summary.ir_version}"


def _dims_text(dims: dict[str, int]) -> str:
    return ", ".join(f"{name}={size}" for name, size in dims.items())


def _si(value: float) -> str:
    """A count with a metric prefix, three significant digits."""
    for prefix in ("", "K", "M", "G", "T"):
        if abs(value) < 999.5:  # 999.7 would print as 1e+03
            return f"{value:.3g} {prefix}".rstrip()
        value /= 1000
    return f"{value:.3g} P"


def _bytes_text(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    scaled = size / 1024
    for unit in ("KiB", "MiB"):
        if scaled < 1024:
            return f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} GiB"
