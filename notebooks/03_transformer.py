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
# # A small transformer on every engine
#
# Convolution networks and transformers stress an engine in different places. A transformer
# encoder is mostly matrix products, with layer normalisation, a softmax and many reshapes and
# transposes between them; how well an engine fuses those small steps decides much of its speed.
# This notebook exports a two-layer encoder, checks that every engine computes the same
# outputs, and then looks at who wins where, and why.
#
# The weights are random: speed and numerical agreement do not depend on training.

# %%
import plotly.io as pio
import torch
from torch import nn

import workbench

# Plotly's own MIME type draws in JupyterLab; the HTML fallback keeps the figures visible in
# exported HTML and on nbviewer (it fetches plotly.js from a CDN).
pio.renderers.default = "plotly_mimetype+notebook_connected"
torch.manual_seed(0)

# %load_ext workbench

# %% [markdown]
# ## The model
#
# Token ids go in, four class scores come out: an embedding, a learned position embedding, two
# encoder layers (width 64, 4 attention heads, a feed-forward layer of 128), a mean over the
# sequence and a linear head. Sequences are 32 tokens long.


# %%
class TinyEncoder(nn.Module):
    def __init__(self, vocabulary=1000, width=64, heads=4, layers=2, length=32, classes=4):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        self.position = nn.Parameter(torch.randn(1, length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, tokens):
        hidden = self.encoder(self.embed(tokens) + self.position)
        return self.head(hidden.mean(dim=1))


model = TinyEncoder().eval()
tokens = torch.randint(0, 1000, (8, 32))
print(f"{sum(p.numel() for p in model.parameters()):,} parameters; output {model(tokens).shape}")

# %% [markdown]
# ## Export and parity
#
# The exporter traces the model into ONNX operators; the parity check then runs the example
# tokens, and a second batch size, through PyTorch and ONNX Runtime and compares the scores.

# %%
# artifact = %wb export model tokens -o tiny_encoder.onnx
assert artifact.parity.ok, artifact.parity.summary
artifact

# %% [markdown]
# The op histogram shows where the work is: nearly all the floating-point operations sit in
# `MatMul` and `Gemm` (the projections and the feed-forward layers), while the most frequent
# *nodes* are `Reshape` and `Transpose`, which move data without computing. Those cheap nodes
# still cost a call each, and often a copy, unless the engine fuses them away.

# %%
# %wb inspect artifact

# %% [markdown]
# ## Every engine, batch 1 and batch 16
#
# Batch 1 is one request at a time, where fixed costs per call matter most; batch 16 gives the
# engines enough arithmetic to show the quality of their matrix kernels.

# %%
# results = %wb bench artifact -b 1 16 --budget 0.5 -o

# %% [markdown]
# Before reading any speed: every engine must agree with PyTorch. The benchmark compared each
# engine's outputs with PyTorch's on the same inputs, at each batch size.

# %%
measured = {m.cell.config.name for m in results}
expected = {r.name for r in workbench.runtimes(probe=False) if r.available} - {"onnx-reference"}
assert measured == expected, f"measured {sorted(measured)}, expected {sorted(expected)}"
assert all(m.ok for m in results.measurements), [m.cause for m in results if not m.ok]
for m in results:
    if m.cell.label != results.reference:
        assert m.parity is not None and m.parity.ok, f"{m.cell.describe()}: {m.parity}"
        print(f"{m.cell.describe():40} agrees with PyTorch, largest error {m.parity.max_abs:.1e}")

# %% [markdown]
# ## Who wins where
#
# The verdict of each engine at each batch size, with the speed-up interval it rests on:

# %%
import math

table = results.to_pandas()
for row in table.itertuples():
    interval = (
        "the baseline"
        if math.isnan(row.speedup)
        else f"{row.speedup:.2f}× [{row.speedup_low:.2f}, {row.speedup_high:.2f}]"
    )
    flag = "  (noisy)" if row.noisy else ""
    print(f"batch {row.batch_size:>2}  {row.runtime:12} {interval:28} {row.verdict}{flag}")
print()
for (batch_size, _threads), winner in results.winners().items():
    print(f"fastest at batch {batch_size}: {winner}")

# %% [markdown]
# ## Why
#
# Three things explain most of what the table shows; check each against the numbers above.
#
# **PyTorch is not running the code you see.** In inference mode, PyTorch sends a
# `TransformerEncoderLayer` through a fused native kernel (its "fast path") instead of the
# separate attention, normalisation and feed-forward modules. The profile below lists the fused
# operators it called (PyTorch may also log that its profiler started and stopped). So on a
# transformer PyTorch eager is a stronger baseline than on a CNN: expect the other engines'
# margins over it to be smaller than in the quick start.

# %%
from torch.profiler import profile

with torch.inference_mode(), profile() as profiled:
    model(tokens[:1])
fused = sorted(
    {e.name for e in profiled.events() if "transformer" in e.name or "_native" in e.name}
)
print("\n".join(fused) or "no fused operators: PyTorch ran the layers one module at a time")

# %% [markdown]
# **ONNX Runtime rewrites the graph when it loads it.** It fuses patterns into bigger
# operators: an addition followed by a layer normalisation becomes one
# `SkipLayerNormalization`, a matrix product with a transpose or a scale becomes a
# `FusedMatMul`. The cell below asks ONNX Runtime for the graph it runs after those rewrites
# (the `extended` level; the default, `all`, adds layout changes specific to this CPU) and
# counts the operators before and after.

# %%
import collections

import onnx
import onnxruntime

options = onnxruntime.SessionOptions()
options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
options.optimized_model_filepath = "tiny_encoder.ort-optimized.onnx"
onnxruntime.InferenceSession(str(artifact.path), options, providers=["CPUExecutionProvider"])

before = collections.Counter(n.op_type for n in onnx.load(artifact.path).graph.node)
after = collections.Counter(
    n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node
)
print(f"{sum(before.values())} nodes as exported, {sum(after.values())} as ONNX Runtime runs it")
print("new operators:", dict(after - before))
print("operators removed:", dict(before - after))

# %% [markdown]
# Whether those rewrites are worth anything on this model: the same file on ONNX Runtime with
# optimizations at `all` (the default, here the baseline), `basic` (constant folding and simple
# eliminations only) and `disable`. If the verdicts read "not distinguishable", the fused
# operators save less than the run-to-run noise: the time goes somewhere the rewrites do not
# reach.

# %%
# levels = %wb bench artifact -r onnxruntime -r onnxruntime:opt=basic -r onnxruntime:opt=disable -o

# %%
assert all(m.ok for m in levels.measurements), [m.cause for m in levels if not m.ok]
assert all(m.parity is None or m.parity.ok for m in levels), "an optimization level drifted"

# %% [markdown]
# Where that time goes can be asked of ONNX Runtime itself: its profiler records every operator
# call. The cell below runs batch 16 a hundred times with profiling on and sums the time by
# operator type. Profiling slows each call down, so read the shares, not the absolute times.
# A large share for `Transpose`, `Reshape`, `Squeeze` or `Slice` is time spent moving data
# between the layouts the exported graph asks for, which PyTorch's fused kernel never builds;
# a large share for `MatMul` and `Gemm` is the arithmetic itself.

# %%
import json

import numpy as np

options = onnxruntime.SessionOptions()
options.enable_profiling = True
options.profile_file_prefix = "tiny_encoder.ort-profile"
session = onnxruntime.InferenceSession(
    str(artifact.path), options, providers=["CPUExecutionProvider"]
)
feed = {artifact.inputs[0].name: np.random.default_rng(0).integers(0, 1000, (16, 32))}
for _ in range(100):
    session.run(None, feed)
with open(session.end_profiling()) as file:
    events = json.load(file)

spent = collections.Counter()
for event in events:
    if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
        spent[event["args"]["op_name"]] += event["dur"]
total = sum(spent.values())
for op_type, microseconds in spent.most_common(8):
    print(f"{op_type:24} {microseconds / total:6.1%}")
movement = sum(spent[op] for op in ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Slice"))
print(f"{'data movement, together':24} {movement / total:6.1%}")

# %% [markdown]
# **OpenVINO compiles the model for this CPU.** It also fuses operators, picks kernels for the
# instruction sets it finds (AVX2, AVX-512, AMX) and plans memory once at load time. That
# preparation is paid before the first call: compare the `first_ms` and `load_s` columns. Each
# `infer()` call from Python also crosses a slightly thicker layer than ONNX Runtime's `run()`,
# which shows at batch 1 on a small model and fades as the batch grows.

# %%
table[["runtime", "batch_size", "load_s", "first_ms", "median_ms", "peak_rss_mb"]].round(3)

# %% [markdown]
# What to take away, whatever the exact numbers on your machine:
#
# - The winner can change with the batch size: read `winners()` per batch, not one overall
#   ranking.
# - A verdict of **not distinguishable** is an answer: the engines tie on this machine, and
#   other criteria (memory, load time, deployment) decide.
# - Numbers flagged **noisy** were measured while other programs competed for the CPU; run the
#   cell again before drawing conclusions from them.
# - Measure on the machine you deploy to: the instruction sets of the CPU change the order.
