"""What a pass is: a named step wrapping one tool, with the reason it does not apply.

A pass's ``function`` runs in a worker process (``module:name``), so a tool that crashes or
hangs on a model costs a variant, never the user's session. It is called as
``function(source=..., target=..., **options)`` with file paths and returns a small dict of
facts about what it did. When it finds at run time that it has nothing to do (no fusion matched,
nothing to quantize), it raises :class:`NotApplicable` and the variant is skipped with that
sentence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

    from workbench.artifact import Artifact

PRECISIONS = ("fp32", "fp16", "int8")
QUANTIZED_OPS = frozenset(
    {
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
    }
)


class NotApplicable(Exception):  # noqa: N818 - a verdict, not a failure
    """Raised inside a pass when the model offers it nothing to do; the message says why."""

    worker_kind = "not-applicable"


@dataclass(frozen=True)
class ModelFacts:
    """What the passes need to know of a graph to decide whether they apply (weights unread)."""

    op_types: Counter[str]
    float_inputs: bool
    float_weights: int
    """Float32 initializer elements: the weights fp16 and int8 passes would convert."""
    half_weights: int
    external_data: bool
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, proto: onnx.ModelProto, artifact: Artifact) -> ModelFacts:
        import onnx

        from workbench.inspect.graph import walk_graphs

        ops: Counter[str] = Counter()
        domains: set[str] = set()
        weights: Counter[int] = Counter()
        for graph in walk_graphs(proto.graph):
            ops.update(node.op_type for node in graph.node)
            domains.update(node.domain for node in graph.node)
            for tensor in graph.initializer:
                weights[tensor.data_type] += _elements(tensor)
        return cls(
            op_types=ops,
            float_inputs=any(spec.dtype in ("float32", "float64") for spec in artifact.inputs),
            float_weights=weights[onnx.TensorProto.FLOAT],
            half_weights=weights[onnx.TensorProto.FLOAT16],
            external_data=bool(artifact.external_files),
            domains=frozenset(domains),
        )

    @property
    def quantized(self) -> bool:
        return any(op in QUANTIZED_OPS for op in self.op_types)

    @property
    def machine_layout(self) -> bool:
        """ONNX Runtime's CPU-specific blocked layouts (from ``ort-all``) are in the graph."""
        return "com.microsoft.nchwc" in self.domains

    @property
    def half(self) -> bool:
        return self.half_weights > 0 and self.float_weights == 0

    @property
    def transformer(self) -> bool:
        """Attention somewhere: a Softmax between matrix products, or an attention op."""
        fused = {"Attention", "MultiHeadAttention"} & set(self.op_types)
        return bool(fused) or (self.op_types["Softmax"] > 0 and self.op_types["MatMul"] >= 2)


def _elements(tensor: onnx.TensorProto) -> int:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count


@dataclass(frozen=True, eq=False)
class Pass:
    """One optimization step.

    ``precision`` is the arithmetic the result computes in (fp32, fp16 or int8): the accuracy
    guard judges a variant by it. ``engines`` names the runtimes that can load the result (None:
    any); graphs rewritten into ONNX Runtime's own operators run on ONNX Runtime only.
    """

    name: str
    precision: str
    tool: str
    function: str
    summary: str
    check: Callable[[ModelFacts, Mapping[str, Any]], str | None]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    engines: tuple[str, ...] | None = None
    needs_data: bool = False

    def skip_reason(self, facts: ModelFacts, options: Mapping[str, Any]) -> str | None:
        """Why this pass does not apply to a model with these facts, or None when it does."""
        return self.check(facts, options)

    def applies_to(self, artifact: Artifact) -> bool:
        from workbench.artifact import read_graph

        facts = ModelFacts.of(read_graph(artifact.path), artifact)
        return self.skip_reason(facts, self.defaults) is None


def save(proto: onnx.ModelProto, target: str, external: bool) -> None:
    """Write a model, its weights beside it in one data file when the parent had one."""
    import onnx

    path = Path(target)
    if external or proto.ByteSize() > 1_900_000_000:
        onnx.save(
            proto,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=path.name + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save(proto, str(path))
