"""The optimization lab through its public API: passes, lineage, the accuracy guard."""

from __future__ import annotations

import json
import math

import models
import numpy as np
import onnx
import pytest

import workbench
from workbench.optimize import lineage, optimize


@pytest.fixture(scope="module")
def cnn_artifact(tmp_path_factory):
    model, inputs = models.cnn()
    return workbench.export(model, inputs, tmp_path_factory.mktemp("cnn") / "cnn.onnx")


@pytest.fixture(scope="module")
def transformer_artifact(tmp_path_factory):
    model, inputs = models.transformer()
    folder = tmp_path_factory.mktemp("transformer")
    return workbench.export(model, inputs, folder / "transformer.onnx")


def _ops(variant) -> set[str]:
    graph = onnx.load(str(variant.path), load_external_data=False).graph
    return {node.op_type for node in graph.node}


def _rows(count: int, features: int = 32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, features)).astype(np.float32)


def test_every_float_pass_makes_a_faithful_variant_that_knows_its_parent(mlp_artifact, tmp_path):
    chains = ["ort-basic", "ort-extended", "ort-all", "slim", "fp16"]
    variants = optimize(mlp_artifact, chains, out_dir=tmp_path, progress=False)

    assert [v.name for v in variants] == ["fp32", *chains]
    root = variants.get("fp32")
    assert root.artifact is mlp_artifact
    for name in chains:
        variant = variants.get(name)
        assert variant.status == "ok", variant
        assert variant.path == tmp_path / f"{name}.onnx"
        assert variant.artifact.parent == mlp_artifact.sha256
        assert variant.artifact.step == name
        assert variant.parent is root
        assert variant.guard.ok
        assert variant.guard.against == "fp32"
    # fp16 keeps float32 at the edges by default, and its error is reported, not just a verdict.
    half = variants.get("fp16")
    assert half.precision == "fp16"
    assert [spec.dtype for spec in half.artifact.inputs] == ["float32"]
    assert 0 < half.guard.errors.max_abs < 1e-2
    assert half.guard.errors.cosine > 0.999
    graph = onnx.load(str(half.path)).graph
    assert {t.data_type for t in graph.initializer} == {onnx.TensorProto.FLOAT16}


def test_int8_dynamic_quantizes_the_gemm_of_linear_layers(mlp_artifact, tmp_path):
    # Both exporters emit Gemm for nn.Linear, which the quantizer alone would leave in fp32.
    assert "Gemm" in {n.op_type for n in onnx.load(str(mlp_artifact.path)).graph.node}

    variants = optimize(mlp_artifact, "int8-dynamic", out_dir=tmp_path, progress=False)

    quantized = variants.get("int8-dynamic")
    assert quantized.status == "ok", quantized
    ops = _ops(quantized)
    assert "Gemm" not in ops
    assert quantized.info["gemm_rewritten"] == 2
    assert quantized.info["quantized"] == {"MatMulInteger": 2}
    assert quantized.precision == "int8"
    assert quantized.artifact.total_bytes < mlp_artifact.total_bytes


def test_int8_static_is_calibrated_on_the_data_and_per_channel_for_convolutions(
    cnn_artifact, tmp_path
):
    images = np.random.default_rng(2).standard_normal((64, 1, 8, 8)).astype(np.float32)

    variants = optimize(cnn_artifact, "int8-static", data=images, out_dir=tmp_path, progress=False)

    quantized = variants.get("int8-static")
    assert quantized.status == "ok", quantized
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(quantized)
    assert quantized.info["per_channel"] is True
    assert quantized.info["calibration_batches"] == 1
    # The data was given, so every variant has the natural metric: agreement with fp32.
    assert quantized.metric_name == "agreement"
    assert variants.get("fp32").metric == 1.0
    assert quantized.drop == pytest.approx(1.0 - quantized.metric)


