"""`deploybench doctor`: this device, which runtimes can run here (and exactly why not), versions."""
from __future__ import annotations

import json

# What has been executed where. Updated by hand when a path is verified on new hardware.
VERIFIED = {
    "torch, torch-aoti, onnxruntime-cpu, openvino (fp32/int8, bf16 where the CPU has it)":
        "run by the test suite on x86_64 CPUs (CI, every commit)",
    "latency harness (interleaved executions, pooled CI) vs a bare loop and benchmark_app":
        "benchmarks/harness_vs_bare.py on a 2-core x86_64 VM (README: How latency is measured)",
    "GPU-path logic without a GPU (profile choice, engine names, inspector parsing, GPU memory figures, "
    "timing-cache recovery, TF32/precision options, ORT IO binding on the CPU device)":
        "tests/test_gpu_pure.py on x86_64 CPUs (no GPU)",
    "onnxruntime-cuda, onnxruntime-trt, tensorrt (engine build with one profile per batch size, runner on "
    "cuda-python, CUDA events, engine inspector), GPU memory (NVML device delta / cudaMemGetInfo), AMP training":
        "NEVER executed on a GPU: no GPU has been available to the developers. Written against NVIDIA's and ONNX "
        "Runtime's documented APIs (docs/GPU.md). On a GPU box run `pytest tests/test_gpu.py` and "
        "`python benchmarks/gpu_smoke.py --backbone resnet18` and report the result.",
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
