"""Native TensorRT runner (TensorRT >= 10 named-tensor API) on cuda-python: no torch in the worker process.

Per input shape it keeps pre-allocated device buffers (cudaMalloc) and a host output array; each call copies the
batch in, enqueues (execute_async_v3), copies the logits back and synchronizes, so the host-timed region is
H2D + compute + D2H (trtexec's "Host Latency"), and CUDA events around the enqueue give `device_time_ms`
(trtexec's "GPU Compute Time": docs.nvidia.com/deeplearning/tensorrt/latest/reference/command-line-programs.html).
The optimization profile whose opt equals the batch is selected (export/tensorrt.py builds one per bench batch
size). Option `cuda_graphs=True` captures one CUDA graph per profile and shape.
TensorRT Python API pages cited below are under
https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/
"""
from __future__ import annotations

import json
import re
from typing import Optional

import numpy as np

from .base import Runner, as_batch

GPU_HINT = "tensorrt not installed (pip install deploybench[tensorrt])"
MB = 2**20


def trt_version() -> tuple[int, str]:
    """(major, version string) of the importable tensorrt; raises ImportError when absent."""
    import tensorrt as trt

    return int(trt.__version__.split(".")[0]), trt.__version__


def choose_profile(opts: list[int], batch: int) -> int:
    """Index of the optimization profile whose opt batch equals `batch`; else (e.g. accuracy's last partial
    batch) the one with the smallest opt >= batch, else the largest opt. Every profile accepts 1..max batch."""
    if batch in opts:
        return opts.index(batch)
    above = [(o, i) for i, o in enumerate(opts) if o >= batch]
    return min(above)[1] if above else max((o, i) for i, o in enumerate(opts))[1]


_TYPE = re.compile(r"\b(FP32|FP16|BF16|INT8|FP8|INT4|FLOAT|HALF)\b", re.IGNORECASE)
_NAMES = {"fp32": "fp32", "float": "fp32", "fp16": "fp16", "half": "fp16", "bf16": "bf16", "int8": "int8",
          "fp8": "fp8", "int4": "int4"}
_MATH = ("Convolution", "Gemm", "MatrixMultiply", "FullyConnected")


def layer_precisions(info: dict) -> dict[str, int]:
    """{type: layers} over the math layers (convolution / GEMM / matmul) of IEngineInspector's JSON, by the data
    type of each one's first input ("Format/Datatype"), or over all layers when none is a math layer. {} when
    the engine was built without ProfilingVerbosity.DETAILED (its "Layers" are then bare names)."""
    layers = [lay for lay in info.get("Layers", []) if isinstance(lay, dict)]
    math = [lay for lay in layers
            if any(k in f"{lay.get('LayerType', '')} {lay.get('ParameterType', '')}" for k in _MATH)] or layers
    hist: dict[str, int] = {}
    for lay in math:
        inputs = lay.get("Inputs") or [{}]
        m = _TYPE.search(str(inputs[0].get("Format/Datatype", "")))
        if m:
            t = _NAMES[m.group(1).lower()]
            hist[t] = hist.get(t, 0) + 1
    return hist


def majority(hist: dict[str, int]) -> Optional[str]:
    """The type most layers compute in (None for an empty histogram)."""
    return max(hist, key=lambda t: (hist[t], t)) if hist else None


def engine_memory_mb(weights_bytes: Optional[int], activation_bytes: Optional[int], io_bytes: int) -> dict:
    """TensorRT's own device-memory accounting in MiB: weights (EngineStat.TOTAL_WEIGHTS_SIZE), activations
    (device_memory_size_v2, allocated per execution context) and the runner's I/O buffers; total is None when
    a part is unknown."""
    parts = {"weights_mb": weights_bytes, "activations_mb": activation_bytes, "io_mb": io_bytes}
    out = {k: (round(v / MB, 3) if v is not None else None) for k, v in parts.items()}
    out["total_mb"] = None if None in parts.values() else round(sum(parts.values()) / MB, 3)
    return out


