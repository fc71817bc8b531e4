"""ONNX Runtime runners: CPU, CUDA and TensorRT execution providers; they run the ONNX artifact as it is."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from .base import Runner, as_batch
from .ort_graph import graph_precision

GPU_HINT = "onnxruntime-gpu not installed (pip install deploybench[gpu])"


class OrtCpuRunner(Runner):
    """CPUExecutionProvider, sequential execution, intra-op threads = `threads`, all graph optimizations.

    `precision` is the artifact's; `compute_precision` is read from the graph ORT optimized at load
    (ort_graph.graph_precision). An fp16 file computes in fp32 here: ORT casts to fp32 around the nodes that have
    no fp16 CPU kernel, folds the casts into the weights and drops the cast pairs between layers, so only the
    weights are fp16-rounded. Option `profile=True` turns on ORT's session profiling (bench/profile.py only, never
    for timing).
    """
    name = "onnxruntime-cpu"
    formats = ("onnx",)
    packages = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino")
    provider = "CPUExecutionProvider"

    def _providers(self) -> list:
        return [self.provider]

    def __enter__(self) -> "OrtCpuRunner":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = self.threads or 0
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if self.options.get("profile"):
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"deploybench-ort-{os.getpid()}")
        with tempfile.TemporaryDirectory(prefix="deploybench-ort-") as tmp:
            if self.provider == OrtCpuRunner.provider:    # GPU runners read their precision their own way
                so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
                so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights")
                so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
            self.session = ort.InferenceSession(str(self.path), so, providers=self._providers())
            if so.optimized_model_filepath:
                self.compute_precision = graph_precision(so.optimized_model_filepath)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: as_batch(batch)})[0]
        return out.astype(np.float32, copy=False)

    def __exit__(self, *exc) -> None:
        self.session = None

    def op_profile(self, infer, warmup: int, iterations: int) -> list[list[dict]]:
        """Node kernel events of ORT's session profiling trace, grouped by model run (the trace file is removed)."""
        for _ in range(warmup + iterations):
            infer()
        path = Path(self.session.end_profiling())
        events = json.loads(path.read_text())
        path.unlink()
        spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")
        runs: list[list[dict]] = [[] for _ in spans]
        for e in events:
            if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
                continue
            i = next((i for i, (a, b) in enumerate(spans) if a <= e["ts"] <= b), None)
            if i is not None:
                args = e.get("args", {})
                first_input = (args.get("input_type_shape") or [{}])[0]
                runs[i].append({"node": e["name"][:-len("_kernel_time")], "op_type": args.get("op_name", "?"),
                                "us": float(e["dur"]), "exec_type": next(iter(first_input), "")})
        return runs[warmup:]


# ONNX Runtime GPU providers. Options: https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html
# and https://onnxruntime.ai/docs/execution-providers/TensorRT-ExecutionProvider.html ; IO binding:
# https://onnxruntime.ai/docs/api/python/api_summary.html#iobinding

# CUDA EP `use_tf32: 0`: fp32 MatMul/GEMM and cuDNN Conv compute in fp32, not TF32 (ORT's default on Ampere+).
CUDA_OPTS = {"use_tf32": "0"}
# The TensorRT EP has no TF32 option (microsoft/onnxruntime#26029, open); NVIDIA's documented override is this
# environment variable, read when TensorRT / cuBLAS / cuDNN initialize, so it must be set before the session.
TF32_ENV = ("NVIDIA_TF32_OVERRIDE", "0")


def cuda_ep_options(stream: int) -> dict:
    """CUDA EP options: TF32 off; `user_compute_stream` (implies has_user_compute_stream) = our stream, so CUDA
    events recorded on it bracket the run."""
    return {**CUDA_OPTS, "user_compute_stream": str(stream)}


def trt_ep_options(precision: str, cache_dir: Path, stream: int) -> dict:
    """TensorRT EP options: fp16 / int8 enabled only when the artifact holds that precision (int8 comes from the
    QDQ graph, no calibration table), engine and timing caches under `cache_dir`, compute on `stream`."""
    return {"trt_fp16_enable": "1" if precision == "fp16" else "0",
            "trt_int8_enable": "1" if precision == "int8" else "0",
            "trt_engine_cache_enable": "1", "trt_engine_cache_path": str(cache_dir),
            "trt_timing_cache_enable": "1", "trt_timing_cache_path": str(cache_dir),
            "user_compute_stream": str(stream)}


def ort_trt_cache_dir(base: Path, gpu: str, ort_version: str) -> Path:
    """Engine-cache folder keyed by GPU, ONNX Runtime version and TF32 setting: the TensorRT EP does not notice
    an upgrade or a TF32 change and would reuse a stale engine (TensorRT-ExecutionProvider.html, engine cache)."""
    return Path(base) / f"{gpu}-ort{ort_version}-notf32"


