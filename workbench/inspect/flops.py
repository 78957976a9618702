"""Count the floating-point operations of one sample through a model.

Only the operators that dominate compute are counted: convolutions, matrix products and
attention, a multiply-add being two operations. Shapes come from ONNX shape inference on a copy
of the graph whose batch dimension is 1 and whose named dimensions take the sizes the user gave.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError
from workbench.inspect.graph import op_key, subgraphs, walk_graphs

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]
ShapeOf = Callable[[str], Shape | None]

# Tensors with more elements than this are weights, never shape data that inference must read.
_LARGEST_SHAPE_DATA = 1024


@dataclass(frozen=True)
class FlopCount:
    """FLOPs per sample, by op type, and the compute nodes that could not be counted."""

    total: int | None
    by_op: dict[str, int]
    unknown_nodes: tuple[str, ...]
    dims: dict[str, int]


def count_flops(model: onnx.ModelProto, dims: Mapping[str, int]) -> FlopCount:
    """FLOPs of one sample through the model's main graph."""
    sizes = dimension_sizes(model.graph, dims)
    work, samples = _per_sample_model(model, sizes)
    shape_of = _shape_table(work.graph)

    by_op: dict[str, int] = {}
    unknown: list[str] = []
    for index, node in enumerate(work.graph.node):
        # NOTE: a branch or a loop body runs a data-dependent number of times, so the compute
        # nodes inside one are listed as not counted rather than guessed.
        unknown.extend(_compute_nodes_inside(node))
        counter = _COUNTERS.get(op_key(node))
        if counter is None:
            continue
        try:
            flops = counter(node, shape_of)
        except (IndexError, ValueError, TypeError, ZeroDivisionError):
            flops = None  # a node missing an input, an output or an attribute it needs
        if flops is None:
            unknown.append(node.name or f"{op_key(node)}#{index}")
        else:
            by_op[op_key(node)] = by_op.get(op_key(node), 0) + flops // samples

    total = None if unknown and not by_op else sum(by_op.values())
    ordered = dict(sorted(by_op.items(), key=lambda item: -item[1]))
    return FlopCount(total, ordered, tuple(unknown), sizes)


