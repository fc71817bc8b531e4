"""Device description, a stable fingerprint, and library versions for every result row."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from functools import lru_cache
from importlib import metadata
from typing import Optional

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni", "amx_bf16",
             "amx_int8", "amx_fp16", "neon", "asimd", "asimdhp", "bf16", "i8mm", "sve")


def _cpuinfo() -> dict:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and val.strip():
            model = val.strip()
        elif key in ("flags", "features"):
            flags |= set(val.split())
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags]}


def _ram_gb() -> Optional[float]:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _gpu() -> dict:
    """GPU name/driver via NVML, CUDA version via torch; {} when there is no NVIDIA GPU."""
    info: dict = {}
    try:
        import pynvml
        pynvml.nvmlInit()
        try:
            if pynvml.nvmlDeviceGetCount() > 0:
                h = pynvml.nvmlDeviceGetHandleByIndex(0)
                name = pynvml.nvmlDeviceGetName(h)
                drv = pynvml.nvmlSystemGetDriverVersion()
                info["gpu"] = name.decode() if isinstance(name, bytes) else name
                info["driver"] = drv.decode() if isinstance(drv, bytes) else drv
                info["gpu_mem_gb"] = round(pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**30, 1)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library, no driver, no GPU: all mean "no GPU info"
        pass
    try:
        import torch
        if torch.cuda.is_available():
            info.setdefault("gpu", torch.cuda.get_device_name(0))
            info["cuda"] = torch.version.cuda
    except ImportError:
        pass
    return info


@lru_cache(maxsize=1)
def device_info() -> dict:
    """CPU model, cores, ISA subset, RAM; GPU name, driver, CUDA version when present."""
    cpu = _cpuinfo()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return {"cpu": cpu["model"], "cores": cores, "isa": cpu["isa"], "ram_gb": _ram_gb(),
            "machine": platform.machine(), **_gpu()}


def _clean(model: str) -> str:
    model = re.sub(r"\((R|TM|tm|r)\)|\bCPU\b|\bProcessor\b|@.*$", "", model)
    return re.sub(r"\s+", " ", model).strip()


def kind_name(info: dict, kind: str = "gpu") -> str:
    """The name of the processor a runtime of `kind` ("cpu" | "gpu") computes on: the GPU's for "gpu" (the CPU's
    when there is no GPU), the cleaned CPU model for "cpu"."""
    if kind == "gpu" and info.get("gpu"):
        return info["gpu"]
    return _clean(info["cpu"]) or info["machine"]


def kind_fingerprint(info: dict, name: str, kind: str = "gpu") -> str:
    """Short stable hash of name + CPU model + ISA, plus GPU + driver for kind "gpu" (on a machine without a GPU
    both kinds hash alike, so CPU rows keep their fingerprint)."""
    gpu = [info.get("gpu"), info.get("driver")] if kind == "gpu" else [None, None]
    return hashlib.sha1(json.dumps([name, info["cpu"], info["isa"], *gpu]).encode()).hexdigest()[:12]


def device_name(override: Optional[str] = None, kind: str = "gpu") -> str:
    """`override`, else env DEPLOYBENCH_DEVICE, else kind_name of this machine."""
    return override or os.environ.get("DEPLOYBENCH_DEVICE") or kind_name(device_info(), kind)


def fingerprint(name: Optional[str] = None, kind: str = "gpu") -> str:
    """kind_fingerprint of this machine under device_name(name, kind)."""
    return kind_fingerprint(device_info(), device_name(name, kind), kind)


def _version(*dists: str) -> Optional[str]:
    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return None


@lru_cache(maxsize=1)
def versions() -> str:
    """Installed versions of each runtime's package (metadata; nothing is imported) as a compact JSON string."""
    from .. import __version__
    from ..runtimes import RUNNERS

    v = {"python": platform.python_version(), **{c.packages[0]: _version(*c.packages) for c in RUNNERS if c.packages},
         "timm": _version("timm"), "deploybench": __version__}
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


if __name__ == "__main__":
    json.dump({"device": device_name(), "fingerprint": fingerprint(), **device_info()}, sys.stdout, indent=2)
