"""Export stage on a real fine-tuned run: artifacts, export.json, parity thresholds, idempotency, skips."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from deploybench.errors import DeployBenchError
from deploybench.export import export_run
from deploybench.export.parity import parity_stats
from deploybench.io import read_json
from deploybench.runtimes.tensorrt import TensorRTRunner

FILES = ["model.fp32.onnx", "model.fp16.onnx", "model.int8.s8s8.onnx", "model.int8.u8s8.onnx", "model.fp32.xml",
         "model.fp16.xml", "model.int8.nncf.xml"]
BY_FORMAT = {"onnx": ("model.fp32.onnx", "model.fp16.onnx", ["model.int8.s8s8.onnx", "model.int8.u8s8.onnx"]),
             "openvino": ("model.fp32.xml", "model.fp16.xml", ["model.int8.nncf.xml"])}


@pytest.fixture(scope="module")
def manifest(exported_run):
    cfg, run = exported_run
    data = read_json(run.engine_dir(cfg.root) / "export.json")
    return {a["file"]: a for a in data["artifacts"]}, data


def test_artifacts_and_schema(exported_run, manifest):
    cfg, run = exported_run
    arts, data = manifest
    out = run.engine_dir(cfg.root)
    assert data["run_id"] == run.run_id and data["meta"]["status"] == "complete"
    for f in FILES:
        a = arts[f]
        assert a["status"] == "ok", a
        assert (out / f).is_file() and a["size_mb"] > 0 and a["seconds"] > 0
        assert set(a) >= {"file", "format", "precision", "recipe", "target", "size_mb", "status", "reason",
                          "seconds", "parity"}
        assert a["parity"]["images"] == cfg.export.parity_images
    assert (out / "model.fp32.bin").is_file()
    for f in ("model.int8.s8s8.onnx", "model.int8.u8s8.onnx"):
        assert arts[f]["size_mb"] < 0.5 * arts["model.fp32.onnx"]["size_mb"]
    assert arts["model.fp16.onnx"]["size_mb"] < 0.6 * arts["model.fp32.onnx"]["size_mb"]


@pytest.fixture(scope="module")
def fp16_sensitivity(exported_run, manifest):
    """max_rel_err of the PyTorch model itself when only its weights and buffers are rounded to fp16.

    A short fine-tune at 32 px leaves BatchNorm channels with near-zero running variance, which amplify tiny
    perturbations: such a model cannot meet a fixed 1e-2 fp16 bound however it is converted, so the fp16
    artifact is held to max(1e-2, 2 x this intrinsic error) instead.
    """
    import torch

    from deploybench.data import load_array
    from deploybench.export.parity import torch_logits
    from deploybench.finetune import load_checkpoint

    cfg, run = exported_run
    model, meta = load_checkpoint(run.ckpt_dir(cfg.root))
    x, _ = load_array(run.dataset, "val", limit=cfg.export.parity_images, image_size=meta.image_size,
                      mean=meta.mean, std=meta.std)
    ref = torch_logits(model, x)
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(t.half().float())
    return parity_stats(torch_logits(model, x), ref)["max_rel_err"]


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_parity_thresholds(manifest, fmt, fp16_sensitivity):
    arts, _ = manifest
    f32, f16, i8 = BY_FORMAT[fmt]
    fp32, fp16 = arts[f32]["parity"], arts[f16]["parity"]
    assert fp32["max_rel_err"] < 1e-3 and fp32["top1_agree"] == 1.0 and fp32["top1_delta"] == 0.0
    assert 0 < fp16["max_rel_err"] < max(1e-2, 2 * fp16_sensitivity) and fp16["top1_agree"] >= 0.9
    # a 2-epoch 32 px model has near-tied logits, so agreement on 16 images is loose (test_int8.py: the budget)
    for int8 in (arts[f]["parity"] for f in i8):
        assert 0 < int8["max_rel_err"] and int8["top1_agree"] >= 0.4
    assert fp32["median_rel_err"] <= fp32["max_rel_err"]


def test_onnx_loads_in_both_runtimes(exported_run, manifest):
    from deploybench.records import Artifact
    from deploybench.runtimes import get_runner

    cfg, run = exported_run
    _, data = manifest
    size = data["meta"]["image_size"]
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    for file in ("model.fp32.onnx", "model.fp16.onnx", *BY_FORMAT["onnx"][2]):
        art = Artifact(str(run.engine_dir(cfg.root) / file), "onnx", file.split(".")[1])
        outs = []
        for rt in ("onnxruntime-cpu", "openvino"):
            with get_runner(rt)(art, data["meta"], threads=1) as r:
                outs.append(r.infer(x))
        assert outs[0].shape == (2, data["meta"]["num_classes"]) and np.isfinite(outs).all()


def test_idempotent(exported_run):
    cfg, run = exported_run
    out = run.engine_dir(cfg.root)
    before = {f: (out / f).stat().st_mtime_ns for f in FILES}
    res = export_run(run, cfg.root, cfg.export, formats=["onnx", "openvino"], precisions=["fp32", "fp16", "int8"])
    assert res.status == "skipped", res
    assert {f: (out / f).stat().st_mtime_ns for f in FILES} == before


def test_missing_artifact_is_rebuilt(exported_run):
    cfg, run = exported_run
    out = run.engine_dir(cfg.root)
    keep = (out / "model.fp32.onnx").stat().st_mtime_ns
    (out / "model.fp16.xml").with_suffix(".bin").unlink()
    res = export_run(run, cfg.root, cfg.export, formats=["openvino"], precisions=["fp32", "fp16"])
    assert res.status == "done", res
    assert (out / "model.fp16.bin").is_file() and (out / "model.fp32.onnx").stat().st_mtime_ns == keep


def test_tensorrt_skipped_without_gpu(exported_run):
    ok, reason = TensorRTRunner.available()
    if ok:
        pytest.skip("TensorRT and CUDA are available here: tests/test_gpu.py builds real engines")
    cfg, run = exported_run
    res = export_run(run, cfg.root, cfg.export, formats=["tensorrt"], precisions=["fp32", "int8"])
    assert res.status == "skipped" and reason in res.reason
    arts = read_json(run.engine_dir(cfg.root) / "export.json")["artifacts"]
    trt = [a for a in arts if a["format"] == "tensorrt"]
    assert {a["precision"] for a in trt} >= {"fp32", "int8"}
    assert all(a["status"] == "skipped" and a["reason"] == reason and a["parity"] is None for a in trt)
    assert not list(run.engine_dir(cfg.root).glob("*.engine"))


def test_missing_checkpoint_fails(tiny_cfg, trained_run):
    _, run = trained_run
    other = dataclasses.replace(run, seed=run.seed + 99)
    res = export_run(other, tiny_cfg.root, tiny_cfg.export)
    assert res.status == "failed" and "meta.json" in res.reason and other.run_id in res.reason


def test_unknown_precision(tiny_cfg, trained_run):
    _, run = trained_run
    with pytest.raises(DeployBenchError, match="export.precisions: unknown 'int4'"):
        export_run(run, tiny_cfg.root, tiny_cfg.export, precisions=["int4"])


def test_parity_stats_definition():
    ref = np.array([[1.0, -4.0, 2.0], [0.5, 0.2, 0.1]])
    out = np.array([[1.2, -4.0, 2.0], [0.1, 0.2, 0.1]])
    s = parity_stats(out, ref, labels=np.array([1, 0]))
    assert s["max_rel_err"] == pytest.approx(0.4 / 0.5)          # sample 2: |0.1-0.5| / max|ref| = 0.8
    assert s["median_rel_err"] == pytest.approx((0.2 / 4 + 0.8) / 2)
    assert s["top1_agree"] == 0.5                                 # sample 2: argmax moves 0 -> 1
    assert s["top1_delta"] == pytest.approx(-50.0)                # torch right on sample 2, artifact wrong


def test_onnx_matches_torch_where_onnxslim_breaks_same_padding(tmp_path):
    """tf_efficientnet_lite0 at 56 px: onnxslim once returned a graph 99 % off; the export must catch it."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from deploybench.backbones import create_backbone
    from deploybench.export.onnx import export_onnx

    model = create_backbone("efficientnet_lite0", 10, weights="none", image_size=56).eval()
    export_onnx(model, tmp_path / "m.onnx", 56)
    x = torch.randn(3, 3, 56, 56)
    with torch.no_grad():
        ref = model(x).numpy()
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    assert np.abs(got - ref).max() <= 1e-3 * np.abs(ref).max()
