"""The exceptions and warnings the workbench raises.

Every message is a whole sentence that names the thing at fault, what was expected, and what to
do about it.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class ModelFileError(WorkbenchError, ValueError):
    """A model file is missing, is not ONNX, or points outside its own folder."""


class ExportError(WorkbenchError):
    """A framework model could not be turned into ONNX."""


class InputError(WorkbenchError, ValueError):
    """Inputs do not match what the model expects."""


class RuntimeNotAvailableError(WorkbenchError):
    """A runtime or one of its execution providers is not installed or not usable here."""


class UnknownRuntimeError(WorkbenchError, KeyError):
    """A runtime name that no registered runtime answers to."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WorkerError(WorkbenchError):
    """A worker process could not be started or broke the protocol."""


class WorkbenchWarning(UserWarning):
    """Something the user should know that does not stop the work."""


class StoreError(WorkbenchError):
    """The store file cannot be opened, read or written."""
