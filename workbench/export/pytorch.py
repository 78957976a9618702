"""Export a ``torch.nn.Module`` to an ONNX file with torch.onnx.

The dynamo exporter is tried first; when it fails, the TorchScript exporter, and the reason is
kept. The file appears at its path only once it is complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ExportError, InputError, WorkbenchWarning
from workbench.export.diagnose import explain_failure, first_line

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

BATCH_DIM = "batch"


@dataclass(frozen=True)
class ExampleInputs:
    """Example inputs normalised to positional tensors or keyword tensors, with their names."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    names: tuple[str, ...]

    @property
    def tensors(self) -> list[Any]:
        return [*self.args, *self.kwargs.values()]


@dataclass(frozen=True)
class ExportOutcome:
    exporter: str
    fallback_reason: str
    input_names: tuple[str, ...]


def normalize_inputs(model: Any, example_inputs: Any) -> ExampleInputs:
    """Accept a tensor, a tuple or list of tensors, or a dict of name to tensor."""
    import torch

    if isinstance(example_inputs, torch.Tensor):
        args: tuple[Any, ...] = (example_inputs,)
        kwargs: dict[str, Any] = {}
    elif isinstance(example_inputs, Sequence) and not isinstance(example_inputs, str):
        args, kwargs = tuple(example_inputs), {}
    elif isinstance(example_inputs, Mapping):
        args, kwargs = (), dict(example_inputs)
    else:
        raise InputError(
            "example_inputs must be a tensor, a tuple or list of tensors, or a dict of name to "
            f"tensor; got a {type(example_inputs).__name__}."
        )
    for where, value in [*enumerate(args), *kwargs.items()]:
        if not isinstance(value, torch.Tensor):
            raise InputError(
                f"example_inputs[{where!r}] is a {type(value).__name__}; every example input must "
                "be a torch.Tensor (the workbench exports tensor inputs only)."
            )
    names = tuple(_argument_names(model, len(args))) + tuple(kwargs)
    return ExampleInputs(args, kwargs, names)


def _argument_names(model: Any, count: int) -> list[str]:
    """Names of the positional inputs, as the exporters name the ONNX inputs.

    ``forward(self, x, *rest)`` called with three tensors gives ``x, rest_0, rest_1``.
    """
    import inspect

    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = [
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) >= count:
        return positional[:count]
    variadic = [p.name for p in parameters if p.kind == p.VAR_POSITIONAL]
    if variadic:
        return positional + [f"{variadic[0]}_{i}" for i in range(count - len(positional))]
    return [f"input_{i}" for i in range(count)]


def _batch_shapes(model: Any, inputs: ExampleInputs, batch: Any) -> dict[str, Any]:
    """``dynamic_shapes`` for torch.export: keyed by forward's parameters, as it requires."""
    import inspect

    try:
        bound = inspect.signature(model.forward).bind(*inputs.args, **inputs.kwargs)
    except (TypeError, ValueError):
        return {name: {0: batch} for name in inputs.names}
    shapes: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        if isinstance(value, tuple):  # *args
            shapes[name] = tuple({0: batch} for _ in value)
        elif isinstance(value, dict):  # **kwargs
            shapes[name] = {key: {0: batch} for key in value}
        else:
            shapes[name] = {0: batch}
    return shapes


def run_eager(model: torch.nn.Module, inputs: ExampleInputs) -> Any:
    """Run the model once; an error here is about the inputs, so say what forward expects."""
    import inspect

    import torch

    try:
        with torch.inference_mode():
            return model(*inputs.args, **inputs.kwargs)
    except Exception as exc:  # noqa: BLE001 - whatever forward raised, the inputs are the cause
        try:
            expected = f"forward{inspect.signature(model.forward)}"
        except (TypeError, ValueError):
            expected = "its forward signature"
        shapes = ", ".join(f"{n}: {tuple(t.shape)} {t.dtype}" for n, t in _named(inputs))
        raise InputError(
            f"{type(model).__name__} failed on the example inputs ({shapes}) with "
            f"{type(exc).__name__}: {first_line(exc)}; the model expects {expected}."
        ) from None


