"""The small interface every runtime implements.

A runtime is asked whether it is available, then loads a model into a session that runs
feeds. Loading happens in a worker process; only `available` and `check_options` run in the
caller, and neither imports the engine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.errors import RuntimeNotAvailableError, UnknownRuntimeError

if TYPE_CHECKING:
    import numpy as np

    from workbench.artifact import Artifact


@dataclass(frozen=True)
class Availability:
    """Whether a runtime can run here, and if not, why and how to install it."""

    ok: bool
    version: str = ""
    reason: str = ""
    install: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeConfig:
    """A runtime name plus its options, e.g. ``onnxruntime:provider=cpu,opt=basic``."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str | RuntimeConfig) -> RuntimeConfig:
        if isinstance(text, RuntimeConfig):
            return text
        if not isinstance(text, str) or not text.strip():
            raise UnknownRuntimeError(
                f"A runtime must be named by a string such as 'onnxruntime' or "
                f"'onnxruntime:opt=basic'; got {text!r}."
            )
        name, _, rest = text.strip().partition(":")
        options = []
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise UnknownRuntimeError(
                    f"The runtime option {item!r} in {text!r} is not of the form key=value, as "
                    "in 'onnxruntime:provider=cpu,opt=all'."
                )
            options.append((key.strip().lower(), value.strip()))
        return cls(name.strip().lower(), tuple(sorted(options)))

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.options)

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class ModelRef:
    """What a worker needs to load a model: the artifact and, for eager runtimes, the module."""

    artifact: Artifact
    framework_path: str | None = None
    framework_kwargs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SessionInfo:
    """What a loaded session actually uses, as opposed to what was asked for."""

    provider: str
    threads: int | None
    details: dict[str, Any] = field(default_factory=dict)


class Session(ABC):
    """A model loaded into one engine."""

    info: SessionInfo

    @abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run once and return the outputs as numpy arrays, in the model's output order."""

    def bind(self, feeds: Mapping[str, np.ndarray]) -> Callable[[], object]:
        """A zero-argument call that runs the feeds, for the timing loop.

        Sessions override it to move conversions out of the timed call.
        """
        return lambda: self.run(feeds)

    def close(self) -> None:
        """Release the engine's resources; most engines free them on garbage collection."""
        return


class Runtime(ABC):
    """An engine that can run a model."""

    name: str = ""
    description: str = ""
    module: str = ""
    distributions: tuple[str, ...] = ()
    install: str = ""
    option_names: tuple[str, ...] = ()
    option_choices: dict[str, tuple[str, ...]] = {}  # noqa: RUF012 - read-only class table
    needs_framework_model: bool = False
    in_default_sweep: bool = True

    def available(self) -> Availability:
        """Cheap check that the engine's package is installed; imports nothing."""
        return package_availability(self.module, self.distributions, self.install)

    def check_options(self, config: RuntimeConfig) -> None:
        """Refuse options this runtime does not know, in the caller, before any worker starts."""
        for key, value in config.options:
            if key not in self.option_names:
                known = ", ".join(self.option_names) or "none"
                raise UnknownRuntimeError(
                    f"The runtime {self.name!r} has no option {key!r}; its options are: "
                    f"{known}, plus threads through the threads argument."
                )
            choices = self.option_choices.get(key)
            if choices and value not in choices:
                raise UnknownRuntimeError(
                    f"The {self.name} option {key} takes one of {', '.join(choices)}; "
                    f"got {value!r}."
                )

    def probe(self) -> Availability:
        """Full check in a worker process: import the engine, list providers or devices."""
        return self.available()

    @abstractmethod
    def load(self, model: ModelRef, config: RuntimeConfig, threads: int | None) -> Session:
        """Load the model; runs inside a worker process."""


def package_availability(module: str, distributions: tuple[str, ...], install: str) -> Availability:
    """Installed or not, by the import system's search alone; nothing is imported."""
    if not module:
        return Availability(ok=True)
    if importlib.util.find_spec(module) is None:
        return Availability(
            ok=False, reason=f"the Python module {module} is not installed", install=install
        )
    for distribution in distributions or (module,):
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        return Availability(
            ok=True, version=version, install=install, details={"distribution": distribution}
        )
    return Availability(ok=True, install=install)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeNotAvailableError(message)
