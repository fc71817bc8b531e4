"""GPU path on the exported run: TensorRT engines (strongly typed, every precision), the tensorrt runner and the
onnxruntime-cuda runner. Skipped with the runner's own reason where TensorRT / onnxruntime-gpu / CUDA is absent."""
from __future__ import annotations

import numpy as np
import pytest

from deploybench.io import read_json
from deploybench.records import Artifact
from deploybench.runtimes import get_runner

pytestmark = pytest.mark.gpu


def _need(name: str) -> None:
    ok, reason = get_runner(name).available()
    if not ok:
        pytest.skip(f"{name}: {reason}")


@pytest.fixture(scope="module")
def engines(exported_run):
    _need("tensorrt")
    from deploybench.export import export_run

    cfg, run = exported_run
    res = export_run(run, cfg.root, cfg.export, formats=["tensorrt"], precisions=["fp32", "fp16", "int8"],
                     max_batch=8)
    assert res.status in ("done", "skipped"), res.reason
    data = read_json(run.engine_dir(cfg.root) / "export.json")
    return cfg, run, data["meta"], {a["precision"]: a for a in data["artifacts"] if a["format"] == "tensorrt"}


def _val(run, meta, n=8):
    from deploybench.data import load_array

    x, _ = load_array(run.dataset, "val", limit=n, image_size=meta["image_size"], mean=meta["mean"], std=meta["std"])
    return x


def test_engines_built_with_parity(engines):
    cfg, run, _, trt = engines
    out = run.engine_dir(cfg.root)
    for prec, a in trt.items():
        assert a["status"] == "ok", a
        assert (out / a["file"]).is_file() and (out / a["file"]).with_suffix(".build.log").is_file()
    assert (out / "trt_timing.cache").is_file()
    assert trt["fp32"]["parity"]["max_rel_err"] < 1e-3 and trt["fp32"]["parity"]["top1_agree"] == 1.0
    assert trt["fp16"]["parity"]["max_rel_err"] < 2e-2
    assert trt["int8"]["parity"]["top1_agree"] >= 0.8


@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_tensorrt_runner(engines, cuda_graphs):
    cfg, run, meta, trt = engines
    x = _val(run, meta)
    art = Artifact(str(run.engine_dir(cfg.root) / trt["fp32"]["file"]), "tensorrt", "fp32", run.run_id)
    with get_runner("onnxruntime-cpu")(Artifact(str(run.engine_dir(cfg.root) / "model.fp32.onnx"), "onnx",
                                                "fp32"), meta) as r:
        ref = r.infer(x)
    with get_runner("tensorrt")(art, meta, cuda_graphs=cuda_graphs) as r:
        for _ in range(2):                       # second call replays the captured graph
            y8, y1 = r.infer(x), r.infer(x[:1])
        assert r.precision == "fp32" and r.device_time_ms > 0
    assert np.abs(y8 - ref).max() < 1e-3 * np.abs(ref).max()
    np.testing.assert_allclose(y1[0], y8[0], rtol=1e-3, atol=1e-3)


def test_onnxruntime_cuda_runner(exported_run):
    _need("onnxruntime-cuda")
    cfg, run = exported_run
    meta = read_json(run.engine_dir(cfg.root) / "export.json")["meta"]
    x = _val(run, meta)
    outs = {}
    for rt in ("onnxruntime-cpu", "onnxruntime-cuda"):
        for prec in ("fp32", "fp16"):
            art = Artifact(str(run.engine_dir(cfg.root) / f"model.{prec}.onnx"), "onnx", prec)
            with get_runner(rt)(art, meta) as r:
                outs[rt, prec] = r.infer(x)
    ref = outs["onnxruntime-cpu", "fp32"]
    assert np.abs(outs["onnxruntime-cuda", "fp32"] - ref).max() < 1e-3 * np.abs(ref).max()
    assert np.abs(outs["onnxruntime-cuda", "fp16"] - ref).max() < 2e-2 * np.abs(ref).max()
