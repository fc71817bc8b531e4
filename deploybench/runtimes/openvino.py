"""OpenVINO CPU runners with an explicit inference precision, so a row's precision is what really ran.

The CPU plugin defaults to bf16 on CPUs with AMX/avx512_bf16; `openvino` pins INFERENCE_PRECISION_HINT=f32
(int8 QDQ layers still compute in int8). fp16 artifacts: the CPU plugin upconverts fp16 weights and computes
in f32, so their precision is reported as "fp32". `openvino-bf16` runs the fp32 artifact with the bf16 hint.
"""
from __future__ import annotations

import numpy as np

from .base import Runner, as_batch


def _core():
    import openvino as ov

    return ov.Core()


class OpenVinoRunner(Runner):
    """OpenVINO CPU: reads ONNX or IR (.xml); LATENCY hint, one stream, INFERENCE_NUM_THREADS = threads."""
    name = "openvino"
    formats = ("onnx", "openvino")
    native = "openvino"
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
        self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", self.config())
        self.request = self.compiled.create_infer_request()
        actual = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        compute = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(actual, actual)
        self.precision = "int8" if self.artifact.precision == "int8" else compute
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self.request.infer({0: as_batch(batch)})
        return np.asarray(self.request.get_output_tensor(0).data, dtype=np.float32).copy()

    def __exit__(self, *exc) -> None:
        self.request = self.compiled = None


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
