"""Where the time of one run goes: an engine's own per-node profiler, told in graph node names.

ONNX Runtime and OpenVINO rename, fuse and insert nodes as they compile a model. Every timed
engine layer is tied back to a node of the ONNX graph by its name, by the names the engine says
it was made from, or, for a fused layer, by the op it kept among the nodes it replaced (found
through the tensors around it). A layer tied to no node keeps its engine name and is listed in
``unmatched``. No name is made up.
"""

from __future__ import annotations

import logging
import numbers
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import _html
from workbench._callable import make_callable
from workbench.artifact import Artifact, load
from workbench.bench.feeds import feeds_for
from workbench.bench.process import WorkerDiedError, WorkerFailedError, WorkerProcess
from workbench.errors import InputError, RuntimeNotAvailableError, WorkbenchError
from workbench.runtimes import ModelRef, Runtime, RuntimeConfig, get

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["Profile", "profile"]

log = logging.getLogger(__name__)
# NOTE: importing this module sets workbench.profile to it; calling it still profiles.
make_callable(__name__, "workbench.profile:profile")
WARMUP_RUNS = 3
TOP_NODES = 10
"""How many nodes the plain-text and HTML views list; ``per_node`` holds them all."""


@dataclass(frozen=True, eq=False)
class Profile:
    """Per-node time of one model on one runtime, over ``runs`` runs after a warm-up.

    ``per_node`` has one row per ONNX node that carries time (``in_graph`` true) and one per
    engine layer tied to no node (``in_graph`` false, under the engine's name). ``matched_by``
    says how a row was tied: ``name``, ``engine origins`` or ``fused op``. ``fused`` lists the
    graph nodes the engine merged into a row's layers or, for a row not in the graph, the nodes
    whose outputs its layer makes. ``total_ms`` sums the node times of one run; ``run_ms`` is a
    whole run timed around the engine, so the gap is the engine's own overhead. ``statistic``
    says how runs are summed up: the median on ONNX Runtime, whose trace holds every run, and
    the mean on OpenVINO, whose counters keep only means.
    """

    runtime: str
    model: str
    provider: str
    threads: int | None
    batch_size: int
    runs: int
    statistic: str
    total_ms: float
    run_ms: float
    per_node: pd.DataFrame
    per_op_type: pd.DataFrame
    unmatched: tuple[str, ...]
    details: dict[str, Any]

    def to_pandas(self) -> pd.DataFrame:
        """The per-node table, one row per node, a copy the caller may change."""
        return self.per_node.copy()

    def overlay(self) -> dict[str, Any]:
        """Timings keyed by ONNX node name, as plain data a graph viewer can paint.

        Nodes the engine merged into another carry no time of their own and say where it went
        under ``fused_into``.
        """
        nodes: dict[str, dict[str, Any]] = {}
        for row in self.per_node[self.per_node["in_graph"]].itertuples():
            nodes[row.node] = {
                "ms": round(float(row.ms), 6),
                "share": round(float(row.share), 6),
                "op_type": row.op_type,
                "fused_with": list(row.fused),
            }
        timed = set(nodes)
        for row in self.per_node[self.per_node["in_graph"]].itertuples():
            for name in sorted(set(row.fused) - timed):
                entry = nodes.setdefault(name, {"ms": 0.0, "share": 0.0, "fused_into": []})
                entry["fused_into"].append(row.node)
        return {"runtime": self.runtime, "unit": "ms", "total_ms": self.total_ms, "nodes": nodes}

    def plot(self, top: int = 15) -> list[go.Figure]:
        """The slowest nodes, and the time of each op type."""
        from workbench.viz.profile import op_type_breakdown, top_nodes

        return [top_nodes(self.per_node, top), op_type_breakdown(self.per_op_type)]

    @property
    def headline(self) -> str:
        return (
            f"Profile of {self.model} on {self.runtime} ({self.provider}), batch "
            f"{self.batch_size}, {self.runs} runs: {self.total_ms:.4g} ms per run in nodes, "
            f"{self.run_ms:.4g} ms per whole run"
        )

    def _top_rows(self) -> list[tuple[Any, ...]]:
        top = self.per_node.head(TOP_NODES)
        return [
            (r.node, r.op_type, f"{r.ms:.4g}", f"{r.share:.1%}", r.provider, _graph_mark(r))
            for r in top.itertuples()
        ]

    def __str__(self) -> str:
        headers = ("node", "op type", "ms", "share", "provider", "in graph")
        text = self.headline + "\n" + _html.text_table(headers, self._top_rows())
        if self.unmatched:
            text += f"\nnot in the graph: {', '.join(self.unmatched)}"
        return text

    def _repr_html_(self) -> str:
        headers = ("node", "op type", "ms", "share", "provider", "in graph")
        note = ""
        if self.unmatched:
            note = (
                f'<div class="wb-note">{len(self.unmatched)} engine layers are not in the graph: '
                f"{_html.escape(', '.join(self.unmatched))}</div>"
            )
        return (
            f"{_html.STYLE}<div><b>{_html.escape(self.headline)}</b></div>"
            f"{_html.table(headers, self._top_rows())}{note}"
        )


