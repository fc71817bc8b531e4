"""Runners on real exported artifacts: registry, support matrix, precision honesty, agreement between runtimes."""
from __future__ import annotations

import numpy as np
import pytest

from deploybench.errors import DeployBenchError
from deploybench.records import Artifact
from deploybench.runtimes import RUNTIMES, get_runner


def _art(cfg, run, file, fmt, prec):
    return Artifact(str(run.engine_dir(cfg.root) / file), fmt, prec, run.run_id)


@pytest.fixture(scope="module")
def val_batch(exported_run):
    from deploybench.data import load_array
    from deploybench.io import read_json

    cfg, run = exported_run
    meta = read_json(run.engine_dir(cfg.root) / "export.json")["meta"]
    x, _ = load_array(run.dataset, "val", limit=8, image_size=meta["image_size"], mean=meta["mean"], std=meta["std"])
    return np.ascontiguousarray(x, dtype=np.float32), meta


def test_registry_names_and_unknown():
    assert set(RUNTIMES) == {"torch", "onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-trt", "openvino",
                             "openvino-bf16", "tensorrt", "torch-aoti"}
    with pytest.raises(DeployBenchError, match="known: torch, onnxruntime-cpu"):
        get_runner("tensorflow-lite")


@pytest.mark.parametrize("runtime,fmt,prec,ok", [
    ("torch", "pytorch", "fp32", True), ("torch", "onnx", "fp32", False),
    ("onnxruntime-cpu", "onnx", "fp16", True), ("onnxruntime-cpu", "onnx", "int8", True),
    ("onnxruntime-cpu", "openvino", "fp32", False), ("onnxruntime-cuda", "onnx", "int8", True),
    ("onnxruntime-trt", "onnx", "fp16", True), ("onnxruntime-trt", "tensorrt", "fp16", False),
    ("openvino", "onnx", "int8", True), ("openvino", "openvino", "fp16", True),
    ("openvino-bf16", "openvino", "fp32", True), ("openvino-bf16", "onnx", "int8", False),
    ("tensorrt", "tensorrt", "int8", True), ("tensorrt", "onnx", "fp32", False),
])
def test_runner_supports_matrix(runtime, fmt, prec, ok):
    got, reason = get_runner(runtime).supports(Artifact("x", fmt, prec))
    assert got is ok
    assert bool(reason) is not ok


def test_available_gives_reason():
    for name, cls in RUNTIMES.items():
        ok, reason = cls.available()
        assert isinstance(ok, bool) and (ok or reason), name
    assert RUNTIMES["onnxruntime-cpu"].available() == (True, "")


def test_openvino_fp32_really_f32(exported_run, val_batch):
    cfg, run = exported_run
    x, meta = val_batch
    for file, fmt, prec in (("model.fp32.xml", "openvino", "fp32"), ("model.fp16.onnx", "onnx", "fp16")):
        with get_runner("openvino")(_art(cfg, run, file, fmt, prec), meta, threads=1) as r:
            assert r.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
            assert r.compiled.get_property("INFERENCE_NUM_THREADS") == 1
            assert (r.precision, r.compute_precision) == (prec, "fp32")   # fp16 weights upconverted on CPU
            assert r.infer(x).shape == (len(x), meta["num_classes"])


def test_openvino_bf16(exported_run, val_batch):
    ok, reason = RUNTIMES["openvino-bf16"].available()
    if not ok:
        pytest.skip(reason)
    cfg, run = exported_run
    x, meta = val_batch
    art = _art(cfg, run, "model.fp32.xml", "openvino", "fp32")
    with get_runner("openvino-bf16")(art, meta, threads=1) as r:
        assert r.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "bf16"
        assert (r.precision, r.compute_precision) == ("fp32", "bf16")
        y = r.infer(x)
    with get_runner("openvino")(art, meta, threads=1) as r:
        ref = r.infer(x)
    rel = np.abs(y - ref).max(1) / np.abs(ref).max(1)       # per image, as export/parity.py defines it
    assert rel.max() > 0                                    # bf16 really ran: not identical ...
    # ... but close: bf16 keeps 8 mantissa bits, 10-25 % of the small logits of this 2-epoch 32-px model
    assert np.median(rel) < 0.3 and (y.argmax(1) == ref.argmax(1)).mean() >= 0.75


def test_torch_matches_ort_fp32(exported_run, val_batch):
    cfg, run = exported_run
    x, meta = val_batch
    with get_runner("torch")(Artifact(str(run.ckpt_dir(cfg.root) / "best.pt"), "pytorch", "fp32"), meta,
                             threads=1) as r:
        ref = r.infer(x)
        assert r.precision == r.compute_precision == "fp32"
    with get_runner("onnxruntime-cpu")(_art(cfg, run, "model.fp32.onnx", "onnx", "fp32"), meta, threads=1) as r:
        assert r.session.get_session_options().intra_op_num_threads == 1
        one = r.infer(x[:1])
        y = r.infer(x)
    assert y.dtype == np.float32 and y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max() + 1e-5
    np.testing.assert_allclose(one[0], y[0], rtol=1e-4, atol=1e-4)   # dynamic batch: 1 and 8 agree


def test_int8_runs_quantized(exported_run, val_batch):
    cfg, run = exported_run
    x, meta = val_batch
    outs = {}
    for rt, file, fmt in (("onnxruntime-cpu", "model.int8.u8s8.onnx", "onnx"),
                          ("openvino", "model.int8.nncf.xml", "openvino")):
        with get_runner(rt)(_art(cfg, run, file, fmt, "int8"), meta, threads=1) as r:
            assert r.precision == "int8" and r.compute_precision.startswith("int8")
            outs[rt] = r.infer(x)
    with get_runner("onnxruntime-cpu")(_art(cfg, run, "model.fp32.onnx", "onnx", "fp32"), meta) as r:
        ref = r.infer(x)
    for rt, y in outs.items():     # int8 computed (every output differs from fp32) and is still the same model:
        rel = np.abs(y - ref).max(1) / np.abs(ref).max(1)      # this 2-epoch 32-px model's int8 logits move by a
        agree = (y.argmax(1) == ref.argmax(1)).mean()           # third to a half (one image: 1.07), its top-1 rarely
        assert rel.min() > 0 and np.median(rel) < 1.0 and agree >= 0.75, (rt, rel, agree)


def test_openvino_benches_the_ir_not_the_same_weights_again_as_onnx():
    """OpenVINO reads ONNX too, but where the IR of a precision exists the ONNX twin is not benched again; the
    NNCF INT8 IR is its INT8 file, and another target's INT8 ONNX only joins with cross_target."""
    arts = [Artifact("model.fp32.onnx", "onnx", "fp32"), Artifact("model.fp16.onnx", "onnx", "fp16"),
            Artifact("model.fp32.xml", "openvino", "fp32"),
            Artifact("model.int8.u8s8.onnx", "onnx", "int8", recipe="u8s8-qdq", target="onnxruntime-cpu"),
            Artifact("model.int8.nncf.xml", "openvino", "int8", recipe="nncf-ptq", target="openvino")]
    names = lambda rt, cross=False: [a.path for a in get_runner(rt).deployable(arts, cross)]
    assert names("openvino") == ["model.fp16.onnx", "model.fp32.xml", "model.int8.nncf.xml"]
    assert names("openvino", True) == ["model.fp16.onnx", "model.fp32.xml", "model.int8.u8s8.onnx",
                                       "model.int8.nncf.xml"]
    assert names("onnxruntime-cpu") == ["model.fp32.onnx", "model.fp16.onnx", "model.int8.u8s8.onnx"]