class TensorRTRunner(Runner):
    """Runs `model.<prec>.<gpu>.trt<version>.engine`; precision is the artifact's (strongly typed engines)."""
    name = "tensorrt"
    formats = ("tensorrt",)
    device_kind = "cuda"
    packages = ("tensorrt", "tensorrt-cu12", "tensorrt-cu13")
    bench_options = ("cuda_graphs",)
    # each optimization profile has its own tactics, timed at its opt batch (docs.nvidia.com/deeplearning/tensorrt,
    # "Working with Dynamic Shapes", optimization profiles): a batch-1 row's outputs are not a batch-16 row's
    per_batch_numerics = True

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            major, version = trt_version()
        except ImportError:
            return False, GPU_HINT
        if major < 10:
            return False, f"TensorRT {version} is too old: deploybench needs TensorRT >= 10 (strongly typed networks)"
        from .cuda import cuda_available

        return cuda_available()

    def __enter__(self) -> "TensorRTRunner":
        import tensorrt as trt

        from .cuda import EventTimer, Stream

        self.stream, self.timer = Stream(), EventTimer()
        self.buffers: dict[tuple, tuple] = {}
        self.graphs: dict[tuple, object] = {}
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(self.path.read_bytes())   # Runtime.html
        if self.engine is None:
            raise RuntimeError(f"{self.path}: TensorRT could not deserialize it (built by another TensorRT "
                               "version or GPU? rerun deploybench export --format tensorrt)")
        self.context = self.engine.create_execution_context()     # Engine.html; uses profile 0 at first
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        modes = {n: self.engine.get_tensor_mode(n) for n in names}
        self.inp = next(n for n in names if modes[n] == trt.TensorIOMode.INPUT)
        self.out = next(n for n in names if modes[n] == trt.TensorIOMode.OUTPUT)
        self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.inp)))
        self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.out)))
        # get_tensor_profile_shape(name, i) -> [min, opt, max] (Engine.html)
        self.opts = [int(self.engine.get_tensor_profile_shape(self.inp, i)[1][0])
                     for i in range(self.engine.num_optimization_profiles)]
        self.profile, self.bound = 0, None
        hist = self._layer_precisions(trt)
        self.compute_precision = majority(hist) or self.precision
        self.options_used = {
            "profile": None, "profile_opt": None, "profile_opts": self.opts, "cuda_graphs": bool(
                self.options.get("cuda_graphs")), "tf32": "off (BuilderFlag.TF32 cleared at build)",
            "compute_precision_source": "engine inspector" if hist else
            "artifact precision (engine has no DETAILED layer information)", "layer_precisions": hist}
        return self

    def _layer_precisions(self, trt) -> dict[str, int]:
        """IEngineInspector.get_engine_information(LayerInformationFormat.JSON) (EngineInspector.html)."""
        inspector = self.engine.create_engine_inspector()
        inspector.execution_context = self.context
        try:
            return layer_precisions(json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON)))
        except ValueError:
            return {}

    def memory_accounting(self) -> dict:
        """TensorRT's figures for this engine and context (engine_memory_mb)."""
        import tensorrt as trt

        eng = self.engine
        weights = eng.get_engine_stat(trt.EngineStat.TOTAL_WEIGHTS_SIZE) if hasattr(trt, "EngineStat") else None
        act = eng.device_memory_size_v2 if hasattr(eng, "device_memory_size_v2") else eng.device_memory_size
        io = sum(x.nbytes + y.nbytes for x, y, _ in self.buffers.values())
        return engine_memory_mb(weights, act, io)

    def _bind(self, shape: tuple) -> tuple:
        """Select the profile for the batch, set the input shape and tensor addresses; (in, out, host out)."""
        from .cuda import DeviceBuffer

        p = choose_profile(self.opts, shape[0])
        key = (p, shape)
        if self.bound == key:
            return self.buffers[key]
        if p != self.profile:     # ExecutionContext.html: set_optimization_profile_async(index, stream) -> bool
            if not self.context.set_optimization_profile_async(p, self.stream.handle):
                raise RuntimeError(f"{self.path.name}: set_optimization_profile_async({p}) failed "
                                   f"(profile opts {self.opts})")
            self.profile = p
        if not self.context.set_input_shape(self.inp, shape):    # ExecutionContext.html: returns False when invalid
            lo, opt, hi = self.engine.get_tensor_profile_shape(self.inp, p)
            raise RuntimeError(f"{self.path.name}: set_input_shape('{self.inp}', {shape}) failed for optimization "
                               f"profile {p} (min {tuple(lo)}, opt {tuple(opt)}, max {tuple(hi)})")
        if key not in self.buffers:
            out_shape = tuple(self.context.get_tensor_shape(self.out))
            host = np.empty(out_shape, self.out_dtype)
            self.buffers[key] = (DeviceBuffer(int(np.prod(shape)) * self.in_dtype.itemsize),
                                 DeviceBuffer(host.nbytes), host)
        x, y, _ = self.buffers[key]
        for name, buf in ((self.inp, x), (self.out, y)):    # ExecutionContext.html: set_tensor_address
            if not self.context.set_tensor_address(name, buf.ptr):
                raise RuntimeError(f"{self.path.name}: set_tensor_address('{name}') failed")
        self.bound = key
        self.options_used.update(profile=p, profile_opt=self.opts[p], trt_memory_mb=self.memory_accounting())
        return self.buffers[key]

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):     # ExecutionContext.html
            raise RuntimeError(f"{self.path.name}: execute_async_v3 failed (see the TensorRT log on stderr)")

    def _launch(self) -> None:
        """Enqueue the engine; with cuda_graphs, replay the graph captured for this profile and shape (TensorRT
        developer guide, "CUDA Graphs": enqueue once before capturing so shape-dependent setup is not captured;
        capture with cudaStreamBeginCapture/EndCapture on a non-default stream, see runtimes/cuda.py)."""
        from .cuda import graph_capture, graph_launch

        if not self.options.get("cuda_graphs"):
            self._execute()
            return
        if self.bound not in self.graphs:
            self._execute()
            self.stream.synchronize()
            self.graphs[self.bound] = graph_capture(self.stream, self._execute)
        graph_launch(self.graphs[self.bound], self.stream)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = as_batch(batch)
        x, y, host = self._bind(tuple(batch.shape))
        x.upload(np.ascontiguousarray(batch, dtype=self.in_dtype), self.stream)
        self.timer.record_start(self.stream)
        self._launch()
        self.timer.record_end(self.stream)
        y.download(host, self.stream)
        self.stream.synchronize()
        self.device_time_ms = self.timer.elapsed_ms()
        return host.astype(np.float32)     # a copy: `host` is reused by the next call

    def __exit__(self, *exc) -> None:
        from .cuda import graph_destroy

        for g in getattr(self, "graphs", {}).values():
            graph_destroy(g)
        for x, y, _ in getattr(self, "buffers", {}).values():
            x.free()
            y.free()
        self.graphs, self.buffers = {}, {}
        self.context = self.engine = None
        for res in (getattr(self, "timer", None), getattr(self, "stream", None)):
            if res is not None:
                res.destroy()
        self.timer = self.stream = None