def profile(
    target: Artifact | str | os.PathLike[str],
    runtime: str | RuntimeConfig = "onnxruntime",
    *,
    batch_size: int = 1,
    inputs: Any = None,
    dims: dict[str, int] | None = None,
    runs: int = 50,
    threads: int | None = None,
    timeout_s: float = 300.0,
) -> Profile:
    """Time every node of a model with the engine's own profiler, in a worker process.

    ``runtime`` is ``onnxruntime`` or ``openvino``, with options as in ``benchmark``. Inputs
    come from ``inputs``, from the examples an exported artifact carries, or at random (shaped
    with ``dims``). A few warm-up runs are left out of the ``runs`` that are summed up. A worker
    that stays silent for ``timeout_s`` is killed, and its death raised as an error.
    """
    artifact = _artifact(target)
    config, engine = _runtime(runtime)
    counts = {"batch_size": batch_size, "runs": runs, "threads": 1 if threads is None else threads}
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise InputError(f"{name} must be a positive whole number; got {value!r}.")
    feeds = feeds_for(artifact, inputs, dims)(int(batch_size))

    reply, info = _run_profiler(
        artifact, engine, config, feeds=feeds, runs=int(runs), threads=threads, timeout_s=timeout_s
    )
    layers = [Layer.from_reply(entry) for entry in reply["layers"]]
    per_node = _per_node(layers, _GraphIndex.read(artifact.path))
    per_node.insert(0, "model", artifact.name)
    per_node.insert(0, "runtime", config.label)
    result = Profile(
        runtime=config.label,
        model=artifact.name,
        provider=str(getattr(info, "provider", "")),
        threads=getattr(info, "threads", None),
        batch_size=int(batch_size),
        runs=int(runs),
        statistic=str(reply["statistic"]),
        total_ms=float(per_node["ms"].sum()),
        run_ms=float(reply["run_ms"]),
        per_node=per_node,
        per_op_type=_per_op_type(per_node),
        unmatched=tuple(per_node.loc[~per_node["in_graph"], "node"]),
        details=dict(getattr(info, "details", {})),
    )
    log.info("profiled %s on %s: %.4g ms per run", artifact.name, config.label, result.total_ms)
    return result


def _artifact(target: Any) -> Artifact:
    if isinstance(target, Artifact):
        return target
    if isinstance(target, str | os.PathLike):
        return load(target)
    raise InputError(
        f"profile() takes an Artifact or a path to an .onnx file; got a {type(target).__name__}."
    )


def _runtime(runtime: str | RuntimeConfig) -> tuple[RuntimeConfig, Runtime]:
    config = RuntimeConfig.parse(runtime)
    engine = get(config.name)
    available = engine.available()
    if not available.ok:
        hint = f"; install it with: {available.install}" if available.install else ""
        raise RuntimeNotAvailableError(
            f"The runtime {config.name!r} is not available: {available.reason}{hint}."
        )
    if engine.needs_framework_model:
        raise InputError(
            f"The runtime {config.name!r} runs the framework model, which has no per-node "
            "profiler here; profile with onnxruntime or openvino."
        )
    engine.check_options(config)
    return config, engine


