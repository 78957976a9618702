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
# # Optimize and quantize, without being fooled
#
# Graph optimization, simplification, half precision and int8 quantization each promise speed.
# Which of them pays off depends on the model and on the machine, and the int8 ones cost some
# accuracy. This notebook takes two models, a digits classifier (a small CNN) and a small
# transformer that makes sentence embeddings, and asks three questions of each:
#
# 1. What does each optimization pass make, and does the result still compute the same thing?
# 2. How much task accuracy does each variant lose?
# 3. Which variant, on which engine, with how many threads, is fastest while staying within an
#    accuracy budget?
#
# Every variant is checked against the model it was made from before any speed is measured: a
# fast variant with wrong outputs is marked, never ranked.

# %%
import numpy as np
import plotly.io as pio
import torch
from sklearn.datasets import load_digits
from torch import nn

import workbench

pio.renderers.default = "plotly_mimetype+notebook_connected"
torch.manual_seed(0)

# %load_ext workbench

# %% [markdown]
# ## A digits classifier
#
# scikit-learn ships 1,797 handwritten digits of 8×8 pixels. A small CNN learns them in a few
# seconds; the last 400 digits are kept aside to measure accuracy.

# %%
digits = load_digits()
images = (digits.images[:, None] / 16.0).astype(np.float32)
labels = digits.target.astype(np.int64)
x_train, y_train = torch.from_numpy(images[:-400]), torch.from_numpy(labels[:-400])
x_test, y_test = images[-400:], labels[-400:]

cnn = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1),
    nn.ReLU(),
    nn.Conv2d(16, 32, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(32 * 4 * 4, 10),
)
optimizer = torch.optim.Adam(cnn.parameters(), lr=3e-3)
for epoch in range(12):
    for start in range(0, len(x_train), 64):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(
            cnn(x_train[start : start + 64]), y_train[start : start + 64]
        )
        loss.backward()
        optimizer.step()
cnn.eval()
with torch.no_grad():
    accuracy = (cnn(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
print(f"test accuracy in PyTorch: {accuracy:.1%}")

# %% [markdown]
# Export it, with a parity check against PyTorch, at a batch of 32 digits:

# %%
example = torch.from_numpy(x_test[:32])
# artifact = %wb export cnn example -o digits_cnn.onnx
assert artifact.parity.ok, artifact.parity.summary

# %% [markdown]
# ## Every pass, one variant each
#
# `workbench.optimize` runs each pass in a separate process and writes each variant beside the
# model, in `digits_cnn.variants/`. The passes wrap the tools of the field:
#
# | pass | what it does | tool |
# |---|---|---|
# | `ort-basic`, `ort-extended`, `ort-all` | the graph ONNX Runtime builds at that level, saved | ONNX Runtime |
# | `slim` | constant folding, dead nodes removed, patterns fused | onnxslim |
# | `fusion` | attention, layer norm and GELU fused (transformers only) | ONNX Runtime |
# | `fp16` | weights and arithmetic in half precision, float32 at the edges | ONNX Runtime |
# | `int8-dynamic` | int8 weights, activations quantized per call | ONNX Runtime |
# | `int8-static` | int8 weights and activations, calibrated on data | ONNX Runtime |
#
# Chains join passes with `+`. Given the test digits and their labels, every variant also gets
# its accuracy and its drop from the fp32 model.

# %%
variants = workbench.optimize(
    artifact,
    ["ort-all", "slim", "fusion", "fp16", "int8-dynamic", "int8-static", "slim+int8-static"],
    data=x_test,
    labels=y_test,
)
variants

# %% [markdown]
# Read the table from the top. `fusion` was skipped, with the reason: this is no transformer.
# The float32 passes stay within float32 tolerance of their parent. The fp16 and int8 variants
# are not held to that tolerance; their error statistics are reported, and the accuracy
# column says what matters to the task. The lineage is also written beside each file:

# %%
chain = variants.get("slim+int8-static")
print(" → ".join(v.name for v in chain.lineage()))
for step in workbench.optimize.lineage(chain.path):
    print(step["step"], "from", step["parent"][:12], step["provenance"])
assert all(v.status in ("ok", "skipped") for v in variants), variants.to_pandas()
assert variants.get("fusion").status == "skipped"
assert variants.get("int8-static").drop < 0.05

# %% [markdown]
# ## Which layers does int8 hurt?
#
# When quantization costs accuracy, the loss usually comes from a few layers. The sensitivity
# analysis keeps one layer at a time in float32, quantizes the rest, and ranks the layers by how
# much accuracy that recovers. The ones worth excluding are then kept in float32, and the model
# is quantized again without them.

# %%
sensitivity = workbench.optimize.sensitivity(artifact, data=x_test, labels=y_test)
sensitivity

# %%
sensitivity.plot()

# %% [markdown]
# ## The fastest variant within one point of accuracy
#
# `autotune` measures every variant that kept its outputs on every engine, at 1 and at every
# core, briefly; prunes the cells that are clearly slower; and measures the survivors again,
# side by side, against ONNX Runtime in float32 (the floor) and PyTorch eager (the reference).
# The recommendation is the fastest cell within the accuracy budget; when two cannot be told
# apart, the more accurate one wins.

# %%
# tuning = %wb autotune artifact --data x_test --labels y_test --max-drop 0.01 -b 32 --budget 15
print(tuning.reason)

# %% [markdown]
# Above: the Pareto front (each point a variant on an engine; hover for its chain, engine and
# interval) and the waterfall from PyTorch eager to the recommendation. The recommendation
# never breaks the budget and is never slower than ONNX Runtime in float32:

# %%
choice = tuning.recommendation
assert choice.drop <= 0.01
assert choice.over_floor.verdict != "slower"
tuning.front()

# %% [markdown]
# ## A transformer that makes embeddings
#
# A sentence-embedding model has no labels to count: what matters is that each variant's
# embeddings point the same way as the float32 model's. The metric `cosine` measures that, as
# the mean cosine similarity of each sentence's embedding. The encoder below is small (two
# layers, width 64, sequences of 32 tokens) and untrained, which changes nothing about speed or
# about how faithfully a variant reproduces it.


# %%
class Embedder(nn.Module):
    def __init__(self, vocabulary=1000, width=64, heads=4, layers=2, length=32):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        self.position = nn.Parameter(torch.randn(1, length, width) * 0.02)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, tokens):
        return self.encoder(self.embed(tokens) + self.position).mean(dim=1)


embedder = Embedder().eval()
sentences = torch.randint(0, 1000, (128, 32))
encoder = workbench.export(embedder, (sentences[:1],), "embedder.onnx")
encoder_variants = workbench.optimize(
    encoder, ["fusion", "fp16", "int8-dynamic", "fusion+int8-dynamic"], data=sentences,
    metric="cosine",
)  # fmt: skip
encoder_variants

# %% [markdown]
# Here `fusion` applies: ONNX Runtime's transformer optimizer found layer normalisations (and,
# where the exported pattern allows, attention) to fuse. The int8 variants keep a cosine
# similarity close to 1, so their embeddings are nearly the same. Whether that is worth it is
# a question of speed, which autotune answers at batch 1:

# %%
tuned = workbench.autotune(encoder, data=sentences, metric="cosine", max_drop=0.01, budget_s=12)
print(tuned.reason)
tuned.plot()

# %% [markdown]
# Numbers on your machine will differ: on two AVX2 cores, int8 tends to pay off for matrix-product
# models such as MLPs and transformers, and to cost speed on convolutions; ONNX Runtime's
# graph levels mostly matter for convolutions. That is why the search measures instead of
# assuming.