_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class BoundIO:
    """IO binding with pre-allocated OrtValues on `device`, one input/output pair per input shape: `stage()`
    copies the batch into the input OrtValue (OrtValue.update_inplace), `run()` runs the session on the bound
    values, `fetch()` copies the output to the host (IOBinding.copy_outputs_to_cpu). The first run of a shape
    lets ORT allocate the output (bind_output on the device); that OrtValue is kept and bound from then on."""

    def __init__(self, session, device: str, device_id: int = 0):
        self.session, self.device, self.device_id = session, device, device_id
        self.binding = session.io_binding()
        self.inp, self.out = session.get_inputs()[0], session.get_outputs()[0]
        self.in_dtype = _NP.get(self.inp.type, np.float32)
        self.values: dict[tuple, list] = {}       # shape -> [input OrtValue, output OrtValue or None]
        self.bound: Optional[tuple] = None

    def stage(self, batch: np.ndarray) -> None:
        import onnxruntime as ort

        shape = tuple(batch.shape)
        if shape not in self.values:
            x = ort.OrtValue.ortvalue_from_shape_and_type(shape, self.in_dtype, self.device, self.device_id)
            self.values[shape] = [x, None]
        x, y = self.values[shape]
        if self.bound != shape:
            self.binding.bind_ortvalue_input(self.inp.name, x)
            if y is None:
                self.binding.bind_output(self.out.name, self.device, self.device_id)
            else:
                self.binding.bind_ortvalue_output(self.out.name, y)
            self.bound = shape
        x.update_inplace(np.ascontiguousarray(batch, dtype=self.in_dtype))

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding)
        pair = self.values[self.bound]
        if pair[1] is None:
            pair[1] = self.binding.get_outputs()[0]
            self.binding.bind_ortvalue_output(self.out.name, pair[1])

    def fetch(self) -> np.ndarray:
        return self.binding.copy_outputs_to_cpu()[0].astype(np.float32, copy=False)


class OrtCudaRunner(OrtCpuRunner):
    """CUDAExecutionProvider with the timed region of the tensorrt runner: pre-allocated device OrtValues bound
    once per shape (BoundIO), the batch copied in and the logits copied back on every call, and CUDA events on
    the session's compute stream around the run for `device_time_ms`. TF32 is off; precision is the artifact's
    (ORT does not report the precision its kernels computed in)."""
    op_profile = Runner.op_profile      # ORT's trace times kernel launches on the host, not the GPU: no profile
    name = "onnxruntime-cuda"
    provider = "CUDAExecutionProvider"
    device_kind = "cuda"
    tf32 = "off (CUDA EP use_tf32=0)"

    def _providers(self) -> list:
        return [(self.provider, cuda_ep_options(self.stream.handle))]

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError:
            return False, GPU_HINT
        providers = ort.get_available_providers()
        if "CUDAExecutionProvider" not in providers:
            return False, GPU_HINT
        if cls.provider not in providers:
            return False, f"{cls.provider} not in this onnxruntime build (needs the TensorRT libraries)"
        from .cuda import cuda_available

        return cuda_available()

    def __enter__(self) -> "OrtCudaRunner":
        from .cuda import EventTimer, Stream

        self.stream, self.timer = Stream(blocking=True), EventTimer()   # blocking: ORT copies on stream 0
        super().__enter__()
        if self.session.get_providers()[0] != self.provider:
            raise RuntimeError(f"{self.provider} did not load (session providers: {self.session.get_providers()})")
        self.io = BoundIO(self.session, "cuda")
        self.compute_precision = self.artifact.precision
        self.options_used = {"tf32": self.tf32, "io_binding": "pre-allocated cuda OrtValues",
                             "compute_precision_source": "artifact precision (ORT does not report kernel precision)",
                             **self._extra_options()}
        return self

    def _extra_options(self) -> dict:
        return {}

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.io.stage(as_batch(batch))
        self.timer.record_start(self.stream)
        self.io.run()
        self.timer.record_end(self.stream)
        out = self.io.fetch()
        self.device_time_ms = self.timer.elapsed_ms()
        return out

    def __exit__(self, *exc) -> None:
        super().__exit__(*exc)
        self.io = None
        for res in (getattr(self, "timer", None), getattr(self, "stream", None)):
            if res is not None:
                res.destroy()
        self.timer = self.stream = None


class OrtTrtRunner(OrtCudaRunner):
    """TensorrtExecutionProvider (CUDA EP fallback for unsupported nodes), same timed region as OrtCudaRunner.
    fp16 / int8 enabled only for fp16 / int8 artifacts; TF32 off through NVIDIA_TF32_OVERRIDE=0 (set in this
    process before the session: the EP has no option for it). Engines are cached under option `cache_dir`
    (default: beside the artifact, per GPU and ORT version); the EP builds its engines per input shape."""
    name = "onnxruntime-trt"
    provider = "TensorrtExecutionProvider"
    tf32 = "off (NVIDIA_TF32_OVERRIDE=0; the TensorRT EP has no TF32 option)"

    def _cache_dir(self) -> Path:
        import onnxruntime as ort

        from .cuda import gpu_slug

        cache: Optional[str] = self.options.get("cache_dir")
        return Path(cache) if cache else ort_trt_cache_dir(self.path.parent / "ort_trt_cache", gpu_slug(),
                                                           ort.__version__)

    def _providers(self) -> list:
        import os

        os.environ[TF32_ENV[0]] = TF32_ENV[1]
        cache_dir = self._cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.trt_opts = trt_ep_options(self.artifact.precision, cache_dir, self.stream.handle)
        return [(self.provider, self.trt_opts), ("CUDAExecutionProvider", cuda_ep_options(self.stream.handle))]

    def _extra_options(self) -> dict:
        return {k: v for k, v in self.trt_opts.items() if k in ("trt_fp16_enable", "trt_int8_enable",
                                                                "trt_engine_cache_path")}
