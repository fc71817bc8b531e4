"""Memory probes: peak host RSS of this process; device-level GPU memory (NVML device handle, else
cudaMemGetInfo) sampled around a GPU runner's load and run; host VmHWM on unified-memory devices (Jetson)."""
from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Optional


def peak_host_mem_mb() -> float:
    """Peak resident set size of the current process in MiB.

    Linux: VmHWM from /proc/self/status (the high-water mark of this process image). getrusage's ru_maxrss is
    not used there because it carries the PARENT's peak across fork/exec (the kernel folds the forked address
    space's high-water mark into it at exec), so every worker would report at least the parent's RSS.
    Elsewhere: ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


UNIFIED = "host-vmhwm (unified memory)"


def _nvml_used(device: int) -> Optional[float]:
    """Device-level used memory (MiB) from NVML's device handle (nvmlDeviceGetMemoryInfo), which counts every
    process's allocations and the CUDA contexts, so no PID matching (PIDs differ inside containers).
    https://docs.nvidia.com/deploy/nvml-api/group__nvmlDeviceQueries.html
    The handle is looked up by PCI bus id when cuda-python gives it (NVML ignores CUDA_VISIBLE_DEVICES)."""
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return None
    from ..runtimes.cuda import pci_bus_id

    try:
        pynvml.nvmlInit()
        try:
            bus = pci_bus_id(device)
            handle = (pynvml.nvmlDeviceGetHandleByPciBusId(bus.encode()) if bus
                      else pynvml.nvmlDeviceGetHandleByIndex(device))
            return pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:    # no NVML (Jetson), no GPU, or not supported
        return None


def _cudart_used() -> Optional[float]:
    """total - free of the current device (cudaMemGetInfo); MiB, None without cuda-python or a device."""
    from ..runtimes.cuda import CudaError, mem_get_info

    try:
        free, total = mem_get_info()
    except (ImportError, CudaError):
        return None
    return (total - free) / 2**20


def used_device_mem(device: int = 0) -> tuple[Optional[float], str]:
    """(used MiB or None, method): "nvml-device" or "cudart-meminfo" (cudaMemGetInfo, after context creation)."""
    used = _nvml_used(device)
    if used is not None:
        return used, "nvml-device"
    used = _cudart_used()
    return (used, "cudart-meminfo") if used is not None else (None, "")


def _unified(device: int) -> bool:
    """Integrated GPU sharing host memory (Jetson): cudaDevAttrIntegrated, else the Tegra release file."""
    from ..runtimes.cuda import CudaError, is_integrated

    try:
        return is_integrated(device)
    except (ImportError, CudaError):
        return Path("/etc/nv_tegra_release").exists()


def device_mem_figure(baseline_mb: Optional[float], samples_mb: list, method: str, unified: bool = False,
                      host_peak_mb: Optional[float] = None, accounting_mb: Optional[float] = None
                      ) -> tuple[Optional[float], str]:
    """(MiB, method) for a row: on unified memory the host VmHWM (device and host memory are one pool); else the
    device-level used-memory delta max(samples) - baseline ("<method>-delta", never below 0); else the runtime's
    own accounting (TensorRT: weights + activations + I/O buffers); else None with the reason."""
    if unified:
        return (round(host_peak_mb, 1) if host_peak_mb is not None else None), UNIFIED
    samples = [s for s in samples_mb if s is not None]
    if baseline_mb is not None and samples:
        return round(max(0.0, max(samples) - baseline_mb), 1), f"{method}-delta"
    if accounting_mb is not None:
        return round(accounting_mb, 1), "tensorrt-accounting"
    return None, "unmeasured: neither NVML nor cudaMemGetInfo answered"


class DeviceMemProbe:
    """Device-level used memory sampled before a GPU runner loads (baseline) and after load and after the timed
    phase; `figure()` gives the row's (MiB, method). The bench runs one worker at a time, so the delta is this
    configuration's footprint (runtime, weights, activations, buffers; with NVML also its CUDA context)."""

    def __init__(self, device: int = 0):
        self.device = device
        self.unified = _unified(device)
        self.baseline, self.method = used_device_mem(device)
        self.samples: list = []

    def sample(self) -> None:
        used, method = used_device_mem(self.device)
        if method == self.method:
            self.samples.append(used)

    def figure(self, host_peak_mb: Optional[float], accounting_mb: Optional[float] = None
               ) -> tuple[Optional[float], str]:
        return device_mem_figure(self.baseline, self.samples, self.method, self.unified, host_peak_mb, accounting_mb)
