"""The user's data as batches of feeds, checked against the model's inputs.

``data`` may be one array (a model with one input), a dict of input name to array, a list of
arrays in input order, or a list of such dicts already cut in batches. Torch tensors are turned
into numpy arrays. A wrong dtype, rank or size names the input and the shape expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.bench.feeds import check_input, feeds_for
from workbench.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from workbench.artifact import Artifact

EVAL_BATCH = 64
GUARD_SAMPLES = 64
CALIBRATION_SAMPLES = 256


@dataclass(frozen=True)
class Dataset:
    """Batches of feeds and, when given, the labels of their samples in the same order."""

    batches: tuple[dict[str, np.ndarray], ...]
    labels: np.ndarray | None
    samples: int
    from_user: bool

    def head(self, samples: int) -> list[dict[str, np.ndarray]]:
        """The first batches holding about ``samples`` samples."""
        chosen, count = [], 0
        for batch in self.batches:
            if count >= samples:
                break
            chosen.append(batch)
            count += _rows(batch)
        return chosen


def dataset(artifact: Artifact, data: Any = None, labels: Any = None) -> Dataset:
    """The user's data in batches; without data, the artifact's examples or random inputs."""
    import numpy as np

    if data is None:
        if labels is not None:
            raise InputError("labels were given without data=...; pass the inputs they label.")
        feeds = feeds_for(artifact)
        batch = 2 if artifact.batch_is_dynamic else _fixed_batch(artifact) or 1
        return Dataset((feeds(batch),), None, batch, from_user=False)
    if isinstance(data, Sequence) and data and all(isinstance(x, Mapping) for x in data):
        batches = tuple(_checked(artifact, item) for item in data)
        given = sum(_rows(batch) for batch in batches)
    else:
        arrays = _checked(artifact, _named(artifact, data))
        given = _rows(arrays)
        batches = _cut(artifact, arrays)
    samples = sum(_rows(batch) for batch in batches)
    if samples == 0:
        raise InputError(f"data holds no samples for {artifact.name}; give at least one.")
    label_array = None
    if labels is not None:
        label_array = np.asarray(_numpy(labels))
        if label_array.ndim == 0 or len(label_array) != given:
            count = "a single value" if label_array.ndim == 0 else f"{len(label_array)} labels"
            raise InputError(
                f"labels hold {count} for {given} samples of data; give one label per sample, "
                "in the same order."
            )
        # A model that takes a fixed batch leaves out the samples of a last, partial batch.
        label_array = label_array[:samples]
    return Dataset(batches, label_array, samples, from_user=True)


def _named(artifact: Artifact, data: Any) -> dict[str, Any]:
    names = [spec.name for spec in artifact.inputs]
    if isinstance(data, Mapping):
        missing = [name for name in names if name not in data]
        if missing:
            raise InputError(
                f"data has no value for input {missing[0]!r} of {artifact.name}; expected a dict "
                f"with the inputs {', '.join(map(repr, names))}."
            )
        return {name: data[name] for name in names}
    if isinstance(data, list | tuple):
        if len(data) != len(names):
            raise InputError(
                f"data gives {len(data)} arrays, but {artifact.name} has {len(names)} inputs "
                f"({', '.join(map(repr, names))})."
            )
        return dict(zip(names, data, strict=True))
    if len(names) != 1:
        raise InputError(
            f"{artifact.name} has {len(names)} inputs ({', '.join(map(repr, names))}); give data "
            "as a dict of input name to array."
        )
    return {names[0]: data}


def _checked(artifact: Artifact, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    import numpy as np

    specs = {spec.name: spec for spec in artifact.inputs}
    arrays = {}
    for name, spec in specs.items():
        if name not in values:
            raise InputError(f"A batch of data has no value for input {name!r} of {artifact.name}.")
        array = np.ascontiguousarray(_numpy(values[name]))
        check_input(artifact.name, spec, array)
        arrays[name] = array
    sizes = {array.shape[0] for array in arrays.values() if array.ndim}
    if len(sizes) > 1:
        raise InputError(
            f"The inputs of {artifact.name} in data have different numbers of samples "
            f"({sorted(sizes)}); give every input the same first dimension."
        )
    return arrays


def _cut(artifact: Artifact, arrays: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], ...]:
    rows = _rows(arrays)
    if rows == 0:
        return ()
    step = EVAL_BATCH if artifact.batch_is_dynamic else (_fixed_batch(artifact) or rows)
    usable = rows - rows % step if not artifact.batch_is_dynamic else rows
    if usable == 0:
        raise InputError(
            f"{artifact.name} takes a fixed batch of {step}, and data holds only {rows} samples."
        )
    return tuple(
        {name: array[start : start + step] for name, array in arrays.items()}
        for start in range(0, usable, step)
    )


def _rows(batch: Mapping[str, Any]) -> int:
    first = next(iter(batch.values()), None)
    return int(first.shape[0]) if first is not None and getattr(first, "ndim", 0) else 1


def _fixed_batch(artifact: Artifact) -> int | None:
    shape = artifact.inputs[0].shape if artifact.inputs else ()
    return shape[0] if shape and isinstance(shape[0], int) else None


def _numpy(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    return value
