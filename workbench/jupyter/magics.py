"""The ``%wb`` line magic: the API's verbs for a notebook cell.

The line is parsed like a shell command and never evaluated: ``{...}`` and ``$name`` stay
literal, and only plain names are looked up, first in the calling function's scope, then in
the notebook's namespace.
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, needs_local_scope, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser
from IPython.display import display

from workbench._arguments import add_dims, add_sweep, parse_dims
from workbench.errors import InputError
from workbench.jupyter.display import show_figure

VERBS = ("export", "inspect", "bench", "optimize", "autotune", "runtimes", "help")


class _Parser(MagicArgumentParser):
    """Bad arguments become a UsageError that shows the usage line first."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{_usage(self)}\n%{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            self.error(message)
        raise _HelpShown


class _HelpShown(Exception):  # noqa: N818 - a signal, not an error
    """-h was given; argparse printed the help and the magic returns nothing."""


def _usage(parser: argparse.ArgumentParser) -> str:
    # IPython's help formatter opens the usage with a reST "::" marker; a message needs none.
    return parser.format_usage().replace("::", "", 1).strip()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wb", add_help=True, description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    verbs.required = True

    export = verbs.add_parser("export", help="export a torch model, check parity", add_help=True)
    export.add_argument("model", help="name of a torch.nn.Module in the notebook")
    export.add_argument("inputs", help="name of its example inputs (a tensor, tuple or dict)")
    export.add_argument("-o", "--output", metavar="PATH", help="where to write the .onnx file")
    export.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    export.add_argument("--static", action="store_true", help="fix the batch size")

    summary = verbs.add_parser("inspect", help="summarise a model", add_help=True)
    summary.add_argument("target", help="an Artifact's name or an .onnx path")
    add_dims(summary)

    bench = verbs.add_parser("bench", help="benchmark on several runtimes", add_help=True)
    bench.add_argument("target", help="an Artifact, a torch model or an .onnx path")
    bench.add_argument("inputs", nargs="?", help="example inputs, for a torch model")
    add_sweep(bench, budget_s=1.0)
    bench.add_argument(
        "-o",
        dest="return_results",
        action="store_true",
        help="return the Results object, as %%timeit -o does",
    )
    bench.add_argument(
        "-q", dest="quiet", action="store_true", help="no progress bar, table or plots"
    )

    optimize = verbs.add_parser("optimize", help="make variants by chains of passes", add_help=True)
    optimize.add_argument("target", help="an Artifact, a torch model or an .onnx path")
    optimize.add_argument("inputs", nargs="?", help="example inputs, for a torch model")
    optimize.add_argument(
        "-p",
        "--passes",
        nargs="+",
        metavar="CHAIN",
        help="chains such as ort-all slim+fp16 int8-dynamic (default: every pass)",
    )
    _add_task(optimize)
    optimize.add_argument("-q", dest="quiet", action="store_true", help="no progress bar")

    tune = verbs.add_parser(
        "autotune", help="search passes, runtimes and threads for the best", add_help=True
    )
    tune.add_argument("target", help="an Artifact, a torch model or an .onnx path")
    tune.add_argument("inputs", nargs="?", help="example inputs, for a torch model")
    _add_task(tune)
    tune.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        metavar="X",
        help="largest metric drop from fp32 to accept (default: 0.01)",
    )
    tune.add_argument(
        "--budget", type=float, default=60.0, metavar="SECONDS", help="measuring time in all"
    )
    tune.add_argument("-b", "--batch-size", type=int, default=1, metavar="N", dest="batch_size")
    tune.add_argument("-t", "--threads", nargs="+", type=int, metavar="N", help="thread counts")
    tune.add_argument(
        "-r", "--runtime", action="append", dest="runtimes", metavar="RUNTIME", help="repeatable"
    )
    tune.add_argument(
        "-q", dest="quiet", action="store_true", help="no progress bar, table or plots"
    )

    listing = verbs.add_parser("runtimes", help="engines, versions and providers", add_help=True)
    listing.add_argument("--no-probe", action="store_true", help="do not import the engines")

    helper = verbs.add_parser("help", help="help on one verb", add_help=True)
    helper.add_argument("topic", nargs="?", choices=VERBS[:-1], help="a verb")
    return parser


def _add_task(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="NAME", help="samples of the task (calibration, metric)")
    parser.add_argument("--labels", metavar="NAME", help="their labels")
    parser.add_argument(
        "--metric",
        metavar="METRIC",
        help="accuracy, agreement, cosine, or the name of a function metric(outputs, labels)",
    )


_PARSER = build_parser()