def dimension_sizes(graph: onnx.GraphProto, dims: Mapping[str, int]) -> dict[str, int]:
    """Sizes for the named dimensions of the inputs: 1 for batch dimensions, the rest from dims."""
    batch_names, other_names = _named_dimensions(graph)
    known = batch_names | other_names
    strangers = sorted(set(dims) - known)
    if strangers:
        raise InputError(
            f"dims names {', '.join(map(repr, strangers))}, which no model input uses; the "
            f"model's named dimensions are: {', '.join(sorted(known)) or 'none'}."
        )
    for name, size in dims.items():
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise InputError(f"dims[{name!r}] is {size!r}; expected a positive whole number.")
        if name in batch_names and size != 1:
            raise InputError(
                f"dims[{name!r}] is {size}, but {name!r} is the batch dimension and FLOPs are "
                "counted per sample, where it is 1; leave it out of dims."
            )
    return {**dict(dims), **dict.fromkeys(batch_names, 1)}


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with inferred shapes, or unchanged with a warning when inference fails."""
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, ValueError) as exc:
        logger.warning(
            "Skipped ONNX shape inference, which failed (%s), so only the shapes written in the "
            "model are known and FLOPs may be incomplete.",
            exc,
        )
        return model


def forget_weight_values(model: onnx.ModelProto) -> None:
    """Drop the values of large inline initializers, keeping their dims.

    Inspection needs only shapes; without the values, copies and shape inference stay cheap.
    """
    import onnx

    for graph in walk_graphs(model.graph):
        for tensor in graph.initializer:
            external = tensor.data_location == onnx.TensorProto.EXTERNAL
            if external or math.prod(tensor.dims) <= _LARGEST_SHAPE_DATA:
                continue
            dims, data_type, name = list(tensor.dims), tensor.data_type, tensor.name
            tensor.Clear()
            tensor.dims.extend(dims)
            tensor.data_type, tensor.name = data_type, name
            # NOTE: marked as external data, the state shape inference already handles for
            # models whose weights live beside them; this copy is never saved.
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.external_data.add(key="location", value="(not loaded)")


def _named_dimensions(graph: onnx.GraphProto) -> tuple[set[str], set[str]]:
    """Symbolic dimension names of the inputs: those in first place, and all others."""
    batch, other = set(), set()
    for value in _true_inputs(graph):
        for position, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_param:
                (batch if position == 0 else other).add(dim.dim_param)
    return batch, other - batch


def _true_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    # Models of IR version 3 and older also list their initializers as inputs.
    initializers = {tensor.name for tensor in graph.initializer}
    return [value for value in graph.input if value.name not in initializers]


def _per_sample_model(model: onnx.ModelProto, sizes: dict[str, int]) -> tuple[Any, int]:
    """A shape-inferred copy with named dims set, and how many samples its fixed batch holds."""
    import onnx

    work = onnx.ModelProto()
    work.CopyFrom(model)
    graph = work.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in sizes:
                dim.dim_value = sizes[dim.dim_param]

    firsts = set()
    for value in _true_inputs(graph):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
        if dims:
            firsts.add(dims[0].dim_value)
    # NOTE: a model exported with a fixed batch of N is counted as is and divided by N, since
    # forcing its batch to 1 would break the reshapes that hard-code N.
    samples = firsts.pop() if len(firsts) == 1 else 1

    if work.functions:
        import onnx.inliner

        # Compute inside model-local functions is counted once their calls are expanded.
        work = onnx.inliner.inline_local_functions(work)
    return infer_shapes(work), max(samples, 1)


def _shape_table(graph: onnx.GraphProto) -> ShapeOf:
    """A lookup of fully known shapes by tensor name; None when any dim is unknown."""
    known: dict[str, Shape] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        dims = tensor_type.shape.dim
        if tensor_type.HasField("shape") and all(dim.HasField("dim_value") for dim in dims):
            known[value.name] = tuple(dim.dim_value for dim in dims)
    known.update((tensor.name, tuple(tensor.dims)) for tensor in graph.initializer)
    return lambda name: known.get(name) if name else None


def _compute_nodes_inside(node: onnx.NodeProto) -> list[str]:
    return [
        inner.name or op_key(inner)
        for _, held in subgraphs(node)
        for graph in walk_graphs(held)
        for inner in graph.node
        if op_key(inner) in _COUNTERS
    ]


def _input(node: onnx.NodeProto, index: int) -> str:
    """The name of an optional input, or "" when it is absent."""
    return node.input[index] if index < len(node.input) else ""


def _attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    import onnx

    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _conv(node: onnx.NodeProto, shape_of: ShapeOf, *, weight: int, bias: int | None) -> int | None:
    """Each output element sums over C_in/group times the kernel; the weight holds that shape."""
    output, kernel = shape_of(node.output[0]), shape_of(_input(node, weight))
    if output is None or kernel is None:
        return None
    flops = 2 * math.prod(output) * math.prod(kernel[1:])
    if bias is not None and _input(node, bias):
        flops += math.prod(output)
    return flops


def _conv_transpose(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    """Each input element is spread over C_out/group times the kernel."""
    data, kernel, output = (
        shape_of(name) for name in (node.input[0], node.input[1], node.output[0])
    )
    if data is None or kernel is None or output is None:
        return None
    flops = 2 * math.prod(data) * math.prod(kernel[1:])
    if _input(node, 2):
        flops += math.prod(output)
    return flops


def _gemm(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    first, output = shape_of(node.input[0]), shape_of(node.output[0])
    if first is None or output is None or len(first) != 2:
        return None
    depth = first[0] if _attribute(node, "transA", 0) else first[1]
    flops = 2 * math.prod(output) * depth
    if _input(node, 2):
        flops += math.prod(output)
    return flops


def _matmul(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    """Every output element, broadcast batch included, is a dot product over A's last dim."""
    first, output = shape_of(node.input[0]), shape_of(node.output[0])
    if not first or output is None:
        return None
    return 2 * math.prod(output) * first[-1]