def _run_profiler(
    artifact: Artifact,
    engine: Runtime,
    config: RuntimeConfig,
    *,
    feeds: dict[str, np.ndarray],
    runs: int,
    threads: int | None,
    timeout_s: float,
) -> tuple[dict[str, Any], Any]:
    """Load with profiling on, run, and bring back the engine's layer times."""
    import cloudpickle

    # The engine writes its trace here; this process removes it, even after a crash.
    with tempfile.TemporaryDirectory(
        prefix="workbench-profile-", ignore_cleanup_errors=True
    ) as folder:
        options = tuple(sorted((*config.options, ("profile", folder))))
        worker = WorkerProcess(f"profile {config.label}", threads, None)
        try:
            loaded = worker.request(
                "load",
                timeout_s,
                runtime=cloudpickle.dumps(engine),
                model=ModelRef(artifact),
                config=RuntimeConfig(config.name, options),
                threads=threads,
            )
            reply = worker.request(
                "profile", timeout_s, feeds=feeds, runs=runs, warmup_runs=WARMUP_RUNS
            )
        except WorkerDiedError as death:
            cause = f"Profiling {artifact.name} on {config.label} stopped: {death.cause}"
            raise WorkerDiedError(death.status, cause.rstrip(".") + ".") from None
        except WorkerFailedError as failure:
            raise _failure(artifact, config, failure) from None
        finally:
            worker.close()
    return reply, loaded.get("info")


def _failure(artifact: Artifact, config: RuntimeConfig, failure: WorkerFailedError) -> Exception:
    message = f"Profiling {artifact.name} on {config.label} failed: {failure.message.rstrip('.')}."
    kinds: dict[str, type[Exception]] = {
        "not-available": RuntimeNotAvailableError,
        "input": InputError,
    }
    return kinds.get(failure.kind, WorkbenchError)(message)


# -- tying engine layers to graph nodes -------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One layer as the engine ran it, with its time in one run."""

    name: str
    op_type: str
    provider: str
    ms: float
    origins: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @classmethod
    def from_reply(cls, entry: dict[str, Any]) -> Layer:
        """A layer as a worker described it; engines leave out what they do not know."""
        known = [tuple(entry.get(key, ())) for key in ("origins", "inputs", "outputs", "aliases")]
        return cls(entry["name"], entry["op_type"], entry["provider"], entry["ms"], *known)


@dataclass(frozen=True)
class _GraphIndex:
    """Named nodes of an ONNX graph and its subgraphs, and the tensors between them."""

    op_types: dict[str, str]
    inputs: dict[str, tuple[str, ...]]
    outputs: dict[str, tuple[str, ...]]
    producers: dict[str, str]
    consumers: dict[str, list[str]]

    @classmethod
    def read(cls, path: Path) -> _GraphIndex:
        from workbench.artifact import read_graph
        from workbench.inspect.graph import walk_graphs

        nodes = [n for g in walk_graphs(read_graph(Path(path)).graph) for n in g.node if n.name]
        consumers: dict[str, list[str]] = defaultdict(list)
        for node in nodes:
            for tensor in dict.fromkeys(node.input):
                consumers[tensor].append(node.name)
        return cls(
            op_types={node.name: node.op_type for node in nodes},
            inputs={node.name: tuple(node.input) for node in nodes},
            outputs={node.name: tuple(node.output) for node in nodes},
            producers={out: node.name for node in nodes for out in node.output if out},
            consumers=dict(consumers),
        )

    def resolve(self, name: str) -> str | None:
        """The node a name stands for: a node name or tensor name, or one before a '/'."""
        while name:
            if name in self.op_types:
                return name
            if name in self.producers:
                return self.producers[name]
            # NOTE: engines name the pieces of a split or fused node "<node>/<suffix>".
            name = name.rpartition("/")[0]
        return None

    def below(self, node: str) -> list[str]:
        return [c for tensor in self.outputs[node] for c in self.consumers.get(tensor, ())]

    def above(self, node: str) -> list[str]:
        return [self.producers[tensor] for tensor in self.inputs[node] if tensor in self.producers]

    def knows(self, tensor: str) -> bool:
        return tensor in self.producers or tensor in self.consumers


