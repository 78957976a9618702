"""One ONNX model on disk and what is known about it.

`load` reads a model made elsewhere. It never lets ONNX or an engine follow an external-data
location that leaves the model's own folder, and it reads only the graph, never the weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ModelFileError

if TYPE_CHECKING:
    import onnx

    from workbench.export.parity import ParityReport

IN_MEMORY = ("_framework_model", "_example_feeds", "_keyword_inputs")
"""Attributes an exported artifact carries in memory only: the module and its example inputs."""

Dim = int | str | None
"""One dimension of a tensor: a size, a symbolic name such as ``"batch"``, or unknown."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, element type and shape of one model input or output."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"


@dataclass(frozen=True)
class Provenance:
    """How an artifact was made: by which tool, from what, with which options."""

    tool: str
    exporter: str = ""
    fallback_reason: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    """An ONNX model file plus its identity, signature and lineage."""

    path: Path
    sha256: str
    opset: int
    ir_version: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    model_bytes: int
    external_files: tuple[tuple[str, int], ...] = ()
    opsets: dict[str, int] = field(default_factory=dict)
    producer: str = ""
    provenance: Provenance = field(default_factory=lambda: Provenance(tool="load"))
    parent: str | None = None
    step: str | None = None
    parity: ParityReport | None = None

    @property
    def total_bytes(self) -> int:
        """Size of the model file and its external data files together."""
        return self.model_bytes + sum(size for _, size in self.external_files)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def parity_ok(self) -> bool | None:
        """True or False once parity was checked, None when it never was."""
        return None if self.parity is None else self.parity.ok

    @property
    def batch_is_dynamic(self) -> bool:
        return bool(self.inputs) and all(
            spec.shape and not isinstance(spec.shape[0], int) for spec in self.inputs
        )

    def replace(self, **changes: Any) -> Artifact:
        """A copy with some fields changed (the in-memory framework model travels along)."""
        copy = dataclasses.replace(self, **changes)
        for name in IN_MEMORY:
            if name in self.__dict__:
                object.__setattr__(copy, name, self.__dict__[name])
        return copy

    def __getstate__(self) -> dict[str, Any]:
        # NOTE: the in-memory framework model never travels with a pickled artifact; workers get
        # it separately and only when they need it.
        return {k: v for k, v in self.__dict__.items() if k not in IN_MEMORY}

    def __repr__(self) -> str:
        parity = {None: "not checked", True: "ok", False: "FAILED"}[self.parity_ok]
        return (
            f"Artifact({str(self.path)!r}, opset {self.opset}, {_megabytes(self.total_bytes)}, "
            f"sha256 {self.sha256[:12]}, parity {parity})"
        )

    def _repr_html_(self) -> str:
        from workbench._html import artifact_html

        return artifact_html(self)


def load(path: str | os.PathLike[str]) -> Artifact:
    """Read an ONNX model file made elsewhere into an :class:`Artifact`.

    Only the graph is parsed; weights stay on disk. External data must live inside the model's
    own folder.
    """
    model_path = _check_model_path(path)
    proto = read_graph(model_path)
    external = check_external_data(proto, model_path)
    return artifact_from_proto(proto, model_path, external, Provenance(tool="load"))


def read_graph(model_path: Path) -> onnx.ModelProto:
    """Parse the model file without its external data, with one clear error if it is not ONNX."""
    import onnx

    try:
        proto = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf, JSON and text parsers raise their own types
        raise ModelFileError(
            f"{model_path} is not an ONNX model: it could not be parsed as one "
            f"({type(exc).__name__}: {_first_line(exc)}); expected a .onnx file written by an "
            "exporter or by onnx.save."
        ) from None
    if proto.ir_version <= 0 or not proto.graph.output:
        raise ModelFileError(
            f"{model_path} is not an ONNX model: it parsed, but holds no IR version or no graph "
            "outputs; expected a .onnx file written by an exporter or by onnx.save."
        )
    return proto


