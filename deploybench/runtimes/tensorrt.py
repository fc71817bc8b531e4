"""Native TensorRT runner (TensorRT >= 10 named-tensor API): deserialize the engine, run on a CUDA stream.

Device buffers are torch CUDA tensors (one pair per input shape, so their addresses stay valid); CUDA events
around execute_async_v3 give `device_time_ms`. Option `cuda_graphs=True` captures one CUDA graph per shape.
"""
from __future__ import annotations

import numpy as np

from .base import Runner, as_batch, cuda_device

GPU_HINT = "tensorrt not installed (pip install deploybench[tensorrt])"


def trt_version() -> tuple[int, str]:
    """(major, version string) of the importable tensorrt; raises ImportError when absent."""
    import tensorrt as trt

    return int(trt.__version__.split(".")[0]), trt.__version__


class TensorRTRunner(Runner):
    """Runs `model.<prec>.<gpu>.engine`; precision is the artifact's (strongly typed engines)."""
    name = "tensorrt"
    formats = ("tensorrt",)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            major, version = trt_version()
        except ImportError:
            return False, GPU_HINT
        if major < 10:
            return False, f"TensorRT {version} is too old: deploybench needs TensorRT >= 10 (strongly typed networks)"
        return cuda_device()

    def __enter__(self) -> "TensorRTRunner":
        import tensorrt as trt
        import torch

        self.torch = torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{self.path}: TensorRT could not deserialize it (built by another TensorRT "
                               "version or GPU? rerun deploybench export --format tensorrt)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        modes = {n: self.engine.get_tensor_mode(n) for n in names}
        self.inp = next(n for n in names if modes[n] == trt.TensorIOMode.INPUT)
        self.out = next(n for n in names if modes[n] == trt.TensorIOMode.OUTPUT)
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int8: torch.int8,
                  trt.int32: torch.int32, trt.bfloat16: torch.bfloat16}
        self.in_dtype = dtypes[self.engine.get_tensor_dtype(self.inp)]
        self.out_dtype = dtypes[self.engine.get_tensor_dtype(self.out)]
        self.stream = torch.cuda.Stream()
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)
        self.buffers: dict[tuple, tuple] = {}
        self.graphs: dict[tuple, object] = {}
        self.bound: tuple | None = None
        self.precision = self.artifact.precision
        return self

    def _bind(self, shape: tuple) -> tuple:
        """Buffers for `shape`, set as the context's input shape and tensor addresses."""
        torch = self.torch
        if shape not in self.buffers:
            self.context.set_input_shape(self.inp, shape)
            x = torch.empty(shape, dtype=self.in_dtype, device="cuda")
            y = torch.empty(tuple(self.context.get_tensor_shape(self.out)), dtype=self.out_dtype, device="cuda")
            self.buffers[shape] = (x, y)
        if self.bound != shape:
            x, y = self.buffers[shape]
            self.context.set_input_shape(self.inp, shape)
            self.context.set_tensor_address(self.inp, x.data_ptr())
            self.context.set_tensor_address(self.out, y.data_ptr())
            self.bound = shape
        return self.buffers[shape]

    def _launch(self, shape: tuple) -> None:
        torch = self.torch
        if not self.options.get("cuda_graphs"):
            self.context.execute_async_v3(self.stream.cuda_stream)
            return
        if shape not in self.graphs:
            self.context.execute_async_v3(self.stream.cuda_stream)   # shape-dependent setup before capture
            self.stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
            self.graphs[shape] = graph
        self.graphs[shape].replay()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        batch = as_batch(batch)
        x, y = self._bind(tuple(batch.shape))
        with torch.cuda.stream(self.stream):
            x.copy_(torch.from_numpy(batch))
            self.start.record(self.stream)
            self._launch(tuple(batch.shape))
            self.end.record(self.stream)
            out = y.float().cpu()
        self.stream.synchronize()
        self.device_time_ms = self.start.elapsed_time(self.end)
        return out.numpy()

    def __exit__(self, *exc) -> None:
        self.graphs.clear()
        self.buffers.clear()
        self.context = self.engine = None
