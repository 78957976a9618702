"""PyTorch eager execution in inference mode: the reference the other engines are judged by."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.runtimes.base import (
    Availability,
    ModelRef,
    Runtime,
    RuntimeConfig,
    Session,
    SessionInfo,
    require,
)

if TYPE_CHECKING:
    import numpy as np


class TorchEager(Runtime):
    name = "torch"
    description = "PyTorch eager mode, inference_mode (the reference)"
    module = "torch"
    distributions = ("torch",)
    install = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    option_names = ("device",)
    option_choices = {"device": ("cpu", "cuda")}  # noqa: RUF012 - read-only class table
    needs_framework_model = True

    def probe(self) -> Availability:
        import torch

        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        return Availability(
            ok=True, version=torch.__version__, install=self.install, details={"devices": devices}
        )

    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        import cloudpickle
        import torch

        device = config.option("device", "cpu") or "cpu"
        require(device in ("cpu", "cuda"), f"torch runs on device cpu or cuda, not {device!r}.")
        require(
            device != "cuda" or torch.cuda.is_available(),
            "torch was asked for device cuda, but no CUDA device is usable here; the devices "
            "available are: cpu.",
        )
        require(
            model.framework_path is not None,
            "The torch runtime needs the PyTorch model itself; benchmark the model (or an "
            "artifact made by workbench.export in this session) rather than a loaded file.",
        )
        if threads:
            torch.set_num_threads(threads)
        with open(model.framework_path, "rb") as handle:  # type: ignore[arg-type]
            module = cloudpickle.load(handle)
        module = module.eval().to(device)
        return _TorchSession(module, device, model.framework_kwargs)


class _TorchSession(Session):
    def __init__(self, module: Any, device: str, keyword_inputs: tuple[str, ...]) -> None:
        import torch

        self._module = module
        self._device = device
        self._keywords = keyword_inputs
        self.info = SessionInfo(
            provider=device, threads=torch.get_num_threads(), details={"torch": torch.__version__}
        )

    def _arguments(self, feeds: Mapping[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
        import torch

        tensors = {name: torch.from_numpy(value).to(self._device) for name, value in feeds.items()}
        args = [tensor for name, tensor in tensors.items() if name not in self._keywords]
        kwargs = {name: tensors[name] for name in self._keywords if name in tensors}
        return args, kwargs

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        args, kwargs = self._arguments(feeds)
        with torch.inference_mode():
            outputs = self._module(*args, **kwargs)
        return [leaf.detach().cpu().numpy() for leaf in flatten_outputs(outputs)]

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        import torch

        args, kwargs = self._arguments(feeds)
        module = self._module
        synchronize = torch.cuda.synchronize if self._device == "cuda" else None

        def call() -> object:
            with torch.inference_mode():
                result = module(*args, **kwargs)
            if synchronize is not None:
                synchronize()
            return result

        return call


def flatten_outputs(outputs: Any) -> list[Any]:
    """Tensors of a (possibly nested) output structure, in the order ONNX exporters use."""
    import torch

    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Mapping):
        return [leaf for value in outputs.values() for leaf in flatten_outputs(value)]
    if isinstance(outputs, list | tuple):
        return [leaf for value in outputs for leaf in flatten_outputs(value)]
    if outputs is None:
        return []
    raise TypeError(f"model output of type {type(outputs).__name__} holds no tensors")