@magics_class
class WorkbenchMagics(Magics):
    @no_var_expand
    @needs_local_scope
    @line_magic
    def wb(self, line: str, local_ns: dict[str, Any] | None = None) -> Any:
        try:
            args, extra = _PARSER.parse_argstring(line, partial=True)
            if extra:
                _verb_parser(args.verb).error(f"unrecognized arguments: {' '.join(extra)}")
        except _HelpShown:
            return None
        except ValueError as error:  # unbalanced quotes
            raise UsageError(f"{_usage(_PARSER)}\n%wb: error: {error}") from None
        scope = _Scope(local_ns or {}, self.shell.user_ns if self.shell else {})
        return getattr(self, f"_{args.verb}")(args, scope)

    def _export(self, args: argparse.Namespace, scope: _Scope) -> Any:
        import workbench

        model = scope.value(args.model, "a torch.nn.Module")
        inputs = scope.value(args.inputs, "example inputs (a tensor, a tuple or a dict)")
        return workbench.export(
            model, inputs, args.output, dynamic_batch=not args.static, opset=args.opset
        )

    def _inspect(self, args: argparse.Namespace, scope: _Scope) -> Any:
        import workbench

        try:
            dims = parse_dims(args.dims)
        except InputError as error:
            raise UsageError(str(error)) from None
        return workbench.inspect(scope.target(args.target), dims=dims)

    def _bench(self, args: argparse.Namespace, scope: _Scope) -> Any:
        import workbench

        target = scope.target(args.target)
        inputs = scope.value(args.inputs, "example inputs") if args.inputs else None
        results = workbench.benchmark(
            target,
            inputs,
            runtimes=args.runtimes,
            batch_sizes=args.batch_sizes,
            threads=args.threads or (None,),
            budget_s=args.budget,
            progress=not args.quiet,
        )
        if not args.quiet:
            display(results)
            plots = results.plot()
            for figure in plots if isinstance(plots, list) else [plots]:
                show_figure(figure)
        return results if args.return_results else None

    def _optimize(self, args: argparse.Namespace, scope: _Scope) -> Any:
        import workbench

        target = scope.target(args.target)
        inputs = scope.value(args.inputs, "example inputs") if args.inputs else None
        return workbench.optimize(
            target,
            args.passes,
            example_inputs=inputs,
            progress=not args.quiet,
            **_task(args, scope),
        )

    def _autotune(self, args: argparse.Namespace, scope: _Scope) -> Any:
        import workbench

        target = scope.target(args.target)
        inputs = scope.value(args.inputs, "example inputs") if args.inputs else None
        tuning = workbench.autotune(
            target,
            inputs,
            max_drop=args.max_drop,
            budget_s=args.budget,
            batch_size=args.batch_size,
            threads=args.threads,
            runtimes=args.runtimes,
            progress=not args.quiet,
            **_task(args, scope),
        )
        if not args.quiet:
            show_figure(tuning.plot())
            show_figure(tuning.waterfall())
        return tuning

    def _runtimes(self, args: argparse.Namespace, scope: _Scope) -> Any:
        import workbench

        return workbench.runtimes(probe=not args.no_probe)

    def _help(self, args: argparse.Namespace, scope: _Scope) -> None:
        if args.topic is None:
            print(_PARSER.format_help())
            return
        print(_verb_parser(args.topic).format_help())


WorkbenchMagics.wb.__doc__ = (
    _PARSER.format_help() + "\nExamples:\n  artifact = %wb export model x -o model.onnx\n"
    "  %wb inspect artifact\n  results = %wb bench artifact -b 1 32 --budget 0.5 -o\n"
    "  variants = %wb optimize artifact -p ort-all int8-dynamic --data x_val\n"
    "  tuning = %wb autotune artifact --data x_val --labels y_val --max-drop 0.01\n"
    "  %wb runtimes\n  %wb help bench\n"
)


def _task(args: argparse.Namespace, scope: _Scope) -> dict[str, Any]:
    """data, labels and metric of the optimize and autotune verbs, from the notebook."""
    from workbench.optimize.metrics import NAMES

    found: dict[str, Any] = {}
    if args.data:
        found["data"] = scope.value(args.data, "the task's samples (an array or a dict)")
    if args.labels:
        found["labels"] = scope.value(args.labels, "the labels of the samples")
    if args.metric:
        known = args.metric in NAMES
        found["metric"] = args.metric if known else scope.value(args.metric, "a metric function")
    return found


def _verb_parser(verb: str) -> argparse.ArgumentParser:
    for action in _PARSER._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[verb]
    return _PARSER


class _Scope:
    """Plain names from the calling function's scope, then from the notebook's namespace."""

    def __init__(self, local_ns: dict[str, Any], user_ns: dict[str, Any]) -> None:
        self._local = local_ns
        self._user = user_ns

    def value(self, name: str, expected: str) -> Any:
        if not name.isidentifier():
            raise UsageError(
                f"%wb takes plain variable names; {name!r} is not one (expected the name of "
                f"{expected}). Assign it to a variable first."
            )
        for namespace in (self._local, self._user):
            if name in namespace:
                return namespace[name]
        raise UsageError(f"There is no variable {name!r} in this notebook; expected {expected}.")

    def target(self, name: str) -> Any:
        """A variable when one has that name; otherwise a path to an .onnx file."""
        if name.isidentifier() and (name in self._local or name in self._user):
            return self.value(name, "a model")
        if name.endswith(".onnx") or "/" in name or "\\" in name:
            return name
        return self.value(name, "an Artifact, a torch model, or an .onnx path")


def register(ipython: Any) -> None:
    ipython.register_magics(WorkbenchMagics)


def unregister(ipython: Any) -> None:
    """Remove the magic again, so that a reload registers a fresh one."""
    manager = ipython.magics_manager
    manager.magics["line"].pop("wb", None)
    manager.registry.pop("WorkbenchMagics", None)
