"""Input feeds for each batch size, checked against the model's signature.

Feeds come from example inputs (rows repeated to the batch size) or, for a model file alone,
from random data shaped by the signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from workbench.artifact import Artifact, TensorSpec


@dataclass(frozen=True)
class Feeds:
    """Makes the feeds for a batch size; every runtime of a sweep gets the very same arrays."""

    examples: dict[str, np.ndarray]
    batch_dynamic: bool

    def __call__(self, batch_size: int) -> dict[str, np.ndarray]:
        import numpy as np

        feeds = {}
        for name, example in self.examples.items():
            if example.ndim == 0 or example.shape[0] == batch_size:
                feeds[name] = example
                continue
            if not self.batch_dynamic:
                raise InputError(
                    f"Input {name!r} has a fixed batch of {example.shape[0]}, so batch size "
                    f"{batch_size} cannot run; export with dynamic_batch=True to sweep batch sizes."
                )
            rows = np.arange(batch_size) % example.shape[0]
            feeds[name] = np.ascontiguousarray(example[rows])
        return feeds


def from_examples(artifact: Artifact, examples: Mapping[str, Any]) -> Feeds:
    """Feeds from named example arrays, after checking them against the artifact's inputs."""
    import numpy as np

    arrays = {name: np.ascontiguousarray(np.asarray(value)) for name, value in examples.items()}
    specs = {spec.name: spec for spec in artifact.inputs}
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise InputError(
            f"The model {artifact.name} expects inputs {_signature(artifact.inputs)}, but no value "
            f"was given for {', '.join(map(repr, missing))}."
        )
    for name, spec in specs.items():
        check_input(artifact.name, spec, arrays[name])
    return Feeds(arrays, artifact.batch_is_dynamic)


def from_values(artifact: Artifact, values: Any) -> Feeds:
    """Accept a dict of name to array, a sequence in input order, or one array."""
    import numpy as np

    if isinstance(values, Mapping):
        return from_examples(artifact, values)
    if isinstance(values, np.ndarray) or hasattr(values, "__array__"):
        values = [values]
    if isinstance(values, Sequence) and not isinstance(values, str):
        if len(values) != len(artifact.inputs):
            raise InputError(
                f"The model {artifact.name} has {len(artifact.inputs)} inputs "
                f"({_signature(artifact.inputs)}); {len(values)} values were given."
            )
        return from_examples(
            artifact, dict(zip((s.name for s in artifact.inputs), values, strict=True))
        )
    raise InputError(
        f"inputs must be a dict of input name to array, a list of arrays in input order, or one "
        f"array; got a {type(values).__name__}."
    )


def random_feeds(artifact: Artifact, dims: Mapping[str, int] | None = None, seed: int = 0) -> Feeds:
    """Random inputs shaped by the signature; symbolic dims other than the batch need ``dims``."""
    import numpy as np

    generator = np.random.default_rng(seed)
    arrays = {}
    for spec in artifact.inputs:
        shape = [_size(artifact, spec, index, dim, dims) for index, dim in enumerate(spec.shape)]
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            arrays[spec.name] = generator.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            arrays[spec.name] = generator.integers(0, 2, shape).astype(dtype)
        else:
            # NOTE: small non-negative integers are valid indices for embeddings and gathers.
            arrays[spec.name] = generator.integers(0, 2, shape).astype(dtype)
    return Feeds(arrays, artifact.batch_is_dynamic)


def _size(artifact: Artifact, spec: TensorSpec, index: int, dim: Any, dims: Any) -> int:
    if isinstance(dim, int):
        return dim
    if index == 0:
        return 1
    if dims and dim in dims:
        return int(dims[dim])
    raise InputError(
        f"Input {spec.name!r} of {artifact.name} has a dimension {dim or '?'} of unknown size at "
        f"position {index}; pass inputs=... with real data, or dims={{{(dim or 'name')!r}: N}}."
    )


def check_input(model: str, spec: TensorSpec, value: np.ndarray) -> None:
    """One sentence naming the input and what was expected, for a wrong dtype, rank or size."""
    expected = (
        f"expected {spec.dtype}[{', '.join('?' if d is None else str(d) for d in spec.shape)}]"
    )
    if value.dtype.name != spec.dtype:
        raise InputError(
            f"Input {spec.name!r} of {model} has dtype {value.dtype.name}; {expected}."
        )
    if value.ndim != len(spec.shape):
        raise InputError(
            f"Input {spec.name!r} of {model} has shape {value.shape} ({value.ndim} dimensions); "
            f"{expected}."
        )
    for index, (size, want) in enumerate(zip(value.shape, spec.shape, strict=True)):
        if isinstance(want, int) and size != want:
            raise InputError(
                f"Input {spec.name!r} of {model} has size {size} in dimension {index}; {expected}."
            )


def _signature(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(str(spec) for spec in specs)


def feeds_for(
    artifact: Artifact, inputs: Any = None, dims: Mapping[str, int] | None = None
) -> Feeds:
    """The inputs given, else the examples an exported artifact carries, else random data."""
    if inputs is not None:
        return from_values(artifact, inputs)
    examples = getattr(artifact, "_example_feeds", None)
    if examples is not None:
        return from_examples(artifact, examples)
    return random_feeds(artifact, dims)