def test_passes_that_do_not_apply_are_skipped_with_their_reason(cnn_artifact, tmp_path):
    variants = optimize(
        cnn_artifact, ["fusion", "int8-static", "ort-all+int8-dynamic"], out_dir=tmp_path,
        progress=False,
    )  # fmt: skip

    fusion = variants.get("fusion")
    assert fusion.status == "skipped"
    assert "not a transformer" in fusion.reason
    assert "calibration data" in variants.get("int8-static").reason
    # ort-all writes this CPU's blocked layouts, which the quantizer cannot read.
    assert variants.get("ort-all").status == "ok"
    chained = variants.get("ort-all+int8-dynamic")
    assert chained.status == "skipped"
    assert "CPU-specific layouts" in chained.reason
    assert not list(tmp_path.glob("fusion*"))


def test_fp16_on_an_integer_model_is_skipped(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "integers",
        [
            helper.make_tensor_value_info("a", TensorProto.INT64, ["batch", 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["batch", 3]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT64, ["batch", 3])],
    )
    path = tmp_path / "integers.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)

    variants = optimize(path, ["fp16", "int8-dynamic"], progress=False)

    assert variants.get("fp16").status == "skipped"
    assert "nothing to convert to fp16" in variants.get("fp16").reason
    assert variants.get("int8-dynamic").status == "skipped"


def test_transformer_fusions_apply_to_a_transformer(transformer_artifact, tmp_path):
    variants = optimize(transformer_artifact, "fusion", out_dir=tmp_path, progress=False)

    fused = variants.get("fusion")
    assert fused.status == "ok", fused
    assert fused.info["fused"], "no fused operator was reported"
    assert set(fused.info["fused"]) & _ops(fused)
    assert fused.guard.ok


def test_the_guard_rejects_a_variant_whose_outputs_are_wrong(
    mlp_artifact, tmp_path, passes_registered
):
    from broken_passes import ZERO, ZERO_INT8

    passes_registered(ZERO)
    passes_registered(ZERO_INT8)

    variants = optimize(
        mlp_artifact,
        ["zero-weights", "zero-int8", "zero-weights+slim"],
        out_dir=tmp_path,
        progress=False,
    )

    for name in ("zero-weights", "zero-int8"):
        broken = variants.get(name)
        assert broken.status == "rejected", broken
        assert not broken.guard.ok
        assert broken.path.is_file()  # kept for inspection
    assert variants.get("zero-int8").guard.errors.cosine < 0.9
    assert "FAILS" in str(variants.get("zero-weights"))
    # Simplifying the broken model is faithful to it, and still wrong.
    child = variants.get("zero-weights+slim")
    assert child.guard.ok
    assert child.status == "rejected"
    assert child.reason == "its parent zero-weights was rejected"


def test_a_pass_that_crashes_costs_its_variant_only(mlp_artifact, tmp_path, passes_registered):
    from broken_passes import CRASH

    passes_registered(CRASH)

    variants = optimize(
        mlp_artifact, ["crash", "slim", "crash+fp16"], out_dir=tmp_path, progress=False
    )

    assert variants.get("crash").status == "failed"
    assert "SIGSEGV" in variants.get("crash").reason
    assert variants.get("slim").status == "ok"
    assert variants.get("crash+fp16").status == "skipped"
    assert "parent crash was failed" in variants.get("crash+fp16").reason


def test_chains_record_their_lineage_beside_the_files_and_in_the_store(mlp_artifact, tmp_path):
    store_path = tmp_path / "lab.sqlite"

    variants = optimize(
        mlp_artifact, ["slim+fp16"], out_dir=tmp_path / "v", store=store_path, progress=False
    )

    chained = variants.get("slim+fp16")
    assert [v.name for v in chained.lineage()] == ["fp32", "slim", "slim+fp16"]
    assert chained.artifact.parent == variants.get("slim").artifact.sha256
    tree = variants.tree().splitlines()
    assert tree[0].startswith("as given")
    assert tree[1].startswith("└─ slim")
    assert tree[2].startswith("   └─ fp16")
    steps = lineage(chained.path)
    assert [record["step"] for record in steps] == ["slim", "fp16"]
    assert steps[0]["parent"] == mlp_artifact.sha256
    with workbench.open_store(store_path) as store:
        chain = store.lineage(chained.artifact.sha256)
    assert [row["step"] for row in chain] == ["fp16", "slim", None]
    assert chain[-1]["sha256"] == mlp_artifact.sha256
    assert "lineage_note" not in steps[0]
    # slim.onnx made again from another model: its record no longer is slim+fp16's parent.
    sidecar = next(chained.path.parent.glob("slim.*json"))
    record = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**record, "sha256": "0" * 64}))
    steps = lineage(chained.path)
    assert [record["step"] for record in steps] == ["fp16"]
    assert "slim.onnx was made again" in steps[0]["lineage_note"]


