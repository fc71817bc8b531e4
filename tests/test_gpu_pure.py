"""The GPU path's logic that runs without a GPU: TensorRT profile choice, engine naming, layer-precision reading,
memory accounting, timing-cache recovery, TF32 / precision options, and the IO binding of the ORT GPU runners
(run here on ORT's CPU device with a real session). What needs CUDA is in tests/test_gpu.py."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from deploybench.bench.memory import UNIFIED, device_mem_figure
from deploybench.export.tensorrt import engine_file, load_timing_cache, profile_batches, superseded
from deploybench.runtimes.onnxruntime import (CUDA_OPTS, TF32_ENV, BoundIO, cuda_ep_options, ort_trt_cache_dir,
                                              trt_ep_options)
from deploybench.runtimes.tensorrt import choose_profile, engine_memory_mb, layer_precisions, majority


def test_profile_per_bench_batch_and_choice():
    opts = profile_batches([32, 1, 8, 8, 64], max_batch=32)
    assert opts == [1, 8, 32]                       # distinct, ascending, within 1..max_batch
    assert profile_batches(None, 16) == [16]
    assert [choose_profile(opts, b) for b in (1, 8, 32)] == [0, 1, 2]    # opt == the row's batch
    assert choose_profile(opts, 5) == 1             # accuracy's partial batch: smallest opt above it
    assert choose_profile(opts, 2) == 1 and choose_profile(opts, 9) == 2
    assert choose_profile([16], 1) == 0 and choose_profile([4, 8], 40) == 1


def test_engine_name_carries_precision_gpu_and_tensorrt_version():
    a = engine_file("fp16", "nvidia-h100-80gb-hbm3", "10.8.0.43")
    assert a == "model.fp16.nvidia-h100-80gb-hbm3.trt10.8.0.engine"
    assert engine_file("fp16", "nvidia-h100-80gb-hbm3", "10.9.0.34") != a       # an upgrade builds a new engine
    assert engine_file("int8", "nvidia-h100-80gb-hbm3", "10.8.0.43") != a


def _layer(kind, dtype, param=""):
    return {"Name": kind, "LayerType": kind, "ParameterType": param,
            "Inputs": [{"Name": "x", "Location": "Device", "Dimensions": [8, 64, 28, 28], "Format/Datatype": dtype}],
            "Outputs": [{"Name": "y", "Format/Datatype": "Row major linear FP32"}]}


def test_compute_precision_from_engine_inspector_json():
    int8 = {"Layers": [_layer("CaskConvolution", "Thirty-two wide channel vectorized row major Int8 format",
                              "Convolution")] * 5
            + [_layer("CaskGemm", "Row major linear FP32", "FullyConnected"),
               _layer("Reformat", "Row major linear FP32"), _layer("Softmax", "Row major linear FP32")]}
    hist = layer_precisions(int8)
    assert hist == {"int8": 5, "fp32": 1}           # math layers only, by the type they read
    assert majority(hist) == "int8"
    fp16 = {"Layers": [_layer("CaskConvolution", "Channel major FP16 format where channel % 8 == 0",
                              "Convolution")] * 3}
    assert majority(layer_precisions(fp16)) == "fp16"
    elementwise = {"Layers": [_layer("PointWise", "Row major linear FP32")]}
    assert layer_precisions(elementwise) == {"fp32": 1}       # no math layer: every layer counts
    names_only = {"Layers": ["conv1 + relu", "fc"], "Bindings": ["input", "logits"]}  # not built DETAILED
    assert layer_precisions(names_only) == {} and majority({}) is None


def test_device_memory_figure_and_tensorrt_accounting():
    assert device_mem_figure(1000.0, [1600.0, 1750.5], "nvml-device") == (750.5, "nvml-device-delta")
    assert device_mem_figure(900.0, [850.0], "cudart-meminfo") == (0.0, "cudart-meminfo-delta")   # never < 0
    assert device_mem_figure(None, [], "", unified=True, host_peak_mb=812.34) == (812.3, UNIFIED)
    assert device_mem_figure(None, [], "", accounting_mb=42.04) == (42.0, "tensorrt-accounting")
    mb, why = device_mem_figure(None, [None], "")
    assert mb is None and why.startswith("unmeasured")
    acc = engine_memory_mb(20 * 2**20, 6 * 2**20, 2**19)
    assert acc == {"weights_mb": 20.0, "activations_mb": 6.0, "io_mb": 0.5, "total_mb": 26.5}
    assert engine_memory_mb(None, 6 * 2**20, 0)["total_mb"] is None


class _Cache:
    def __init__(self, blob):
        self.blob = blob

    def serialize(self):
        return self.blob


class _Config:
    """Stands in for tensorrt.IBuilderConfig (not installable here): create_timing_cache raises on a blob it
    cannot parse, as TensorRT does; set_timing_cache returns False for a cache of another GPU/version."""

    def __init__(self, accept=True):
        self.accept, self.cache = accept, None

    def create_timing_cache(self, blob: bytes):
        if blob and not blob.startswith(b"TRTC"):
            raise RuntimeError("invalid timing cache")
        return _Cache(blob)

    def set_timing_cache(self, cache, ignore_mismatch):
        assert ignore_mismatch is False
        if cache.blob and not self.accept:
            return False
        self.cache = cache
        return True


def test_corrupt_timing_cache_is_discarded_and_rebuilt(tmp_path, caplog):
    path = tmp_path / "trt_timing.cache"
    assert load_timing_cache(_Config(), path) == "new"
    path.write_bytes(b"TRTC good")
    cfg = _Config()
    assert load_timing_cache(cfg, path) == "loaded" and cfg.cache.blob == b"TRTC good" and path.exists()
    path.write_bytes(b"\x00garbage")
    cfg = _Config()
    with caplog.at_level(logging.WARNING):
        status = load_timing_cache(cfg, path)
    assert status.startswith("discarded: RuntimeError") and "timing cache" in caplog.text
    assert not path.exists() and cfg.cache.blob == b""          # deleted; the build starts from an empty cache
    path.write_bytes(b"TRTC other gpu")
    cfg = _Config(accept=False)
    assert load_timing_cache(cfg, path).startswith("discarded: TensorRT rejected") and cfg.cache.blob == b""


def test_tf32_and_precision_options_follow_the_artifact(tmp_path):
    assert CUDA_OPTS == {"use_tf32": "0"} and TF32_ENV == ("NVIDIA_TF32_OVERRIDE", "0")
    assert cuda_ep_options(1234) == {"use_tf32": "0", "user_compute_stream": "1234"}
    flags = {p: trt_ep_options(p, tmp_path, 7) for p in ("fp32", "fp16", "int8")}
    assert [(f["trt_fp16_enable"], f["trt_int8_enable"]) for f in flags.values()] == \
        [("0", "0"), ("1", "0"), ("0", "1")]
    assert flags["fp32"]["user_compute_stream"] == "7" and flags["fp32"]["trt_engine_cache_path"] == str(tmp_path)
    a = ort_trt_cache_dir(tmp_path, "nvidia-a100", "1.22.0")
    assert a != ort_trt_cache_dir(tmp_path, "nvidia-a100", "1.23.0") and "notf32" in a.name


@pytest.fixture(scope="module")
def gemm_onnx(tmp_path_factory):
    """A real ONNX model with a dynamic batch: logits = x @ W + b."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["logits"])], "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    path = tmp_path_factory.mktemp("onnx") / "gemm.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path, w, b


