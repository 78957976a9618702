"""Let a subpackage answer calls, for the two verbs that share a name with a folder.

``workbench.runtimes()`` and ``workbench.inspect(...)`` are verbs of the API, and
``workbench/runtimes/`` and ``workbench/inspect/`` are folders of the architecture. Once Python
imports such a folder it sets the package attribute to the module, hiding a function of the
same name. Making the module itself callable keeps both meanings working in any import order.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


def make_callable(module_name: str, target: str) -> None:
    """Calling the module ``module_name`` calls ``target`` ("package.module:function")."""
    where, _, name = target.partition(":")

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(where), name)(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
