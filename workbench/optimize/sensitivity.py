"""Quantization debugging: which layers int8 hurts, and a quantization that keeps them in fp32.

Each group of nodes (one node by default) is kept in fp32 while the rest of the model is
quantized, and the task metric and the error against fp32 are measured on the user's data. The
groups whose fp32 copy wins back a good share of the drop are worth excluding; the model is
quantized again without them, and the trade-off (the drop as more groups stay in fp32, in
ranked order) is measured as well. Every quantization and every run happens in a worker.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError
from workbench.optimize import data as data_module
from workbench.optimize import metrics as metrics_module
from workbench.optimize.lab import _check_all, _Maker, _Reference
from workbench.optimize.sensitivity_result import Layer, Sensitivity, Step, Trial
from workbench.optimize.variant import Variant, Variants

if TYPE_CHECKING:
    import onnx

    from workbench.artifact import Artifact
    from workbench.optimize.passes import Pass

log = logging.getLogger(__name__)

QUANTIZERS = ("int8-dynamic", "int8-static")
_WEIGHTED_OPS = {
    "int8-dynamic": ("MatMul", "Gemm", "Conv", "Attention", "LSTM", "Gather"),
    "int8-static": ("MatMul", "Gemm", "Conv", "ConvTranspose", "Attention", "Gather"),
}
"""The operators each quantizer turns into integer arithmetic, and the candidates kept in fp32."""
# TODO: with int8-static, a node kept in fp32 still reads its input through the Q/DQ pair that
# its producer (a Relu, say) is given, so that activation error stays and the node looks less
# sensitive than it is; grouping each node with its producers would measure it fully. Groups
# that hurt only together are not seen one at a time either; the trade-off curve shows them.


def sensitivity(
    target: Any,
    data: Any = None,
    labels: Any = None,
    *,
    metric: str | Callable[..., float] | None = None,
    method: str = "int8-dynamic",
    groups: Mapping[str, Sequence[str]] | Callable[[str], str] | None = None,
    options: Mapping[str, Any] | None = None,
    share: float = 0.1,
    top: int | None = None,
    budget_s: float | None = None,
    example_inputs: Any = None,
    out_dir: str | os.PathLike[str] | None = None,
    timeout_s: float = 600.0,
    progress: bool = True,
) -> Sensitivity:
    """Rank the layers by what quantizing them costs, and quantize again without the worst.

    ``target`` is an Artifact, an .onnx path, or a ``torch.nn.Module`` with ``example_inputs``;
    ``data`` (and ``labels``) are samples of the task, scored by ``metric`` as in optimize().
    ``method`` is ``"int8-dynamic"`` or ``"int8-static"``, with ``options`` for that pass.
    ``groups`` keeps several nodes in fp32 together: a dict of group name to node names, or a
    function of a node name giving its group (default: each node alone). A group is worth
    excluding when keeping it in fp32 wins back at least ``share`` of the metric's drop; ``top``
    caps that list and the trade-off curve; ``budget_s`` stops measuring when time runs out.
    The re-quantized variant is written in ``out_dir`` (default ``<name>.variants/``).
    """
    from tqdm.auto import tqdm

    from workbench.optimize.passes import get
    from workbench.study import _resolve_target

    if data is None:
        raise InputError(
            "sensitivity() needs data=...: samples of the task (a few hundred), on which each "
            "layer's quantization is measured; add labels=... to measure accuracy."
        )
    step = _quantizer(method, get)
    artifact = _resolve_target(target, example_inputs)
    given = _given(method, options)
    samples = data_module.dataset(artifact, data, labels)
    nodes = _quantizable(artifact, method, given.get("op_types"))
    named = _grouped(nodes, groups)
    ops = {node.name: node.op_type for node in nodes}
    folder = Path(out_dir) if out_dir else artifact.path.parent / f"{artifact.name}.variants"

    bar = tqdm(total=2 * len(named) + 1, desc="sensitivity", disable=not progress, leave=False)
    with tempfile.TemporaryDirectory(prefix=".workbench-sensitivity-") as scratch:
        maker = _Maker(Path(scratch), samples, timeout_s)
        try:
            trials = _Trials.start(maker, step, given, artifact, metric)
            limits = (share, top, budget_s)
            result = _measure(trials, named, ops, folder=folder, limits=limits, bar=bar)
        finally:
            maker.close()
            bar.close()
    log.info(
        "measured the %s sensitivity of %d groups; %d worth keeping in fp32",
        method,
        len(named),
        sum(layer.worth_excluding for layer in result.layers),
    )
    return result


def _measure(
    trials: _Trials,
    named: dict[str, tuple[str, ...]],
    ops: Mapping[str, str],
    *,
    folder: Path,
    limits: tuple[float, int | None, float | None],
    bar: Any,
) -> Sensitivity:
    share, top, budget_s = limits
    deadline = math.inf if budget_s is None else time.perf_counter() + budget_s

    # Everything quantized, then each group alone kept in fp32.
    quantized = trials.measure("all", ())[0]
    if quantized.status != "ok":
        model = trials.root.artifact.name if trials.root.artifact else "the model"
        raise InputError(f"{trials.step.name} does not apply to {model}: {quantized.reason}.")
    bar.update()
    singles = {}
    for index, (group, nodes) in enumerate(named.items()):
        bar.set_postfix_str(group[:40])
        singles[group] = (
            trials.measure(f"group-{index}", nodes) if time.perf_counter() < deadline else None
        )
        bar.update()
    if None in singles.values():
        log.warning("the time budget of %g s ran out before every group was measured", budget_s)
    layers = _ranked(named, ops, singles, quantized, (share, top, budget_s))

    # The re-quantization without the groups worth excluding, kept beside the model.
    chosen = [layer for layer in layers if layer.worth_excluding]
    exclude = tuple(node for layer in chosen for node in layer.nodes)
    # Named apart from optimize()'s variants, whose file of the method's name it must not replace.
    name = f"{trials.step.name}-keep-{len(exclude)}-fp32"
    final, variant = trials.measure(name, exclude, folder=folder)
    variant = trials.checked(variant)

    # The trade-off: the drop as the ranked groups stay in fp32 one more at a time.
    measured = [layer for layer in layers if layer.trial.status != "not measured"]
    reach = len(measured) if top is None else min(top, len(measured))
    bar.total = 1 + len(named) + reach
    curve = [Step(0, "", 0, quantized)]
    for kept in range(1, reach + 1):
        if kept == 1:
            trial = measured[0].trial
        elif kept == len(chosen):
            trial = final
        elif time.perf_counter() < deadline:
            nodes = tuple(node for layer in measured[:kept] for node in layer.nodes)
            trial = trials.measure(f"curve-{kept}", nodes)[0]
        else:
            log.warning(
                "the time budget of %g s ran out; the trade-off stops at %d", budget_s, kept
            )
            break
        count = sum(len(layer.nodes) for layer in measured[:kept])
        curve.append(Step(kept, measured[kept - 1].name, count, trial))
        bar.update()
    return Sensitivity(
        method=trials.step.name,
        metric_name=trials.scorer.name,
        fp32_metric=trials.base,
        quantized=quantized,
        layers=tuple(layers),
        curve=tuple(curve),
        exclude=exclude,
        variant=variant,
    )


@dataclass
class _Trials:
    """Quantizes the model with some nodes kept in fp32, in the worker, and scores the result."""

    maker: _Maker
    step: Pass
    given: dict[str, Any]
    root: Variant
    fp32: _Reference

    @property
    def scorer(self) -> metrics_module.Metric:
        assert self.fp32.scorer is not None  # sensitivity() always has data
        return self.fp32.scorer

    @property
    def reference(self) -> list[Any]:
        return self.fp32.outputs

    @property
    def base(self) -> float:
        return self.fp32.score

    @classmethod
    def start(
        cls,
        maker: _Maker,
        step: Pass,
        given: dict[str, Any],
        artifact: Artifact,
        metric: str | Callable[..., float] | None,
    ) -> _Trials:
        root = Variant("fp32", (), "fp32", "ok", artifact)
        return cls(maker, step, given, root, _Reference.of(root, maker.samples, metric, maker))

    def measure(
        self, name: str, exclude: Sequence[str], folder: Path | None = None
    ) -> tuple[Trial, Variant]:
        """Quantize keeping ``exclude`` in fp32; its files go, unless ``folder`` is given."""
        options = dict(self.given)
        if exclude:
            options["nodes_to_exclude"] = [*options.get("nodes_to_exclude", ()), *exclude]
        scratch = self.maker.folder
        self.maker.folder = (
            folder or scratch
        )  # NOTE: one worker makes the kept and the scratch files
        try:
            variant = self.maker.make(self.root, self.step, options, name=name)
        finally:
            self.maker.folder = scratch
        return self._scored(variant, keep=folder is not None), variant

    def _scored(self, variant: Variant, keep: bool) -> Trial:
        fp32_size = self.root.artifact.total_bytes / 2**20 if self.root.artifact else math.nan
        if variant.status == "skipped":
            # Nothing was left to quantize: what runs is the fp32 model.
            reason = f"{variant.reason}, so the model stays fp32"
            return Trial("skipped", reason, self.base, 0.0, None, fp32_size)
        if not variant.ok or variant.artifact is None:
            return Trial(variant.status, variant.reason)
        outputs = self.maker.run_model(variant)
        if not keep:
            self.maker.outputs.pop(variant.name, None)
            for made in variant.artifact.path.parent.glob(variant.artifact.path.stem + ".*"):
                made.unlink()
        if isinstance(outputs, str):
            return Trial("failed", outputs)
        labels = self.maker.samples.labels
        value = self.scorer.function(outputs, labels, self.reference)
        names = [spec.name for spec in self.root.artifact.outputs] if self.root.artifact else []
        errors = metrics_module.error_stats(names, self.reference, outputs)
        size = variant.artifact.total_bytes / 2**20
        return Trial("ok", "", value, self.base - value, errors, size)

    def checked(self, variant: Variant) -> Variant:
        """The variant with its guard and task metric, as optimize() gives them."""
        if not variant.ok:
            return variant
        pair = Variants([self.root, variant])
        return _check_all(pair, self.maker.samples, self.fp32, self.maker)[1]


def _quantizer(method: str, get: Callable[[str], Pass]) -> Pass:
    if method not in QUANTIZERS:
        raise InputError(
            f"sensitivity() measures int8 quantization: method must be one of "
            f"{', '.join(map(repr, QUANTIZERS))}; got {method!r}."
        )
    return get(method)


def _given(method: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    if options is not None and not isinstance(options, Mapping):
        raise InputError(
            f"options are the {method} pass's options as a dict, such as {{'per_channel': True}}; "
            f"got {options!r}."
        )
    return dict(options or {})


def _quantizable(artifact: Artifact, method: str, op_types: Sequence[str] | None) -> list[Any]:
    """The nodes the quantizer would turn to int8: the candidates for staying in fp32."""
    from workbench.artifact import read_graph

    graph = read_graph(artifact.path).graph
    wanted = [op for op in _WEIGHTED_OPS[method] if not op_types or op in op_types]
    weights = _float_weights(graph)
    # NOTE: int8-dynamic quantizes only products with a constant weight; int8-static also
    # quantizes products of two activations (as in attention), so those are candidates too.
    found = [
        node
        for node in graph.node
        if node.op_type in wanted
        and (method == "int8-static" or any(name in weights for name in node.input))
    ]
    if not found:
        present = sorted({node.op_type for node in graph.node})
        raise InputError(
            f"{artifact.name} has nothing for {method} to quantize: no {', '.join(wanted)} node "
            f"with float32 weights (its operators: {', '.join(present) or 'none'}). Quantization "
            "debugging needs a float32 model with linear, convolution or embedding layers."
        )
    unnamed = [node for node in found if not node.name]
    if len(unnamed) == len(found):
        raise InputError(
            f"The nodes {method} would quantize in {artifact.name} have no names, so none can be "
            "kept in fp32; name the graph's nodes (onnx-ir or onnxslim can) and try again."
        )
    if unnamed:
        log.warning("%d unnamed nodes cannot be kept in fp32, so they are not ranked", len(unnamed))
    return [node for node in found if node.name]


def _float_weights(graph: onnx.GraphProto) -> set[str]:
    import onnx

    return {
        tensor.name for tensor in graph.initializer if tensor.data_type == onnx.TensorProto.FLOAT
    }


def _grouped(
    nodes: Sequence[Any], groups: Mapping[str, Sequence[str]] | Callable[[str], str] | None
) -> dict[str, tuple[str, ...]]:
    """Group name to the node names kept in fp32 together, in graph order."""
    names = [node.name for node in nodes]
    if groups is None:
        return {name: (name,) for name in names}
    if callable(groups):
        found: dict[str, list[str]] = {}
        for name in names:
            found.setdefault(str(groups(name)), []).append(name)
        return {group: tuple(members) for group, members in found.items()}
    if isinstance(groups, Mapping):
        known = set(names)
        for group, members in groups.items():
            unknown = [name for name in members if name not in known]
            if unknown or isinstance(members, str) or not members:
                shown = ", ".join(map(repr, names[:8])) + (", ..." if len(names) > 8 else "")
                raise InputError(
                    f"groups[{group!r}] must list quantizable nodes; {unknown[:1] or members!r} "
                    f"is not one of them. The quantizable nodes are {shown}."
                )
        return {str(group): tuple(members) for group, members in groups.items()}
    raise InputError(
        "groups must be a dict of group name to node names, or a function of a node name "
        f"giving its group; got a {type(groups).__name__}."
    )


def _ranked(
    named: Mapping[str, tuple[str, ...]],
    ops: Mapping[str, str],
    singles: Mapping[str, tuple[Trial, Variant] | None],
    quantized: Trial,
    limits: tuple[float, int | None, float | None],
) -> list[Layer]:
    """Groups by the metric they win back in fp32, then by the error they remove; best first."""
    share, top, budget_s = limits
    unmeasured = Trial("not measured", f"the time budget of {budget_s} s ran out")
    layers = []
    for group, nodes in named.items():
        trial = singles[group][0] if singles[group] else unmeasured
        recovered = trial.metric - quantized.metric
        part = recovered / quantized.drop if quantized.drop > 0 else math.nan
        kinds = tuple(sorted({ops[node] for node in nodes}))
        layers.append(Layer(group, nodes, kinds, trial, recovered, part, False))

    def order(layer: Layer) -> tuple[bool, float, float]:
        error = layer.trial.errors.mean_abs if layer.trial.errors else 0.0
        measured = not math.isnan(layer.recovered)
        return (not measured, -layer.recovered if measured else 0.0, error)

    layers.sort(key=order)
    cap = len(layers) if top is None else top
    worth = [
        index < cap and layer.recovered > 0 and layer.share >= share
        for index, layer in enumerate(layers)
    ]
    return [_marked(layer, flag) for layer, flag in zip(layers, worth, strict=True)]


def _marked(layer: Layer, worth: bool) -> Layer:
    import dataclasses

    return dataclasses.replace(layer, worth_excluding=worth)
