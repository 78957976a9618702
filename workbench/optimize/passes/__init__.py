"""The passes, by name. Each module wraps one tool; this table is how chains find them."""

from __future__ import annotations

from workbench.errors import InputError
from workbench.optimize.passes import fp16, fusion, int8_dynamic, int8_static, ort_graph, slim
from workbench.optimize.passes.base import ModelFacts, NotApplicable, Pass

__all__ = [
    "PASSES",
    "ModelFacts",
    "NotApplicable",
    "Pass",
    "get",
    "parse_chain",
    "register",
    "unregister",
]

PASSES: dict[str, Pass] = {
    step.name: step
    for module in (ort_graph, slim, fusion, fp16, int8_dynamic, int8_static)
    for step in module.PASSES
}


def register(step: Pass) -> Pass:
    """Add a pass of another package; its ``function`` must be importable in a worker."""
    if not isinstance(step, Pass):
        raise InputError(f"register() takes a Pass; got a {type(step).__name__}.")
    if "+" in step.name or step.name == "fp32" or not step.name.strip():
        raise InputError(
            f"A pass name cannot be empty, contain '+' or be 'fp32'; got {step.name!r}."
        )
    if step.name in PASSES and PASSES[step.name] is not step:
        raise InputError(f"A pass named {step.name!r} is registered already.")
    PASSES[step.name] = step
    return step


def unregister(name: str) -> None:
    PASSES.pop(name, None)


def get(name: str) -> Pass:
    try:
        return PASSES[name]
    except KeyError:
        raise InputError(
            f"There is no pass named {name!r}; the passes are {', '.join(PASSES)}, chained with "
            "'+' as in 'ort-all+int8-dynamic'."
        ) from None


def parse_chain(chain: str) -> tuple[Pass, ...]:
    """``"ort-all+int8-dynamic"`` as its passes, in order; ``"fp32"`` is the empty chain."""
    if not isinstance(chain, str) or not chain.strip():
        raise InputError(
            f"A chain is pass names joined by '+', such as 'slim+fp16'; got {chain!r}."
        )
    text = chain.strip()
    if text == "fp32":
        return ()
    steps = tuple(get(part.strip()) for part in text.split("+"))
    if len({step.name for step in steps}) != len(steps):
        raise InputError(f"The chain {chain!r} names a pass twice.")
    return steps
