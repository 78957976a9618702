"""Look inside an ONNX model: signature, operators, parameters, FLOPs and the graph itself.

Importing this package is cheap; onnx is imported only when a model is inspected.
"""

from workbench._callable import make_callable
from workbench.inspect.summary import Summary, inspect

__all__ = ["Summary", "inspect"]

# NOTE: workbench.inspect(model) still inspects after this folder has been imported.
make_callable(__name__, "workbench.inspect.summary:inspect")
