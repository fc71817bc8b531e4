"""`deploybench doctor`: this device, which runtimes can run here (and exactly why not), versions."""
from __future__ import annotations

import json

# What has been executed where. Updated by hand when a path is verified on new hardware.
VERIFIED = {
    "torch, onnxruntime-cpu, openvino (fp32/int8, bf16 where the CPU has it)":
        "run by the test suite on x86_64 CPUs (CI, every commit)",
    "latency harness (interleaved executions, pooled CI) vs a bare loop and benchmark_app":
        "benchmarks/harness_vs_bare.py on a 2-core x86_64 VM (README: How latency is measured)",
    "onnxruntime-cuda, onnxruntime-trt, tensorrt (engine build + runner), NVML memory":
        "written against NVIDIA's / ONNX Runtime's documented APIs; NOT yet executed on a GPU by the developers. "
        "On a GPU box run `pytest tests/test_gpu.py` and `python benchmarks/gpu_smoke.py` and report the result.",
}


def collect() -> dict:
    from .bench.device import device_info, fingerprint, versions
    from .runtimes import RUNTIMES

    runtimes = {}
    for name, cls in RUNTIMES.items():
        ok, reason = cls.available()
        runtimes[name] = {"available": ok, "reason": reason}
    v = versions()
    return {"device": device_info(), "fingerprint": fingerprint(), "runtimes": runtimes,
            "versions": json.loads(v) if isinstance(v, str) else v, "verified": VERIFIED}


def render(info: dict) -> str:
    lines = ["device:"]
    lines += [f"  {k}: {v}" for k, v in info["device"].items()]
    lines.append(f"  fingerprint: {info['fingerprint']}")
    lines.append("runtimes:")
    for name, r in info["runtimes"].items():
        mark = "yes" if r["available"] else "no "
        lines.append(f"  {name:<18} {mark}  {r['reason']}")
    lines.append("versions:")
    lines += [f"  {k}: {v}" for k, v in info["versions"].items()]
    lines.append("verified where:")
    lines += [f"  {k}: {v}" for k, v in info["verified"].items()]
    return "\n".join(lines)
