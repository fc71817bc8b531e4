"""GPU path on the exported run: TensorRT engines (strongly typed, every precision, one profile per batch size),
the tensorrt runner and the onnxruntime-cuda/-trt runners, and device-level GPU memory. Skipped with the
runner's own reason where TensorRT / onnxruntime-gpu / CUDA is absent (the logic that needs no GPU is in
tests/test_gpu_pure.py)."""
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
def engines(request):
    _need("tensorrt")                            # before the fine-tune fixture, so a skip costs nothing
    from deploybench.export import export_run

    cfg, run = request.getfixturevalue("exported_run")
    res = export_run(run, cfg.root, cfg.export, formats=["tensorrt"], precisions=["fp32", "fp16", "int8"],
                     max_batch=8, opt_batches=[1, 8])
    assert res.status in ("done", "skipped"), res.reason
    data = read_json(run.engine_dir(cfg.root) / "export.json")
    return cfg, run, data["meta"], {a["precision"]: a for a in data["artifacts"] if a["format"] == "tensorrt"}


def _val(run, meta, n=8):
    from deploybench.data import load_array

    x, _ = load_array(run.dataset, "val", limit=n, image_size=meta["image_size"], mean=meta["mean"], std=meta["std"])
    return x


def _reference(cfg, run, meta, x):
    art = Artifact(str(run.engine_dir(cfg.root) / "model.fp32.onnx"), "onnx", "fp32")
    with get_runner("onnxruntime-cpu")(art, meta) as r:
        return r.infer(x)


def test_engines_built_with_parity(engines):
    from deploybench.export.tensorrt import engine_file

    cfg, run, _, trt = engines
    out = run.engine_dir(cfg.root)
    for prec, a in trt.items():
        assert a["status"] == "ok", a
        assert a["file"] == engine_file(prec)             # precision, GPU and TensorRT version in the name
        assert (out / a["file"]).is_file() and (out / a["file"]).with_suffix(".build.log").is_file()
    assert (out / "trt_timing.cache").is_file()
    assert trt["fp32"]["parity"]["max_rel_err"] < 1e-3 and trt["fp32"]["parity"]["top1_agree"] == 1.0
    assert trt["fp16"]["parity"]["max_rel_err"] < 2e-2
    assert trt["int8"]["parity"]["top1_agree"] >= 0.8


@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_tensorrt_runner_profiles(engines, cuda_graphs):
    cfg, run, meta, trt = engines
    x = _val(run, meta)
    ref = _reference(cfg, run, meta, x)
    art = Artifact(str(run.engine_dir(cfg.root) / trt["fp32"]["file"]), "tensorrt", "fp32", run.run_id)
    with get_runner("tensorrt")(art, meta, cuda_graphs=cuda_graphs) as r:
        assert r.opts == [1, 8]
        for _ in range(2):                       # second call replays the captured graph
            y8 = r.infer(x)
            assert (r.options_used["profile"], r.options_used["profile_opt"]) == (1, 8)
            y1 = r.infer(x[:1])
            assert (r.options_used["profile"], r.options_used["profile_opt"]) == (0, 1)
        y5 = r.infer(x[:5])                      # a partial batch runs on the smallest profile above it
        assert r.options_used["profile_opt"] == 8
        assert r.precision == "fp32" and r.compute_precision == "fp32" and r.device_time_ms > 0
        assert r.options_used["compute_precision_source"] == "engine inspector"
        acc = r.memory_accounting()
        assert acc["activations_mb"] > 0 and acc["io_mb"] > 0
    assert np.abs(y8 - ref).max() < 1e-3 * np.abs(ref).max()
    np.testing.assert_allclose(y1[0], y8[0], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(y5, y8[:5], rtol=1e-3, atol=1e-3)


def test_tensorrt_compute_precision_from_inspector(engines):
    cfg, run, meta, trt = engines
    for prec in ("fp16", "int8"):
        art = Artifact(str(run.engine_dir(cfg.root) / trt[prec]["file"]), "tensorrt", prec, run.run_id)
        with get_runner("tensorrt")(art, meta) as r:
            assert r.compute_precision == prec, r.options_used["layer_precisions"]


def test_tensorrt_set_input_shape_failure_names_shape_and_profile(engines):
    cfg, run, meta, trt = engines
    art = Artifact(str(run.engine_dir(cfg.root) / trt["fp32"]["file"]), "tensorrt", "fp32", run.run_id)
    x = np.zeros((9, *_val(run, meta, 1).shape[1:]), np.float32)     # above the engines' max batch (8)
    with get_runner("tensorrt")(art, meta) as r:
        with pytest.raises(RuntimeError, match=r"set_input_shape.*\(9, .*profile 1"):
            r.infer(x)


@pytest.mark.parametrize("runtime", ["onnxruntime-cuda", "onnxruntime-trt"])
def test_onnxruntime_gpu_runners(request, runtime):
    _need(runtime)
    cfg, run = request.getfixturevalue("exported_run")
    meta = read_json(run.engine_dir(cfg.root) / "export.json")["meta"]
    x = _val(run, meta)
    ref = _reference(cfg, run, meta, x)
    for prec, tol in (("fp32", 1e-3), ("fp16", 2e-2)):
        art = Artifact(str(run.engine_dir(cfg.root) / f"model.{prec}.onnx"), "onnx", prec)
        with get_runner(runtime)(art, meta) as r:
            y8, y1, y8b = r.infer(x), r.infer(x[:1]), r.infer(x)
            assert r.device_time_ms > 0 and r.compute_precision == prec
            assert r.options_used["tf32"].startswith("off")
        assert np.abs(y8 - ref).max() < tol * np.abs(ref).max()
        np.testing.assert_allclose(y8b, y8, rtol=1e-5, atol=1e-5)     # pre-allocated buffers reused correctly
        np.testing.assert_allclose(y1[0], y8[0], rtol=tol, atol=tol)


def test_device_memory_measured_for_a_gpu_row(engines):
    """The worker's probe: a device-level delta (NVML or cudaMemGetInfo) at least the engine's activations."""
    from deploybench.bench.memory import DeviceMemProbe

    cfg, run, meta, trt = engines
    probe = DeviceMemProbe()
    art = Artifact(str(run.engine_dir(cfg.root) / trt["fp32"]["file"]), "tensorrt", "fp32", run.run_id)
    with get_runner("tensorrt")(art, meta) as r:
        r.infer(_val(run, meta))
        probe.sample()
        mb, method = probe.figure(None, r.memory_accounting()["total_mb"])
        acc = r.memory_accounting()
    assert method in ("nvml-device-delta", "cudart-meminfo-delta", "host-vmhwm (unified memory)"), method
    if method != "host-vmhwm (unified memory)":
        assert mb >= acc["activations_mb"] + acc["io_mb"] - 1.0
