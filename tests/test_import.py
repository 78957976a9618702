"""Importing the package is instant: no engine, no numpy, no plotting library is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("torch", "onnx", "onnxruntime", "openvino", "numpy", "plotly", "pandas")


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_package_imports_no_heavy_library():
    out = _run(
        f"""
        import sys
        import workbench
        print(sorted(name for name in {HEAVY!r} if name in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_every_public_name_resolves():
    out = _run(
        """
        import workbench
        missing = [name for name in workbench.__all__ if getattr(workbench, name, None) is None]
        print(missing, sorted(set(workbench.__all__)) == sorted(workbench.__all__))
        print(sorted(dir(workbench)) == sorted(workbench.__all__))
        print(issubclass(workbench.InputError, workbench.WorkbenchError))
        """
    )
    assert out.split("\n")[:3] == ["[] True", "True", "True"]


def test_the_verbs_that_share_a_folder_name_stay_callable():
    out = _run(
        """
        import workbench.export, workbench.inspect, workbench.runtimes
        import workbench
        print(callable(workbench.export), callable(workbench.inspect), callable(workbench.runtimes))
        listing = workbench.runtimes(probe=False)
        print({"torch", "onnxruntime", "openvino"} <= {row.name for row in listing})
        print(workbench.benchmark.__module__, callable(workbench.load))
        """
    )
    lines = out.splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "True"
    assert lines[2] == "workbench.study True"


def test_the_folders_stay_callable_in_the_other_import_order():
    out = _run(
        """
        import workbench
        workbench.runtimes  # the verb first, then the folders
        import workbench.runtimes, workbench.inspect, workbench.export
        from workbench import runtimes, inspect, export
        print(callable(runtimes), callable(inspect), callable(export))
        print(type(runtimes(probe=False)).__name__)
        """
    )
    assert out.splitlines() == ["True True True", "RuntimeList"]