def test_a_second_call_reuses_variants_made_from_the_same_parent(mlp_artifact, tmp_path):
    first = optimize(mlp_artifact, ["slim"], out_dir=tmp_path, progress=False).get("slim")
    again = optimize(mlp_artifact, ["slim"], out_dir=tmp_path, progress=False).get("slim")

    assert again.artifact.sha256 == first.artifact.sha256
    assert again.made_s < first.made_s
    # A file changed by hand since is made again rather than trusted.
    first.path.write_bytes(first.path.read_bytes() + b"\n")
    third = optimize(mlp_artifact, ["slim"], out_dir=tmp_path, progress=False).get("slim")
    assert third.artifact.sha256 == first.artifact.sha256


def test_task_metric_with_labels_gives_accuracy_and_its_drop(mlp_artifact, tmp_path):
    data = _rows(200)
    # Labels the fp32 model gets right by construction: its own predictions, a few flipped.
    import onnxruntime

    session = onnxruntime.InferenceSession(str(mlp_artifact.path))
    predicted = session.run(None, {"input": data})[0].argmax(axis=1)
    labels = predicted.copy()
    labels[:20] = (labels[:20] + 1) % 10

    variants = optimize(
        mlp_artifact, ["int8-dynamic"], data=data, labels=labels, out_dir=tmp_path,
        progress=False,
    )  # fmt: skip

    root, quantized = variants.get("fp32"), variants.get("int8-dynamic")
    assert root.metric_name == "accuracy"
    assert root.metric == pytest.approx(0.9)
    assert root.drop == 0.0
    assert quantized.drop == pytest.approx(root.metric - quantized.metric)
    assert not math.isnan(quantized.metric)
    table = variants.to_pandas()
    assert list(table["variant"]) == ["fp32", "int8-dynamic"]
    assert table.loc[1, "drop"] == pytest.approx(quantized.drop)


def test_a_callable_metric_gets_the_outputs_and_labels(mlp_artifact, tmp_path):
    seen = {}

    def top2(outputs, labels):
        seen["shape"] = outputs.shape
        best = np.argsort(outputs, axis=1)[:, -2:]
        return float(np.mean([label in row for label, row in zip(labels, best, strict=True)]))

    data, labels = _rows(50), np.arange(50) % 10
    variants = optimize(
        mlp_artifact, ["slim"], data=data, labels=labels, metric=top2, out_dir=tmp_path,
        progress=False,
    )  # fmt: skip

    assert seen["shape"] == (50, 10)
    assert variants.get("slim").metric_name == "top2"
    assert variants.get("slim").metric == variants.get("fp32").metric


def test_calibration_data_of_the_wrong_shape_names_the_input(mlp_artifact):
    wrong = r"Input 'input' .* size 16 in dimension 1"
    with pytest.raises(workbench.InputError, match=wrong) as error:
        optimize(mlp_artifact, ["int8-static"], data=_rows(10, features=16), progress=False)
    assert "expected float32[batch, 32]" in str(error.value)
    with pytest.raises(workbench.InputError, match="dtype float64"):
        optimize(mlp_artifact, ["int8-static"], data=_rows(10).astype(np.float64), progress=False)


def test_unknown_passes_and_bad_options_are_one_sentence(mlp_artifact):
    with pytest.raises(workbench.InputError, match=r"no pass named .int4.*ort-all"):
        optimize(mlp_artifact, ["slim+int4"], progress=False)
    with pytest.raises(workbench.InputError, match="names a pass twice"):
        optimize(mlp_artifact, ["slim+slim"], progress=False)
    with pytest.raises(workbench.InputError, match=r"options\['fp16'\] must be a dict"):
        optimize(mlp_artifact, ["fp16"], options={"fp16": True}, progress=False)
    with pytest.raises(
        workbench.InputError, match=r"'int8-dynamic' has no option 'perchannel'.*per_channel"
    ):
        optimize(
            mlp_artifact,
            ["int8-dynamic"],
            options={"int8-dynamic": {"perchannel": True}},
            progress=False,
        )
    with pytest.raises(workbench.InputError, match="'int8-static', which no chain uses"):
        optimize(mlp_artifact, ["slim"], options={"int8-static": {}}, progress=False)