def check_external_data(proto: onnx.ModelProto, model_path: Path) -> tuple[tuple[str, int], ...]:
    """Refuse external-data locations outside the model's folder; return (file, bytes) pairs."""
    folder = model_path.parent.resolve()
    files: dict[str, int] = {}
    for tensor in _all_tensors(proto):
        if tensor.data_location != 1:  # TensorProto.EXTERNAL
            continue
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        target = _inside_folder(folder, location, model_path, tensor.name)
        if not target.is_file():
            raise ModelFileError(
                f"{model_path}: the weights of tensor {tensor.name!r} are expected in "
                f"{location!r} next to the model, but that file does not exist; copy the data "
                "file beside the model."
            )
        files[location] = target.stat().st_size
    return tuple(sorted(files.items()))


def _inside_folder(folder: Path, location: str, model_path: Path, tensor: str) -> Path:
    parts = Path(location).parts
    if not location or Path(location).is_absolute() or ".." in parts:
        raise ModelFileError(
            f"{model_path}: tensor {tensor!r} stores its weights at {location!r}, which is not a "
            "plain file name inside the model's folder; for safety only data files beside the "
            "model are read."
        )
    target = (folder / location).resolve()
    if not target.is_relative_to(folder):
        raise ModelFileError(
            f"{model_path}: tensor {tensor!r} stores its weights at {location!r}, a link that "
            "leads outside the model's folder; for safety only data files inside the model's "
            "folder are read."
        )
    return target


def artifact_from_proto(
    proto: onnx.ModelProto,
    model_path: Path,
    external: tuple[tuple[str, int], ...],
    provenance: Provenance,
    **extra: Any,
) -> Artifact:
    """Build the record for a parsed model file."""
    opsets = {entry.domain or "ai.onnx": entry.version for entry in proto.opset_import}
    initializers = {tensor.name for tensor in proto.graph.initializer}
    inputs = tuple(_spec(value) for value in proto.graph.input if value.name not in initializers)
    producer = f"{proto.producer_name} {proto.producer_version}".strip()
    return Artifact(
        path=model_path,
        sha256=file_digest(model_path, [model_path.parent / name for name, _ in external]),
        opset=opsets.get("ai.onnx", 0),
        ir_version=proto.ir_version,
        inputs=inputs,
        outputs=tuple(_spec(value) for value in proto.graph.output),
        model_bytes=model_path.stat().st_size,
        external_files=external,
        opsets=opsets,
        producer=producer,
        provenance=provenance,
        **extra,
    )


def file_digest(model_path: Path, data_files: list[Path]) -> str:
    """sha256 over the model file and then its data files, in name order."""
    digest = hashlib.sha256()
    for path in [model_path, *sorted(data_files)]:
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _spec(value: onnx.ValueInfoProto) -> TensorSpec:
    import onnx

    tensor_type = value.type.tensor_type
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
    except (KeyError, TypeError, ValueError):
        dtype = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()
    dims: list[Dim] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or None)
    return TensorSpec(value.name, dtype, tuple(dims))


def _all_tensors(proto: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every initializer and tensor attribute, subgraphs of If, Loop and Scan included."""
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        yield from graph.initializer
        yield from (sparse.values for sparse in graph.sparse_initializer)
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors
                if attribute.HasField("g"):
                    graphs.append(attribute.g)
                graphs.extend(attribute.graphs)


def _check_model_path(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise ModelFileError(
            f"Expected the path of an .onnx file, got a {type(path).__name__}; pass a string or "
            "a pathlib.Path."
        )
    model_path = Path(path).expanduser()
    if not model_path.exists():
        raise ModelFileError(f"{model_path} does not exist; expected the path of an .onnx file.")
    if model_path.is_dir():
        raise ModelFileError(f"{model_path} is a folder; expected the path of an .onnx file.")
    if model_path.stat().st_size == 0:
        raise ModelFileError(f"{model_path} is empty; expected an ONNX model.")
    return model_path.absolute()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no message"


def _megabytes(size: int) -> str:
    if size < 1 << 20:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1 << 20):.1f} MiB"