def _attention_products(batch: int, queries: int, keys: int, qk_width: int, v_width: int) -> int:
    """Q times K transposed, then the scores times V; widths summed over the query heads."""
    return 2 * batch * queries * keys * (qk_width + v_width)


def _onnx_attention(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    query, key, value = (shape_of(_input(node, index)) for index in range(3))
    if query is None or key is None or value is None:
        return None
    if len(query) == 4:  # (batch, heads, sequence, head size)
        heads, queries, qk_width = query[1], query[2], query[1] * query[3]
        keys, v_head = key[2], value[3]
    else:  # (batch, sequence, hidden), the head counts given as attributes
        heads, kv_heads = _attribute(node, "q_num_heads", 0), _attribute(node, "kv_num_heads", 0)
        if not heads or not kv_heads:
            return None
        queries, qk_width, keys, v_head = query[1], query[2], key[1], value[2] // kv_heads
    past = shape_of(_input(node, 4))  # (batch, kv heads, past length, head size)
    if past is not None:
        keys += past[2]
    return _attention_products(query[0], queries, keys, qk_width, heads * v_head)


def _ms_attention(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    """The contrib op projects Q, K and V itself before attending, so count that too."""
    data, weights = shape_of(node.input[0]), shape_of(_input(node, 1))
    if data is None or weights is None or len(data) != 3:
        return None
    batch, length, hidden = data
    widths = _attribute(node, "qkv_hidden_sizes", None) or [weights[1] // 3] * 3
    keys = length
    past = shape_of(_input(node, 4))  # (2, batch, heads, past length, head size)
    if past is not None:
        keys += past[3]
    projection = 2 * batch * length * hidden * weights[1]
    return projection + _attention_products(batch, length, keys, widths[0], widths[2])


def _ms_multi_head_attention(node: onnx.NodeProto, shape_of: ShapeOf) -> int | None:
    query = shape_of(node.input[0])
    if query is None:
        return None
    if len(query) == 5:  # Q, K and V packed: (batch, sequence, heads, 3, head size)
        keys, qk_width = query[1], query[2] * query[4]
        v_width = qk_width
    else:
        widths = _key_value_widths(shape_of(_input(node, 1)), shape_of(_input(node, 2)))
        if widths is None:
            return None
        (keys, v_width), qk_width = widths, query[2]
    past = shape_of(_input(node, 6))  # (batch, heads, past length, head size)
    if past is not None:
        keys += past[2]
    return _attention_products(query[0], query[1], keys, qk_width, v_width)


def _key_value_widths(key: Shape | None, value: Shape | None) -> tuple[int, int] | None:
    """Key length and total value width, in each layout MultiHeadAttention accepts."""
    if key is None:
        return None
    if len(key) == 5:  # K and V packed: (batch, length, heads, 2, head size)
        return key[1], key[2] * key[4]
    if value is None:
        return None
    if len(key) == 4:  # (batch, heads, length, head size)
        return key[2], value[1] * value[3]
    return key[1], value[2]


_COUNTERS: dict[str, Callable[[Any, ShapeOf], int | None]] = {
    "Conv": partial(_conv, weight=1, bias=2),
    "ConvInteger": partial(_conv, weight=1, bias=None),
    "QLinearConv": partial(_conv, weight=3, bias=8),
    "ConvTranspose": _conv_transpose,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "MatMulInteger": _matmul,
    "QLinearMatMul": _matmul,
    "Attention": _onnx_attention,
    "com.microsoft.Attention": _ms_attention,
    "com.microsoft.MultiHeadAttention": _ms_multi_head_attention,
}
