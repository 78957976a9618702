"""The ``workbench`` command: the API's verbs from a shell.

Exit status: 0 on success, 2 on a usage error, 1 on a failure, with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any

from workbench._arguments import add_dims, add_sweep, parse_dims
from workbench._version import __version__
from workbench.errors import InputError, UnknownRuntimeError, WorkbenchError

USAGE_ERRORS = (InputError, UnknownRuntimeError)


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workbench", description="Export, check, optimize and benchmark ONNX models."
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log each stage (-v) or everything (-vv)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=_Parser)

    listing = verbs.add_parser("runtimes", help="list runtimes, their versions and providers")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--no-probe",
        action="store_true",
        help="do not import the engines (faster; no provider list)",
    )

    summary = verbs.add_parser("inspect", help="summarise an .onnx file")
    summary.add_argument("model", help="path of the .onnx file")
    add_dims(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of text")

    bench = verbs.add_parser("bench", help="benchmark an .onnx file on several runtimes")
    bench.add_argument("model", help="path of the .onnx file")
    add_sweep(bench, budget_s=2.0)
    bench.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a worker silent this long is killed (default: 60)",
    )
    add_dims(bench)
    bench.add_argument("--json", action="store_true", help="print JSON records")
    bench.add_argument("--html", metavar="PATH", help="also write a self-contained HTML report")

    optimize = verbs.add_parser("optimize", help="make variants of an .onnx file by passes")
    optimize.add_argument("model", help="path of the .onnx file")
    optimize.add_argument(
        "-p", "--passes", nargs="+", metavar="CHAIN", help="chains such as ort-all slim+fp16"
    )
    _add_task(optimize)
    optimize.add_argument("-o", "--output", metavar="DIR", help="folder of the variants")

    tune = verbs.add_parser("autotune", help="find the fastest faithful variant, engine, threads")
    tune.add_argument("model", help="path of the .onnx file")
    _add_task(tune)
    tune.add_argument("--max-drop", type=float, default=0.01, metavar="X")
    tune.add_argument("--budget", type=float, default=60.0, metavar="SECONDS")
    tune.add_argument("-b", "--batch-size", type=int, default=1, dest="batch_size", metavar="N")
    tune.add_argument("-t", "--threads", nargs="+", type=int, metavar="N")
    tune.add_argument("--html", metavar="PATH", help="also write the front and waterfall as HTML")

    report = verbs.add_parser("report", help="write the HTML report of a stored study")
    report.add_argument("study", help="the study's name")
    report.add_argument("-o", "--output", default=None, help="report path (default: STUDY.html)")
    report.add_argument(
        "--store",
        default=None,
        metavar="PATH",
        help="the store file (default: $WORKBENCH_STORE or ./workbench.sqlite)",
    )
    report.add_argument("--run", type=int, default=None, help="run number (default: latest)")

    studies = verbs.add_parser("studies", help="list the studies in a store")
    studies.add_argument("--store", default=None, metavar="PATH", help="the store file")

    demo = verbs.add_parser("demo", help="train a digits CNN, export, benchmark, write a report")
    demo.add_argument("-o", "--output", default="workbench-demo.html", help="report path")
    demo.add_argument("--quick", action="store_true", help="short training and budget (CI)")
    demo.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="measuring time per cell at most",
    )
    return parser


def _add_task(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="FILE",
        help="samples of the task: a .npy array, or a .npz with one array per input",
    )
    parser.add_argument("--labels", metavar="FILE", help="their labels, a .npy array")
    parser.add_argument(
        "--metric", choices=("accuracy", "agreement", "cosine"), help="the task metric"
    )


def _task(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    found: dict[str, Any] = {"metric": args.metric}
    for name in ("data", "labels"):
        path = getattr(args, name)
        if path is None:
            continue
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise InputError(
                f"--{name} {path} could not be read as a .npy or .npz file ({error})."
            ) from None
        found[name] = dict(loaded) if hasattr(loaded, "files") else loaded
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as error:
        return _fail(f"error: {error}", 2)
    except SystemExit as exit_:  # --help and --version
        return int(exit_.code or 0)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _VERBS[args.verb](args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # a shell user gets one line; --debug shows the rest
        if args.debug and not isinstance(error, USAGE_ERRORS):
            raise
        return _fail(*_explain(error))


def _explain(error: Exception) -> tuple[str, int]:
    if isinstance(error, USAGE_ERRORS):
        return f"error: {error}", 2
    if isinstance(error, WorkbenchError | OSError):
        return str(error), 1
    return (f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback)", 1)


def _fail(message: str, code: int) -> int:
    print(f"workbench: {message}", file=sys.stderr)
    return code


def _runtimes(args: argparse.Namespace) -> int:
    import workbench

    listing = workbench.runtimes(probe=not args.no_probe)
    if args.json:
        print(json.dumps([vars(item) for item in listing], indent=2, default=str))
    else:
        print(listing)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import workbench

    summary = workbench.inspect(args.model, dims=parse_dims(args.dims))
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary)
    return 0


def _bench(args: argparse.Namespace) -> int:
    import workbench

    results = workbench.benchmark(
        args.model,
        runtimes=args.runtimes,
        batch_sizes=args.batch_sizes,
        threads=args.threads or (None,),
        budget_s=args.budget,
        timeout_s=args.timeout,
        dims=parse_dims(args.dims),
        progress=sys.stderr.isatty() and not args.json,
    )
    if args.json:
        print(
            json.dumps(
                {"environment": results.environment.to_dict(), "cells": _records(results)},
                indent=2,
                default=str,
            )
        )
    else:
        print(results)
    if args.html:
        print(f"report written to {results.to_html(args.html)}", file=sys.stderr)
    return 0 if any(item.ok for item in results.measurements) else 1


def _optimize(args: argparse.Namespace) -> int:
    import workbench

    variants = workbench.optimize(
        args.model,
        args.passes,
        out_dir=args.output,
        progress=sys.stderr.isatty(),
        **_task(args),
    )
    print(variants)
    return 0 if all(v.status in ("ok", "skipped") for v in variants) else 1


def _autotune(args: argparse.Namespace) -> int:
    import workbench

    tuning = workbench.autotune(
        args.model,
        max_drop=args.max_drop,
        budget_s=args.budget,
        batch_size=args.batch_size,
        threads=args.threads,
        progress=sys.stderr.isatty(),
        **_task(args),
    )
    print(tuning)
    if args.html:
        from workbench._html import escape
        from workbench.viz.report import write_report

        path = write_report(
            args.html,
            f"autotune of {args.model}",
            [tuning.plot(), tuning.waterfall()],
            [
                ("Recommendation", f"<p>{escape(tuning.reason)}</p>"),
                ("Cells", tuning._repr_html_()),
            ],
        )
        print(f"report written to {path}", file=sys.stderr)
    return 0 if tuning.recommendation is not None else 1


def _report(args: argparse.Namespace) -> int:
    from workbench.report import report_from_store

    path = report_from_store(
        args.study, args.output or f"{args.study}.html", store=args.store, run=args.run
    )
    print(f"report written to {path}")
    return 0


def _studies(args: argparse.Namespace) -> int:
    from workbench.store.sqlite import open_store

    with open_store(args.store) as store:
        table = store.studies()
    print(table.to_string(index=False) if len(table) else f"no studies in {store.path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from workbench.demo import run_demo

    outcome = run_demo(
        args.output, quick=args.quick, budget_s=args.budget, progress=sys.stderr.isatty()
    )
    print(f"digits CNN trained: test accuracy {outcome.accuracy:.1%}")
    print(outcome.artifact.parity)
    print()
    print(outcome.results)
    print(f"\nreport written to {outcome.report} ({outcome.seconds:.0f} s in all)")
    return 0 if all(item.ok for item in outcome.results.measurements) else 1


def _records(results: Any) -> list[dict[str, Any]]:
    """Rows of the results table with NaN turned into null, for strict JSON readers."""
    rows = results.to_pandas().to_dict(orient="records")
    return [{key: _json_value(value) for key, value in row.items()} for row in rows]


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return _json_value(value.item())
    return value


_VERBS = {
    "runtimes": _runtimes,
    "inspect": _inspect,
    "bench": _bench,
    "optimize": _optimize,
    "autotune": _autotune,
    "report": _report,
    "studies": _studies,
    "demo": _demo,
}


if __name__ == "__main__":
    sys.exit(main())
