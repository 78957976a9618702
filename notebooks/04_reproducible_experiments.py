# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Reproducible experiments: a study you can stop, resume, repeat and compare
#
# A benchmark number is worth what its interval and its provenance are worth. This notebook
# keeps every measurement in a store (one SQLite file), so that an experiment can be:
#
# 1. **interrupted** (the stop button, a crash, a killed kernel) without losing finished cells;
# 2. **resumed**, measuring only what is missing;
# 3. **repeated** later, as a second run of the same study;
# 4. **compared** run against run, with an interval and a verdict per cell, and the
#    differences in the environment that might explain a change;
# 5. **reported** as one HTML file that opens anywhere, without a network.

# %%
import _thread
import threading
import time
from pathlib import Path

import plotly.io as pio
import torch

import workbench
from workbench.demo import digits_cnn, load_digits, train

# Plotly's own MIME type draws in JupyterLab; the HTML fallback keeps the figures visible in
# exported HTML (it fetches plotly.js from a CDN).
pio.renderers.default = "plotly_mimetype+notebook_connected"
torch.manual_seed(0)

# %% [markdown]
# ## A model to study
#
# The digits CNN of the quick start, trained for a few epochs: the point here is the
# bookkeeping, not the accuracy.

# %%
digits = load_digits()
model = digits_cnn()
accuracy = train(model, digits, epochs=3)
artifact = workbench.export(model, digits.test_x[:8], "04-digits.onnx")
print(f"test accuracy {accuracy:.1%}; {artifact}")
assert artifact.parity.ok, artifact.parity.summary

# %% [markdown]
# ## The study and its store
#
# A `Study` names a sweep: models × runtimes × batch sizes × threads. Each cell gets a
# fingerprint made of the model's sha256, the cell's configuration and the environment
# (CPU, instruction sets, package versions): the same fingerprint means the same experiment.
# The store is a file; `WORKBENCH_STORE` or the `store=` argument choose where it lives.

# %%
store_path = Path("04-study.sqlite")
for leftover in Path().glob("04-study.sqlite*"):
    leftover.unlink()  # start from an empty store each time the tutorial runs

study = workbench.Study(
    "digits-cnn",
    artifact,
    runtimes=["torch", "onnxruntime", "openvino"],
    batch_sizes=(1, 8, 32),
    budget_s=0.3,
    store=store_path,
)
planned = study.plan()
print(f"{len(planned)} cells planned; {len(study.missing())} missing")

# %% [markdown]
# ## Interrupt it
#
# Cells of one batch size are measured together (their speed-ups are paired round by round),
# and each measurement is written the moment it completes. To show what an interruption does,
# a timer presses the stop button (it raises `KeyboardInterrupt` in this kernel, as the button
# does) as soon as the first batch size is stored.


# %%
def press_stop_after_first_batch() -> None:
    while len(workbench.open_store(store_path).measurements("digits-cnn")) < 3:
        time.sleep(0.05)
    _thread.interrupt_main()


threading.Thread(target=press_stop_after_first_batch, daemon=True).start()
try:
    study.run(progress=False)
    print("the study finished before the stop arrived")
except KeyboardInterrupt:
    print("interrupted")

stored = workbench.open_store(store_path).measurements("digits-cnn")
print(f"{len(stored)} cells stored, {len(study.missing())} missing")
stored[["runtime", "batch_size", "status", "median_ms", "ci_low_ms", "ci_high_ms"]]

# %% [markdown]
# The store is an ordinary SQLite file in WAL mode: a measurement is written in one
# transaction, so an interruption, a crash, or even `kill -9` of this kernel leaves it sound
# with every finished row. `integrity()` runs SQLite's own check.

# %%
assert workbench.open_store(store_path).integrity() == "ok"
assert 0 < len(stored) < len(planned), "the stop should land in the middle of the study"

# %% [markdown]
# ## Resume it
#
# Running the study again measures only the cells its latest run is missing: the ones
# already stored keep their numbers (and their row ids).

# %%
first_run = study.run(progress=False)
after = workbench.open_store(store_path).measurements("digits-cnn", run=first_run)
print(f"run {first_run}: {len(after)} cells; missing now: {len(study.missing())}")
assert study.missing() == []
assert len(after) == len(planned)
assert list(after["id"][: len(stored)]) == list(stored["id"])  # nothing measured twice

results_1 = study.results(run=first_run)
results_1

# %% [markdown]
# ## Repeat it, and compare the two runs
#
# `run(again=True)` starts a second run of the same cells. `workbench.compare(a, b)` matches
# the cells of two runs and gives, per cell, the ratio of latencies with a 95% interval
# (bootstrapped over the rounds of each run, since calls within a round are not independent)
# and a verdict. On an unchanged machine most cells should come out "not distinguishable":
# separate runs on a shared 2-core machine differ by about 10%, and the intervals say so.
# When the environment differs (another CPU, another onnxruntime), the comparison lists what
# changed, since that is the first suspect for a real difference.

# %%
second_run = study.run(again=True, progress=False)
results_2 = study.results(run=second_run)
comparison = workbench.compare(results_1, results_2)
comparison

# %%
comparison.plot()

# %%
table = comparison.to_pandas()
assert len(table) == len(planned)
assert set(table["verdict"]) <= {"faster", "slower", "not distinguishable"}
print(table["verdict"].value_counts().to_string())

# %% [markdown]
# How to read it: a cell marked "faster" or "slower" has an interval for the ratio that
# excludes 1, so the difference is larger than the run-to-run noise the rounds showed. A cell
# measured while other processes were busy is flagged noisy in both runs' tables: treat its
# verdict with suspicion and re-run it on a quiet machine.
#
# ## Report it
#
# One HTML file with the environment, the tables, the plots and the noise warnings;
# plotly.js travels inside it, so it opens without a network. The same report comes from a
# shell with `workbench report digits-cnn --store 04-study.sqlite`.

# %%
report = study.report("04-report.html")
page = report.read_text()
print(f"{report}: {len(page) / 1e6:.1f} MB, {page.count('Plotly.newPlot')} figures")
assert page.count("Plotly.newPlot") >= 2
