"""Hardware floor: measured peak GMAC/s per precision from a short square-matmul probe.

CPU (and CUDA when a GPU is present): fp32 always; bf16 on CPUs with avx512_bf16/amx_bf16; int8 via
torch._int_mm on CPUs with VNNI/AMX-INT8 and on CUDA; fp16 on CUDA and CPUs with avx512_fp16/amx_fp16. Each
precision is timed for ~0.3 s and the best call counts (a peak, not a typical value). Results are cached in
reports/device_peak.json keyed by device fingerprint and thread count; the probe runs in a fresh process so
it cannot change the caller's thread settings.

    efficiency = (gmacs * batch / peak_gmacs_per_s * 1000 ms) / p50_ms

i.e. the fraction of the measured matmul peak (at the row's precision) that the model's MACs reach; None
when no probe exists for that precision on this device.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from ..io import read_json, write_json
from ..workdir import Workdir

PROBE_SECONDS = 0.3


def _rate(fn, macs: float, seconds: float = PROBE_SECONDS, sync=None) -> float:
    fn()
    if sync:
        sync()
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t0)
    return macs / best / 1e9


def run_probe(threads: Optional[int], isa: list[str]) -> dict:
    """{"cpu": {precision: GMAC/s}, "cuda": {...} (with a GPU)} measured in this process."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    targets = {"cpu": (1024, None, {"fp32": torch.float32}, {"avx512_vnni", "avx_vnni", "amx_int8", "i8mm"})}
    if {"avx512_bf16", "amx_bf16", "bf16"} & set(isa):
        targets["cpu"][2]["bf16"] = torch.bfloat16
    if {"avx512_fp16", "amx_fp16"} & set(isa):
        targets["cpu"][2]["fp16"] = torch.float16
    if torch.cuda.is_available():
        targets["cuda"] = (4096, torch.cuda.synchronize,
                           {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}, None)
    out: dict = {}
    for dev, (n, sync, dtypes, int8_isa) in targets.items():
        peaks = out.setdefault(dev, {})
        for prec, dt in dtypes.items():
            a = torch.randn(n, n, device=dev).to(dt)
            peaks[prec] = round(_rate(lambda: a @ a, float(n) ** 3, sync=sync), 1)
        if int8_isa is None or int8_isa & set(isa):
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8, device=dev)
            try:
                peaks["int8"] = round(_rate(lambda: torch._int_mm(a, a), float(n) ** 3, sync=sync), 1)
            except RuntimeError:
                pass   # this torch build has no int8 matmul kernel for the device
    return out


def device_peak(root: Path, fp: str, threads: Optional[int], isa: list[str], timeout: int = 120) -> dict:
    """Cached {"cpu"|"cuda": {precision: GMAC/s}} for (fingerprint, threads); probes in a fresh process on a cache miss."""
    path = Workdir(root).reports_dir / "device_peak.json"
    cache = read_json(path) or {}
    key = f"{threads or 'all'}t.v2"
    if key in cache.get(fp, {}):
        return cache[fp][key]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    args = [sys.executable, "-m", "deploybench.bench.probe", str(threads or 0), ",".join(isa)]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
        peaks = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {}
    except (subprocess.TimeoutExpired, ValueError, IndexError):
        peaks = {}
    if peaks:
        cache = read_json(path) or {}
        cache.setdefault(fp, {})[key] = peaks
        write_json(path, cache)
    return peaks


def efficiency(gmacs: Optional[float], batch_size: int, p50_ms: Optional[float], peaks: dict,
               precision: Optional[str]) -> Optional[float]:
    peak = peaks.get(precision or "")
    if not gmacs or not p50_ms or not peak:
        return None
    return round(gmacs * batch_size / peak * 1000.0 / p50_ms, 4)


if __name__ == "__main__":
    print(json.dumps(run_probe(int(sys.argv[1]) or None, [s for s in sys.argv[2].split(",") if s])))
