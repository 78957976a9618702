"""Studies: planned, stored as they go, resumed after a kill -9, reported."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import workbench
from workbench.errors import InputError
from workbench.store.sqlite import open_store
from workbench.studies import Study

RUNTIMES = ["onnxruntime", "openvino"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, mlp_artifact) -> Path:
    """The shared MLP as a file of its own, as a study in another process would find it."""
    folder = tmp_path_factory.mktemp("study")
    target = folder / "mlp.onnx"
    target.write_bytes(mlp_artifact.path.read_bytes())
    return target


def test_a_study_measures_stores_and_skips_what_it_has(model_file: Path, tmp_path: Path):
    study = Study(
        "mlp",
        str(model_file),
        RUNTIMES,
        batch_sizes=(1, 3),
        budget_s=0.2,
        store=tmp_path / "s.sqlite",
    )
    assert len(study.plan()) == 4
    assert len(study.missing()) == 4

    first = study.run(progress=False)
    assert study.missing() == []
    table = study.store.measurements("mlp")
    assert sorted(zip(table["runtime"], table["batch_size"], strict=True)) == [
        ("onnxruntime", 1),
        ("onnxruntime", 3),
        ("openvino", 1),
        ("openvino", 3),
    ]
    assert (table["run"] == first).all()

    assert study.run(progress=False) == first  # nothing missing: nothing measured
    assert len(study.store.measurements("mlp")) == 4

    second = study.run(again=True, progress=False)
    assert second == first + 1
    assert study.runs == [first, second]
    assert len(study.store.measurements("mlp", run=second)) == 4
    results = study.results(run=first)
    assert {m.cell.label for m in results.measurements} == set(RUNTIMES)
    assert results.reference == "onnxruntime"


def test_the_same_cell_in_another_environment_is_measured_again(model_file, tmp_path):
    import dataclasses

    study = Study(
        "env", str(model_file), ["onnxruntime"], budget_s=0.2, store=tmp_path / "e.sqlite"
    )
    study.run(progress=False)
    assert study.missing() == []
    study.environment = dataclasses.replace(
        study.environment, packages={**study.environment.packages, "onnxruntime": "0.0.1"}
    )
    assert len(study.missing()) == 1


RESUMABLE = textwrap.dedent(
    """
    from workbench.studies import Study
    study = Study("resume", {model!r}, {runtimes!r}, batch_sizes=(1, 2, 3, 4), budget_s=0.4,
                  store={store!r})
    study.run(progress=False)
    """
)


def test_a_study_killed_mid_run_resumes_with_only_the_missing_cells(model_file, tmp_path):
    store_path = tmp_path / "resume.sqlite"
    script = RESUMABLE.format(model=str(model_file), runtimes=RUNTIMES, store=str(store_path))
    coordinator = subprocess.Popen([sys.executable, "-c", script])
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers |= {p.pid for p in psutil.Process(coordinator.pid).children(recursive=True)}
        if store_path.exists() and len(open_store(store_path).measurements("resume")) >= 2:
            break
        time.sleep(0.05)
    coordinator.kill()  # kill -9 of the coordinating process
    coordinator.wait()

    store = open_store(store_path)
    assert store.integrity() == "ok"
    before = store.measurements("resume")
    assert 2 <= len(before) < 8, "the kill should land in the middle of the study"

    study = Study(
        "resume",
        str(model_file),
        RUNTIMES,
        batch_sizes=(1, 2, 3, 4),
        budget_s=0.2,
        store=store_path,
    )
    missing = {(p.cell.label, p.cell.batch_size) for p in study.missing()}
    stored = set(zip(before["runtime"], before["batch_size"], strict=True))
    assert missing.isdisjoint(stored)
    assert len(missing) + len(stored) == 8

    study.run(progress=False)
    after = study.store.measurements("resume")
    assert len(after) == 8
    assert after["fingerprint"].nunique() == 8
    assert list(after["id"][: len(before)]) == list(before["id"])  # done cells never re-run
    for pid in workers:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_the_report_is_one_self_contained_file(model_file: Path, tmp_path: Path) -> None:
    study = Study(
        "report",
        str(model_file),
        RUNTIMES,
        batch_sizes=(1, 2),
        budget_s=0.2,
        store=tmp_path / "r.sqlite",
    )
    study.run(progress=False)
    page = study.report(tmp_path / "report.html").read_text()
    assert page.count("Plotly.newPlot") >= 2
    assert "Environment" in page
    assert "Study report" in page  # the title names the study
    outside_plotly = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.DOTALL)
    assert "https://" not in outside_plotly
    assert "<script src=" not in page


def test_bad_study_arguments_are_sentences(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs a name"):
        Study("", str(model_file), store=tmp_path / "b.sqlite")
    study = Study("bad", str(model_file), RUNTIMES, store=tmp_path / "b.sqlite")
    with pytest.raises(InputError, match="no model 'other'"):
        study.results(target="other")
    with pytest.raises(workbench.UnknownRuntimeError):
        Study("bad2", str(model_file), ["tensorflow"], store=tmp_path / "b.sqlite").plan()


def test_the_command_line_lists_studies_and_writes_their_report(model_file, tmp_path):
    store = tmp_path / "cli.sqlite"
    Study("cli", str(model_file), ["onnxruntime"], budget_s=0.2, store=store).run(progress=False)
    script = Path(sys.executable).with_name("workbench")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "workbench.cli"]
    listing = subprocess.run(
        [*command, "studies", "--store", str(store)], capture_output=True, text=True, check=False
    )
    assert listing.returncode == 0, listing.stderr
    assert "cli" in listing.stdout
    out = tmp_path / "cli.html"
    done = subprocess.run(
        [*command, "report", "cli", "--store", str(store), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Plotly.newPlot" in out.read_text()
    missing = subprocess.run(
        [*command, "report", "nope", "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert "no study called 'nope'" in missing.stderr
