"""Describe an ONNX graph as plain data that a graph viewer can draw.

The description lists the nodes, the tensors flowing between them with their shapes and element
types, and the initializers by shape and size. It holds no weight value, so it is safe to embed
in a notebook, and it is made of dicts, lists, strings and numbers only, so ``json.dumps`` always
works on it.

Node ids are ``n<index>`` within a graph; graph inputs and outputs appear as the pseudo nodes
``input:<tensor>`` and ``output:<tensor>``. Inside the subgraph held by attribute ``body`` of node
``n3`` every id is prefixed with ``n3/body/``, so ids are unique across the whole description.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

MAX_LIST_ITEMS = 16
"""Longer attribute lists (tree ensembles keep their model there) are summarised by length."""

MAX_TEXT = 200

# Element widths that the numpy dtype does not tell, because these types are stored packed.
_PACKED_BITS = {
    "INT4": 4,
    "UINT4": 4,
    "FLOAT4E2M1": 4,
    "INT2": 2,
    "UINT2": 2,
    "FLOAT6E2M3": 6,
    "FLOAT6E3M2": 6,
}

Description = dict[str, Any]


def op_key(node: onnx.NodeProto) -> str:
    """The op type, qualified by its domain unless that is the default ONNX domain."""
    if node.domain in ("", "ai.onnx"):
        return node.op_type
    return f"{node.domain}.{node.op_type}"


def subgraphs(node: onnx.NodeProto) -> list[tuple[str, onnx.GraphProto]]:
    """The graphs held in a node's attributes (If branches, Loop and Scan bodies), by name."""
    found = []
    for attribute in node.attribute:
        if attribute.HasField("g"):
            found.append((attribute.name, attribute.g))
        found.extend((f"{attribute.name}[{i}]", graph) for i, graph in enumerate(attribute.graphs))
    return found


