"""CUDA runtime calls through cuda-python (no torch): device buffers, a stream, event timing, memory info.

Every call is the CUDA Runtime API's, bound by cuda-python (each returns `(cudaError_t, *values)`):
https://docs.nvidia.com/cuda/cuda-runtime-api/index.html and
https://nvidia.github.io/cuda-python/cuda-bindings/latest/module/runtime.html
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

CUDA_HINT = "cuda-python not installed (pip install deploybench[tensorrt] or deploybench[gpu])"


class CudaError(RuntimeError):
    """A CUDA runtime call that did not return cudaSuccess."""


def cudart():
    """The cuda-python runtime module: `cuda.bindings.runtime` (cuda-python >= 12.6), else `cuda.cudart`."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        from cuda import cudart as runtime    # older cuda-python layout; raises ImportError when absent
    return runtime


def check(result: tuple, what: str):
    """The value(s) of a cuda-python call `(err, *values)`; raises CudaError naming `what` and the error."""
    rt = cudart()
    err, values = result[0], result[1:]
    if err != rt.cudaError_t.cudaSuccess:
        name = rt.cudaGetErrorName(err)[1]
        raise CudaError(f"{what} failed: {name.decode() if isinstance(name, bytes) else name}")
    return values[0] if len(values) == 1 else (values or None)


def cuda_available() -> tuple[bool, str]:
    """(True, "") when cuda-python sees at least one CUDA device, else (False, reason)."""
    try:
        rt = cudart()
    except ImportError:
        return False, CUDA_HINT
    try:
        n = check(rt.cudaGetDeviceCount(), "cudaGetDeviceCount")   # group__CUDART__DEVICE
    except CudaError as e:
        return False, f"no CUDA device ({e})"
    return (True, "") if n else (False, "no CUDA device")


def device_name(device: int = 0) -> str:
    """The device's marketing name (cudaGetDeviceProperties.name)."""
    prop = check(cudart().cudaGetDeviceProperties(device), "cudaGetDeviceProperties")   # group__CUDART__DEVICE
    name = prop.name
    return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00").strip()


def gpu_slug(device: int = 0) -> str:
    """File-name-safe device name, e.g. "nvidia-h100-80gb-hbm3"."""
    return re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")


def is_integrated(device: int = 0) -> bool:
    """True on an integrated GPU sharing host memory (Jetson): cudaDevAttrIntegrated."""
    rt = cudart()
    return bool(check(rt.cudaDeviceGetAttribute(rt.cudaDeviceAttr.cudaDevAttrIntegrated, device),
                      "cudaDeviceGetAttribute(cudaDevAttrIntegrated)"))


def mem_get_info() -> tuple[int, int]:
    """(free, total) bytes of the current device (cudaMemGetInfo, group__CUDART__MEMORY); creates the context."""
    free, total = check(cudart().cudaMemGetInfo(), "cudaMemGetInfo")
    return int(free), int(total)


class DeviceBuffer:
    """`nbytes` of device memory (cudaMalloc / cudaFree, group__CUDART__MEMORY)."""

    def __init__(self, nbytes: int):
        self.nbytes = int(nbytes)
        self.ptr = int(check(cudart().cudaMalloc(max(self.nbytes, 1)), f"cudaMalloc({self.nbytes})"))

    def upload(self, host: np.ndarray, stream: "Stream") -> None:
        """Asynchronous host -> device copy of the contiguous array `host` on `stream`."""
        rt = cudart()
        check(rt.cudaMemcpyAsync(self.ptr, host.ctypes.data, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                 stream.handle), "cudaMemcpyAsync(host to device)")

    def download(self, host: np.ndarray, stream: "Stream") -> None:
        """Asynchronous device -> host copy into the contiguous array `host` on `stream`."""
        rt = cudart()
        check(rt.cudaMemcpyAsync(host.ctypes.data, self.ptr, host.nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                                 stream.handle), "cudaMemcpyAsync(device to host)")

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class Stream:
    """A CUDA stream (cudaStreamCreateWithFlags, group__CUDART__STREAM); `handle` is its address. A blocking
    stream (`blocking=True`) waits for work on the legacy default stream, e.g. ONNX Runtime's input copies."""

    def __init__(self, blocking: bool = False):
        rt = cudart()
        flags = rt.cudaStreamDefault if blocking else rt.cudaStreamNonBlocking
        self.stream = check(rt.cudaStreamCreateWithFlags(flags), "cudaStreamCreateWithFlags")
        self.handle = int(self.stream)

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def destroy(self) -> None:
        if self.stream is not None:
            check(cudart().cudaStreamDestroy(self.stream), "cudaStreamDestroy")
            self.stream = None


class EventTimer:
    """Device time between two events recorded on a stream (cudaEventRecord / cudaEventElapsedTime,
    group__CUDART__EVENT): the span trtexec reports as "GPU Compute Time" when the events bracket the enqueue."""

    def __init__(self):
        rt = cudart()
        self.start = check(rt.cudaEventCreate(), "cudaEventCreate")
        self.end = check(rt.cudaEventCreate(), "cudaEventCreate")

    def record_start(self, stream: Stream) -> None:
        check(cudart().cudaEventRecord(self.start, stream.stream), "cudaEventRecord(start)")

    def record_end(self, stream: Stream) -> None:
        check(cudart().cudaEventRecord(self.end, stream.stream), "cudaEventRecord(end)")

    def elapsed_ms(self) -> float:
        """Milliseconds between the two events; call after the stream (or end event) has completed."""
        rt = cudart()
        check(rt.cudaEventSynchronize(self.end), "cudaEventSynchronize")
        return float(check(rt.cudaEventElapsedTime(self.start, self.end), "cudaEventElapsedTime"))

    def destroy(self) -> None:
        rt = cudart()
        for ev in (self.start, self.end):
            check(rt.cudaEventDestroy(ev), "cudaEventDestroy")


def graph_capture(stream: Stream, launch) -> object:
    """Capture what `launch()` enqueues on `stream` into an executable CUDA graph (cudaStreamBeginCapture /
    cudaStreamEndCapture / cudaGraphInstantiate, group__CUDART__GRAPH); replay with `graph_launch`."""
    rt = cudart()
    check(rt.cudaStreamBeginCapture(stream.stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
          "cudaStreamBeginCapture")
    launch()
    graph = check(rt.cudaStreamEndCapture(stream.stream), "cudaStreamEndCapture")
    return check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")


def graph_launch(graph_exec, stream: Stream) -> None:
    check(cudart().cudaGraphLaunch(graph_exec, stream.stream), "cudaGraphLaunch")


def pci_bus_id(device: int = 0) -> Optional[str]:
    """The device's PCI bus id (cudaDeviceGetPCIBusId), which NVML accepts; None when it cannot be read."""
    try:
        bus = check(cudart().cudaDeviceGetPCIBusId(32, device), "cudaDeviceGetPCIBusId")
    except (ImportError, CudaError):
        return None
    return (bus.decode() if isinstance(bus, bytes) else str(bus)).rstrip("\x00")


def graph_destroy(graph_exec) -> None:
    check(cudart().cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")