def _fusion_groups(layers: list[Layer], graph: _GraphIndex) -> list[set[str]]:
    """For each layer, the graph nodes gone from the engine's graph that it took part in.

    Layers and vanished nodes are joined when they make the same tensor, vanished nodes when
    one feeds the other through a tensor no layer makes, and layers when one feeds the other
    through a tensor the graph never had.
    """
    parent: dict[Any, Any] = {}

    def find(item: Any) -> Any:
        while parent.get(item, item) != item:
            item = parent[item]
        return item

    def join(first: Any, second: Any) -> None:
        parent[find(first)] = find(second)

    vanished = set(graph.op_types) - {layer.name for layer in layers}
    made_by = {tensor: index for index, layer in enumerate(layers) for tensor in layer.outputs}
    for tensor, index in made_by.items():
        if graph.producers.get(tensor) in vanished:
            join(("layer", index), ("node", graph.producers[tensor]))
    for node in vanished:
        for tensor in graph.inputs[node]:
            if graph.producers.get(tensor) in vanished and tensor not in made_by:
                join(("node", graph.producers[tensor]), ("node", node))
    for index, layer in enumerate(layers):
        for tensor in layer.inputs:
            if tensor in made_by and not graph.knows(tensor):
                join(("layer", made_by[tensor]), ("layer", index))

    members: dict[Any, set[str]] = defaultdict(set)
    for node in vanished:
        members[find(("node", node))].add(node)
    return [set(members.get(find(("layer", index)), ())) for index in range(len(layers))]


def _match_all(layers: list[Layer], graph: _GraphIndex) -> list[tuple[str | None, str, set[str]]]:
    """For each layer in the order it ran: its graph node, how it was found, what it absorbed."""
    groups = _fusion_groups(layers, graph)
    made_by = {tensor: index for index, layer in enumerate(layers) for tensor in layer.outputs}
    matches: list[tuple[str | None, str]] = []
    claimed: set[str] = set()
    for index, layer in enumerate(layers):
        upstream = [matches[made_by[t]][0] for t in layer.inputs if t in made_by]
        node, how = _match(layer, groups[index], graph, upstream, claimed)
        matches.append((node, how))
        claimed.update(filter(None, [node]))

    absorbed = _absorbed(groups, [node for node, _ in matches], graph)
    found = []
    for layer, group, (node, how) in zip(layers, groups, matches, strict=True):
        origins = {graph.resolve(name) for name in layer.origins}
        taken = absorbed.get(node, set()) if node else _makes(layer, group, graph)
        found.append((node, how, (taken | origins) - {node, None}))
    return found


def _absorbed(
    groups: list[set[str]], nodes: list[str | None], graph: _GraphIndex
) -> dict[str, set[str]]:
    """The vanished nodes that no layer stands for, under the matched node that took them in.

    That is the nearest node above that a layer of the same fusion stands for (an activation
    into its convolution), or else the nearest below (a scaling into its MatMul).
    """
    owners: dict[frozenset[str], set[str]] = defaultdict(set)
    for group, node in zip(groups, nodes, strict=True):
        if group and node:
            owners[frozenset(group)].add(node)
    matched = set(filter(None, nodes))
    taken: dict[str, set[str]] = defaultdict(set)
    for group, its_owners in owners.items():
        for node in group - matched:
            for step in (graph.above, graph.below):
                rings = _rings(step(node), group | its_owners, step)
                hit = next((n for ring in rings for n in ring if n in its_owners), None)
                if hit is not None:
                    taken[hit].add(node)
                    break
    return taken


def _match(
    layer: Layer, group: set[str], graph: _GraphIndex, upstream: list[str | None], claimed: set
) -> tuple[str | None, str]:
    """The node a layer stands for, by its name, the names it came from, or its fused op."""
    for how, names in (("name", (layer.name,)), ("engine origins", layer.origins)):
        for name in names:
            node = graph.resolve(name)
            if node is not None:
                return node, how
    if not group:
        return None, ""
    below = [c for t in layer.inputs for c in graph.consumers.get(t, ())]
    below += [c for n in upstream if n for c in graph.below(n)]
    node = _by_op(layer, group - claimed, below, _makes(layer, group, graph), graph)
    # NOTE: a layer of another op (a layout change, a Squeeze after a Split) stays unmatched
    # even when it makes a node's output: its time is the engine's, not that node's.
    return (node, "fused op") if node else (None, "")