def walk_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and, depth first, every subgraph nested in it."""
    yield graph
    for node in graph.node:
        for _, subgraph in subgraphs(node):
            yield from walk_graphs(subgraph)


def dtype_name(elem_type: int) -> str:
    """The numpy name of an ONNX element type, or the ONNX name where numpy has none."""
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return "unknown"


def tensor_size(tensor: onnx.TensorProto) -> tuple[int, int]:
    """Elements and bytes of a tensor, from its dims alone: weights stay unread."""
    import onnx

    elements = math.prod(tensor.dims)
    try:
        type_name = onnx.TensorProto.DataType.Name(tensor.data_type)
    except ValueError:  # a data type this onnx does not know: its size cannot be told
        return elements, 0
    if type_name in _PACKED_BITS:
        return elements, math.ceil(elements * _PACKED_BITS[type_name] / 8)
    if type_name == "STRING":
        return elements, sum(len(text) for text in tensor.string_data)
    try:
        return elements, elements * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return elements, 0


def count_parameters(graph: onnx.GraphProto) -> tuple[int, int]:
    """Elements and bytes of every initializer in the graph and its subgraphs."""
    elements = size = 0
    for each in walk_graphs(graph):
        for tensor in each.initializer:
            count, nbytes = tensor_size(tensor)
            elements, size = elements + count, size + nbytes
        for sparse in each.sparse_initializer:
            # NOTE: a pruned weight still counts its full dense shape as parameters.
            elements += math.prod(sparse.dims)
            size += tensor_size(sparse.values)[1] + tensor_size(sparse.indices)[1]
    return elements, size


def describe(graph: onnx.GraphProto, prefix: str = "", outer: dict | None = None) -> Description:
    """Nodes, edges, inputs, outputs and initializers of a graph, subgraphs nested in nodes."""
    types = {**(outer or {}), **_value_types(graph)}
    initializers = {tensor.name: _tensor_entry(tensor) for tensor in graph.initializer}
    for sparse in graph.sparse_initializer:
        entry = _tensor_entry(sparse.values)
        entry["shape"], entry["sparse"] = list(sparse.dims), True
        initializers[sparse.values.name] = entry
    inputs = [_value_entry(v.name, types) for v in graph.input if v.name not in initializers]
    producers = {value["name"]: f"{prefix}input:{value['name']}" for value in inputs}

    nodes, edges = [], []
    for index, node in enumerate(graph.node):
        entry = _node_entry(node, f"{prefix}n{index}", types)
        consumed = dict.fromkeys([*node.input, *entry.get("implicit_inputs", [])])
        edges.extend(
            _edge(producers[name], entry["id"], name, types)
            for name in consumed
            if name in producers
        )
        producers.update((name, entry["id"]) for name in node.output if name)
        nodes.append(entry)

    outputs = [_value_entry(value.name, types) for value in graph.output]
    edges.extend(
        _edge(producers[value["name"]], f"{prefix}output:{value['name']}", value["name"], types)
        for value in outputs
        if value["name"] in producers
    )
    return {
        "nodes": nodes,
        "edges": edges,
        "inputs": inputs,
        "outputs": outputs,
        "initializers": initializers,
    }


def _node_entry(node: onnx.NodeProto, node_id: str, types: dict) -> Description:
    entry: Description = {
        "id": node_id,
        "name": node.name,
        "op_type": node.op_type,
        "domain": node.domain,
        "inputs": list(node.input),
        "outputs": list(node.output),
        "attributes": {
            attribute.name: _attribute_value(attribute)
            for attribute in node.attribute
            if not (attribute.HasField("g") or attribute.graphs)
        },
    }
    held = subgraphs(node)
    if held:
        entry["subgraphs"] = {
            name: describe(graph, f"{node_id}/{name}/", types) for name, graph in held
        }
        # A branch or body may read tensors of the enclosing graph; the viewer draws those as
        # edges into this node.
        outer_names = [name for _, graph in held for name in _outer_names(graph)]
        entry["implicit_inputs"] = list(dict.fromkeys(outer_names))
    return entry


def _outer_names(graph: onnx.GraphProto) -> list[str]:
    """Tensors a graph reads but does not define: they come from an enclosing graph."""
    defined = {value.name for value in graph.input}
    defined.update(tensor.name for tensor in graph.initializer)
    defined.update(sparse.values.name for sparse in graph.sparse_initializer)
    found: dict[str, None] = {}
    for node in graph.node:
        nested = [name for _, inner in subgraphs(node) for name in _outer_names(inner)]
        for name in [*node.input, *nested]:
            if name and name not in defined:
                found[name] = None
        defined.update(node.output)
    found.update((value.name, None) for value in graph.output if value.name not in defined)
    return list(found)


def _value_types(graph: onnx.GraphProto) -> dict[str, Description]:
    types = {tensor.name: _tensor_entry(tensor) for tensor in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        kind = value.type.WhichOneof("value")
        if kind in ("tensor_type", "sparse_tensor_type"):
            tensor_type = getattr(value.type, kind)
            types[value.name] = {
                "shape": _shape(tensor_type),
                "dtype": dtype_name(tensor_type.elem_type),
            }
        elif kind is not None:
            types.setdefault(value.name, {"shape": None, "dtype": kind.removesuffix("_type")})
    return types


def _shape(tensor_type: Any) -> list[int | str | None] | None:
    """Dims as sizes, symbolic names or None; None for the whole shape when the rank is unknown."""
    if not tensor_type.HasField("shape"):
        return None
    return [
        dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
        for dim in tensor_type.shape.dim
    ]


def _value_entry(name: str, types: dict) -> Description:
    known = types.get(name, {})
    return {"name": name, "shape": known.get("shape"), "dtype": known.get("dtype", "unknown")}


def _edge(source: str, target: str, tensor: str, types: dict) -> Description:
    known = types.get(tensor, {})
    return {
        "source": source,
        "target": target,
        "tensor": tensor,
        "shape": known.get("shape"),
        "dtype": known.get("dtype", "unknown"),
    }


def _tensor_entry(tensor: onnx.TensorProto) -> Description:
    return {
        "shape": list(tensor.dims),
        "dtype": dtype_name(tensor.data_type),
        "bytes": tensor_size(tensor)[1],
    }


def _attribute_value(attribute: onnx.AttributeProto) -> Any:
    """A JSON-able view of one attribute: small values as they are, tensors by shape only."""
    import onnx

    kinds = onnx.AttributeProto
    if attribute.ref_attr_name:
        return {"ref": attribute.ref_attr_name}
    readers = {
        kinds.FLOAT: lambda a: _number(a.f),
        kinds.INT: lambda a: a.i,
        kinds.STRING: lambda a: _text(a.s),
        kinds.FLOATS: lambda a: _listed([_number(value) for value in a.floats]),
        kinds.INTS: lambda a: _listed(list(a.ints)),
        kinds.STRINGS: lambda a: _listed([_text(value) for value in a.strings]),
        kinds.TENSOR: lambda a: {"tensor": _tensor_entry(a.t)},
        kinds.TENSORS: lambda a: _listed([{"tensor": _tensor_entry(t)} for t in a.tensors]),
        kinds.SPARSE_TENSOR: lambda a: {
            "tensor": {**_tensor_entry(a.sparse_tensor.values), "shape": list(a.sparse_tensor.dims)}
        },
    }
    reader = readers.get(attribute.type)
    if reader is None:
        return {"type": kinds.AttributeType.Name(attribute.type).lower()}
    return reader(attribute)


def _number(value: float) -> float | str:
    # JSON has no NaN or infinity; a viewer's JSON.parse would reject them.
    return value if math.isfinite(value) else str(value)


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _listed(values: list[Any]) -> list[Any] | dict[str, int]:
    return values if len(values) <= MAX_LIST_ITEMS else {"length": len(values)}