def test_bound_io_reuses_preallocated_values_across_shapes(gemm_onnx):
    """BoundIO is the timed region of onnxruntime-cuda/-trt; on ORT's CPU device it runs here unchanged."""
    import onnxruntime as ort

    path, w, b = gemm_onnx
    io = BoundIO(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), "cpu")
    rng = np.random.default_rng(1)
    outs, ptrs = [], {}
    for n in (8, 1, 8, 1, 8):
        x = rng.standard_normal((n, 6)).astype(np.float32)
        io.stage(x)
        io.run()
        y = io.fetch()
        np.testing.assert_allclose(y, x @ w + b, rtol=1e-5, atol=1e-5)
        xin, yout = io.values[(n, 6)]
        ptrs.setdefault(n, set()).add((xin.data_ptr(), yout.data_ptr()))
        outs.append(y)
    assert set(io.values) == {(8, 6), (1, 6)}
    assert all(len(p) == 1 for p in ptrs.values())          # one input and one output buffer per shape, reused
    assert not np.shares_memory(outs[0], outs[2])           # each call's logits are the caller's own copy


def test_cuda_runtime_errors_name_the_call():
    """cuda-python's (err, *values) convention; runs wherever cuda-python is installed, driver or not."""
    rt = pytest.importorskip("cuda.bindings.runtime", reason="cuda-python not installed")
    from deploybench.runtimes.cuda import CudaError, check

    assert check((rt.cudaError_t.cudaSuccess, 5), "cudaGetDeviceCount") == 5
    assert check((rt.cudaError_t.cudaSuccess, 1, 2), "cudaMemGetInfo") == (1, 2)
    with pytest.raises(CudaError, match=r"cudaMalloc\(16\) failed: cudaErrorMemoryAllocation"):
        check((rt.cudaError_t.cudaErrorMemoryAllocation, None), "cudaMalloc(16)")


def test_engines_of_another_tensorrt_version_are_superseded():
    current = engine_file("fp16", "nvidia-h100", "10.9.0.34")
    assert superseded(engine_file("fp16", "nvidia-h100", "10.8.0.43"), current)
    assert superseded("model.fp16.nvidia-h100.engine", current)            # the name used before versions
    assert not superseded(current, current)
    assert not superseded(engine_file("fp16", "nvidia-h100-nvl", "10.8.0.43"), current)   # another GPU's engine
    assert not superseded(engine_file("fp32", "nvidia-h100", "10.8.0.43"), current)
    assert not superseded("model.fp16.onnx", current)


def test_gpu_jobs_prepare_alone():
    """Workers prepare in parallel groups, but a GPU job's device-level memory delta needs the GPU to itself."""
    from types import SimpleNamespace

    from deploybench.bench.stage import prepare_groups

    jobs = [SimpleNamespace(runtime=r, n=i) for i, r in enumerate(
        ["tensorrt", "onnxruntime-cpu", "tensorrt", "openvino", "onnxruntime-cuda", "torch", "onnxruntime-trt"])]
    groups = [[j.n for j in g] for g in prepare_groups(jobs, parallel=2)]
    assert groups == [[1, 3], [5], [0], [2], [4], [6]]


def test_tensorrt_rows_get_their_own_accuracy_pass():
    """TensorRT runs each batch size on its own profile's tactics, so each of its rows measures accuracy and parity
    itself; CPU runtimes run the same kernels at every batch size and share one pass per artifact x runtime."""
    from types import SimpleNamespace

    from deploybench.bench.stage import accuracy_key

    def keys(runtime):
        return {accuracy_key(SimpleNamespace(artifact=SimpleNamespace(path="m.onnx"), runtime=runtime, batch_size=b))
                for b in (1, 16)}

    assert len(keys("tensorrt")) == 2
    assert len(keys("onnxruntime-cpu")) == len(keys("openvino")) == len(keys("torch")) == 1