def test_labels_that_do_not_match_the_data_are_one_sentence(mlp_artifact):
    data = _rows(10)
    with pytest.raises(workbench.InputError, match="labels hold 25 labels for 10 samples"):
        optimize(mlp_artifact, ["slim"], data=data, labels=np.zeros(25, int), progress=False)
    one_hot = np.eye(10)[np.arange(10) % 10]
    with pytest.raises(workbench.InputError, match=r"shape \(10, 10\).*argmax\(axis=1\)"):
        optimize(mlp_artifact, ["slim"], data=data, labels=one_hot, progress=False)


def test_a_metric_that_fails_is_named_before_any_pass_runs(mlp_artifact, tmp_path):
    def broken(outputs, labels):
        raise ValueError("no such column")

    def not_a_number(outputs, labels):
        return outputs  # the whole array

    data, labels = _rows(10), np.arange(10) % 10
    for metric, said in ((broken, "raised ValueError: no such column"), (not_a_number, "one")):
        with pytest.raises(workbench.InputError, match=rf"metric {metric.__name__}.*{said}"):
            optimize(
                mlp_artifact, ["slim"], data=data, labels=labels, metric=metric,
                out_dir=tmp_path, progress=False,
            )  # fmt: skip
    assert not (tmp_path / "slim.onnx").exists()  # nothing was made


def test_an_fp16_variant_with_float16_inputs_is_checked_on_the_same_data(mlp_artifact, tmp_path):
    variants = optimize(
        mlp_artifact,
        ["fp16"],
        data=_rows(16),
        options={"fp16": {"keep_io_types": False}},
        out_dir=tmp_path,
        progress=False,
    )

    half = variants.get("fp16")
    assert half.status == "ok", half.reason
    assert half.artifact.inputs[0].dtype == "float16"
    assert half.guard.errors.cosine > 0.99


def test_the_verb_is_also_the_package():
    import subprocess
    import sys

    code = (
        "import workbench\n"
        "print(callable(workbench.optimize), workbench.optimize.lineage.__name__,"
        " workbench.optimize.sensitivity.__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "lineage", "sensitivity"]


def test_openvino_runs_a_converted_fp16_variant_with_the_right_inputs(cnn_artifact, tmp_path):
    # The converter puts a Cast right after the input; OpenVINO then names the input port
    # after the Cast's output first, and the feed must still reach it.
    import onnxruntime

    from workbench.runtimes import ModelRef, RuntimeConfig, get

    half = optimize(cnn_artifact, "fp16", out_dir=tmp_path, progress=False).get("fp16")
    images = np.random.default_rng(4).standard_normal((32, 1, 8, 8)).astype(np.float32)
    expected = onnxruntime.InferenceSession(str(half.path)).run(None, {"input": images})[0]

    session = get("openvino").load(ModelRef(half.artifact), RuntimeConfig("openvino"), None)
    try:
        got = session.run({"input": images})[0]
        with pytest.raises(ValueError, match="no value was given for the model input"):
            session.run({"other": images})
    finally:
        session.close()
    assert got.shape == (32, 10)
    assert np.abs(got - expected).max() < 0.05


def test_the_guard_sees_a_regressor_that_is_scaled_wrong():
    from workbench.optimize.metrics import error_stats

    truth = [np.array([[1.0], [2.0], [3.0]], dtype=np.float32)]
    wrong = [np.array([[1.5], [20.0], [0.1]], dtype=np.float32)]
    close = [truth[0] * 1.001]

    # One value per sample has no direction: every positive value would have cosine 1.
    assert error_stats(["y"], truth, wrong).cosine < 0.5
    assert error_stats(["y"], truth, close).cosine == pytest.approx(0.999, abs=1e-4)
