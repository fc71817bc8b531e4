"""Memory probes: peak host RSS of this process; device memory via NVML when importable (else None)."""
from __future__ import annotations

import os
import resource
import sys
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


def device_mem_mb(device_index: int = 0) -> Optional[float]:
    """GPU memory this process holds now (MiB), from NVML's per-process accounting; None without NVML/GPU.

    Sampled after the timed phase: inference engines allocate their arenas up front, so what the process
    holds then is its working peak. torch's allocator peak is used instead when it is larger.
    """
    used = None
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
                procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
                mine = [p.usedGpuMemory for p in procs if p.pid == os.getpid() and p.usedGpuMemory]
                if mine:
                    used = sum(mine) / (1024 * 1024)
            finally:
                pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = torch.cuda.max_memory_reserved(device_index) / (1024 * 1024)
        if peak > 0:
            used = max(used or 0.0, peak)
    return used