def export_to_file(
    model: torch.nn.Module,
    inputs: ExampleInputs,
    path: Path,
    *,
    dynamic_batch: bool,
    opset: int | None,
) -> ExportOutcome:
    """Write the model to ``path`` atomically; return which exporter made it and why."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".workbench-export-", dir=path.parent))
    try:
        staged = staging / path.name
        outcome = _export_with_fallback(model, inputs, staged, dynamic_batch, opset)
        _move_into_place(staging, staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return outcome


def _export_with_fallback(
    model: Any, inputs: ExampleInputs, target: Path, dynamic_batch: bool, opset: int | None
) -> ExportOutcome:
    try:
        _export_dynamo(model, inputs, target, dynamic_batch, opset)
        return ExportOutcome("dynamo", "", inputs.names)
    except Exception as dynamo_error:  # noqa: BLE001 - any exporter failure triggers the fallback
        reason = f"{type(dynamo_error).__name__}: {first_line(dynamo_error)}"
        log.warning("the dynamo exporter failed (%s); trying the TorchScript exporter", reason)
        for leftover in target.parent.iterdir():
            leftover.unlink()
        try:
            _export_torchscript(model, inputs, target, dynamic_batch, opset)
        except Exception as script_error:  # noqa: BLE001 - turned into one explained error
            raise ExportError(
                explain_failure(type(model).__name__, opset, dynamo_error, script_error)
            ) from None
        return ExportOutcome("torchscript", reason, inputs.names)


def _export_dynamo(
    model: Any, inputs: ExampleInputs, target: Path, dynamic_batch: bool, opset: int | None
) -> None:
    import torch
    from torch.export import Dim

    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = _batch_shapes(model, inputs, Dim(BATCH_DIM))
        inputs = _without_batch_of_one(inputs)
    with _quiet_torch():
        program = torch.onnx.export(
            model,
            inputs.args,
            kwargs=inputs.kwargs or None,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            verbose=False,
        )
        program.save(str(target))


def _without_batch_of_one(inputs: ExampleInputs) -> ExampleInputs:
    """Examples of batch 1 traced as batch 2.

    NOTE: torch.export takes a size of 1 for a constant, so a model traced on one sample often
    fails to keep its batch dynamic; tracing on the sample twice over avoids that. Parity still
    runs on the examples as given.
    """
    import torch

    def doubled(value: Any) -> Any:
        if value.ndim and value.shape[0] == 1:
            return torch.cat([value, value])
        return value

    if not any(t.ndim and t.shape[0] == 1 for t in inputs.tensors):
        return inputs
    return ExampleInputs(
        tuple(doubled(t) for t in inputs.args),
        {name: doubled(t) for name, t in inputs.kwargs.items()},
        inputs.names,
    )


def _export_torchscript(
    model: Any, inputs: ExampleInputs, target: Path, dynamic_batch: bool, opset: int | None
) -> None:
    import torch

    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {name: {0: BATCH_DIM} for name in inputs.names}
    arguments = (*inputs.args, inputs.kwargs) if inputs.kwargs else inputs.args
    with _quiet_torch():
        torch.onnx.export(
            model,
            arguments,
            str(target),
            dynamo=False,
            input_names=list(inputs.names),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
        )
    if dynamic_batch:
        _mark_output_batch(target)


def _mark_output_batch(target: Path) -> None:
    """The TorchScript exporter leaves output batch dims unnamed; name them like the inputs."""
    import onnx

    proto = onnx.load(str(target), load_external_data=False)
    for output in proto.graph.output:
        dims = output.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = BATCH_DIM
    onnx.save(proto, str(target))


def _move_into_place(staging: Path, staged: Path, path: Path) -> None:
    # NOTE: external data files move first and the model file last, each with os.replace, so
    # the model never appears at its path before its weights do.
    for produced in staging.iterdir():
        if produced != staged:
            os.replace(produced, path.parent / produced.name)
    os.replace(staged, path)


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """Silence the exporters' chatter: we report the outcome ourselves, once.

    A failed dynamo export logs whole tracebacks at error level before it raises; the exception
    itself reaches the user as one sentence, or as the recorded reason for the fallback.
    """
    noisy = [logging.getLogger("torch")] + [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if name.startswith("torch") and isinstance(logger, logging.Logger)
    ]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*training mode.*")
            # Every input shares the one "batch" dimension, which the dynamo exporter remarks on.
            warnings.filterwarnings("ignore", message=".*axis name: .* will not be used.*")
            yield
    finally:
        for logger, level in zip(noisy, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Export in eval mode; a model that was training is warned about and restored afterwards."""
    was_training = model.training
    if was_training:
        warnings.warn(
            f"{type(model).__name__} was in training mode; it is exported in eval mode (dropout "
            "off, batch norm on running statistics) and switched back to training afterwards.",
            WorkbenchWarning,
            stacklevel=4,
        )
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _named(inputs: ExampleInputs) -> Iterator[tuple[str, Any]]:
    return zip(inputs.names, inputs.tensors, strict=True)
