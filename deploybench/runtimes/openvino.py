"""OpenVINO CPU runners with an explicit inference precision; `compute_precision` is read back from the compiled model.

The CPU plugin defaults to bf16 on CPUs with AMX/avx512_bf16; `openvino` pins INFERENCE_PRECISION_HINT=f32
(int8 QDQ layers still compute in int8). fp16 artifacts: the CPU plugin upconverts fp16 weights and computes
in f32 (precision fp16, compute_precision fp32). `openvino-bf16` runs the fp32 artifact with the bf16 hint.
"""
from __future__ import annotations

import numpy as np

from .base import Runner, as_batch, compute_label


def _core():
    import openvino as ov

    return ov.Core()


class OpenVinoRunner(Runner):
    """OpenVINO CPU: reads ONNX or IR (.xml); LATENCY hint, one stream, INFERENCE_NUM_THREADS = threads.
    Option `profile=True` adds PERF_COUNT (performance counters; bench/profile.py only, never for timing)."""
    name = "openvino"
    formats = ("onnx", "openvino")
    native = "openvino"
    packages = ("openvino",)
    hint = "f32"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            _core()
        except ImportError:
            return False, "openvino not installed (pip install openvino)"
        return True, ""

    def config(self) -> dict:
        cfg = {"INFERENCE_PRECISION_HINT": self.hint, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
        if self.threads:
            cfg["INFERENCE_NUM_THREADS"] = int(self.threads)
        return cfg

    def __enter__(self) -> "OpenVinoRunner":
        core = _core()
        cfg = self.config() | ({"PERF_COUNT": True} if self.options.get("profile") else {})
        self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", cfg)
        self.request = self.compiled.create_infer_request()
        self.compute_precision = runtime_precision(self.compiled)
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        # share_inputs: the request reads the array in place, as a C++ deployment hands OpenVINO its own buffer;
        # the default copies it into a fresh tensor each call (10-15 us on a 56-px lite0 here, ~5 % of its int8 p50)
        self.request.infer({0: as_batch(batch)}, share_inputs=True, share_outputs=True)
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)

    def __exit__(self, *exc) -> None:
        self.request = self.compiled = None

    def op_profile(self, infer, warmup: int, iterations: int) -> list[list[dict]]:
        """OpenVINO's performance counters (PERF_COUNT), read after each call: they describe the last one."""
        runs = []
        for i in range(warmup + iterations):
            infer()
            if i >= warmup:
                runs.append([{"node": p.node_name, "op_type": p.node_type, "us": p.real_time.total_seconds() * 1e6,
                              "exec_type": p.exec_type} for p in self.request.get_profiling_info()
                             if p.status == p.Status.EXECUTED])
        return runs


COMPUTE_LAYERS = {"Convolution", "GroupConvolution", "Deconvolution", "MatMul", "FullyConnected"}
OV_TYPES = {"u8": "int8", "i8": "int8", "bf16": "bf16", "f16": "fp16", "f32": "fp32"}


def runtime_precision(compiled) -> str | None:
    """compute_label of the compiled model's compute layers, by each layer's runtimePrecision (rt_info of the
    runtime model: what the CPU plugin executes, after its own precision conversions)."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) in COMPUTE_LAYERS:
            prec = info["runtimePrecision"].astype(str)
            counts[OV_TYPES.get(prec, prec)] = counts.get(OV_TYPES.get(prec, prec), 0) + 1
    return compute_label(counts)


class OpenVinoBf16Runner(OpenVinoRunner):
    """OpenVINO CPU with INFERENCE_PRECISION_HINT=bf16 on the fp32 artifact; only where the CPU has BF16."""
    name = "openvino-bf16"
    precisions = ("fp32",)
    hint = "bf16"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, reason = super().available()
        if not ok:
            return ok, reason
        caps = _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        if "BF16" not in caps:
            return False, f"CPU has no bf16 support (OpenVINO CPU capabilities: {', '.join(caps)})"
        return True, ""