def _makes(layer: Layer, group: AbstractSet[str], graph: _GraphIndex) -> set[str]:
    """The nodes of the group whose output tensors the layer makes, in any memory layout."""
    tensors = (*layer.outputs, *layer.aliases)
    return {graph.producers[t] for t in tensors if graph.producers.get(t) in group}


def _by_op(
    layer: Layer, group: set[str], below: list[str], above: list[str], graph: _GraphIndex
) -> str | None:
    """The one node of the layer's op in the group, or None when that is not clear.

    The node is looked for between the layer's inputs and outputs, then nearest below its
    inputs (the second of two fused convolutions is the second Conv node), then anywhere.
    """
    # A fused layer keeps the op of its main node: FusedConv, FusedMatMul, SkipLayerNormalization.
    same_op = {node for node in group if layer.op_type.endswith(graph.op_types[node])}
    between = _reach(below, group, graph.below) & _reach(above, group, graph.above)
    rings = _rings(below, group, graph.below)
    nearest = next((hits for ring in rings if (hits := same_op & set(ring))), set())
    for found in (same_op & between, nearest, same_op):
        if found:
            return next(iter(found)) if len(found) == 1 else None
    return None


def _reach(starts: Iterable[str], within: AbstractSet[str], step: Callable) -> set[str]:
    return set().union(*_rings(starts, within, step))


def _rings(
    starts: Iterable[str], within: AbstractSet[str], step: Callable[[str], list[str]]
) -> Iterator[list[str]]:
    """Breadth-first levels of nodes from ``starts``, never leaving ``within``."""
    seen: set[str] = set()
    ring = [node for node in dict.fromkeys(starts) if node in within]
    while ring:
        yield ring
        seen.update(ring)
        following = dict.fromkeys(n for node in ring for n in step(node))
        ring = [node for node in following if node in within and node not in seen]


def _per_node(layers: list[Layer], graph: _GraphIndex) -> pd.DataFrame:
    """One row per graph node with time, and one per layer tied to no node."""
    import pandas as pd

    rows: dict[tuple[bool, str], dict[str, Any]] = {}
    for layer, (node, how, fused) in zip(layers, _match_all(layers, graph), strict=True):
        key = (node is not None, node or layer.name)
        row = rows.setdefault(
            key,
            {
                "node": key[1],
                "op_type": graph.op_types[node] if node else layer.op_type,
                "ms": 0.0,
                "provider": "",
                "in_graph": key[0],
                "matched_by": "",
                "layers": (),
                "engine_ops": (),
                "fused": (),
            },
        )
        row["ms"] += layer.ms
        row["layers"] += (layer.name,)
        row["engine_ops"] = tuple(dict.fromkeys((*row["engine_ops"], layer.op_type)))
        row["provider"] = _joined(row["provider"], layer.provider)
        row["matched_by"] = _joined(row["matched_by"], how)
        row["fused"] = tuple(sorted({*row["fused"], *fused}))
    table = pd.DataFrame(list(rows.values()), columns=_COLUMNS)
    total = table["ms"].sum()
    table.insert(3, "share", table["ms"] / total if total > 0 else 0.0)
    return table.sort_values(["ms", "node"], ascending=[False, True], ignore_index=True)


_COLUMNS = [
    "node", "op_type", "ms", "provider", "in_graph", "matched_by", "layers", "engine_ops", "fused"
]  # fmt: skip


def _per_op_type(per_node: pd.DataFrame) -> pd.DataFrame:
    grouped = per_node.groupby(["runtime", "model", "op_type"], as_index=False).agg(
        ms=("ms", "sum"), share=("share", "sum"), nodes=("node", "count")
    )
    return grouped.sort_values("ms", ascending=False, ignore_index=True)


def _joined(text: str, item: str) -> str:
    """A comma-separated list of distinct words, with one more."""
    return ", ".join(dict.fromkeys(filter(None, (*text.split(", "), item))))


def _graph_mark(row: Any) -> str:
    if not row.in_graph:
        return "no"
    return f"yes, fused with {', '.join(row.fused)}" if row.fused else "yes"
