"""ONNX Runtime runners: CPU, CUDA and TensorRT execution providers; they run the ONNX artifact as it is."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from .base import Runner, as_batch, cuda_device
from .ort_graph import graph_precision

GPU_HINT = "onnxruntime-gpu not installed (pip install deploybench[gpu])"


class OrtCpuRunner(Runner):
    """CPUExecutionProvider, sequential execution, intra-op threads = `threads`, all graph optimizations.

    `precision` is the artifact's; `compute_precision` is read from the graph ORT optimized at load
    (ort_graph.graph_precision). An fp16 file computes in fp32 here: ORT casts to fp32 around the nodes that have no fp16
    CPU kernel, folds the casts into the weights and drops the cast pairs between layers, so only the weights are
    fp16-rounded. Option `profile=True` turns on ORT's session profiling (bench/profile.py only, never for timing).
    """
    name = "onnxruntime-cpu"
    formats = ("onnx",)
    provider = "CPUExecutionProvider"

    def _providers(self) -> list:
        return [self.provider]

    def __enter__(self) -> "OrtCpuRunner":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = self.threads or 0
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        if self.options.get("profile"):
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"deploybench-ort-{os.getpid()}")
        with tempfile.TemporaryDirectory(prefix="deploybench-ort-") as tmp:
            if self.provider == OrtCpuRunner.provider:    # GPU runners read their precision their own way
                so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
                so.add_session_config_entry("session.optimized_model_external_initializers_file_name", "weights")
                so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
            self.session = ort.InferenceSession(str(self.path), so, providers=self._providers())
            if so.optimized_model_filepath:
                self.compute_precision = graph_precision(so.optimized_model_filepath)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: as_batch(batch)})[0]
        return out.astype(np.float32, copy=False)

    def __exit__(self, *exc) -> None:
        self.session = None


CUDA_OPTS = {"use_tf32": "0"}   # fp32 rows compute in fp32, not TF32 (ORT's default on Ampere+)


class OrtCudaRunner(OrtCpuRunner):
    """CUDAExecutionProvider; I/O through IO binding (input copied to the device, output bound on the device)."""
    name = "onnxruntime-cuda"
    provider = "CUDAExecutionProvider"

    def _providers(self) -> list:
        return [(self.provider, CUDA_OPTS)]

    @classmethod
    def available(cls) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError:
            return False, GPU_HINT
        providers = ort.get_available_providers()
        if "CUDAExecutionProvider" not in providers:
            return False, GPU_HINT
        if cls.provider not in providers:
            return False, f"{cls.provider} not in this onnxruntime build (needs the TensorRT libraries)"
        return cuda_device()

    def __enter__(self) -> "OrtCudaRunner":
        super().__enter__()
        if self.session.get_providers()[0] != self.provider:
            raise RuntimeError(f"{self.provider} did not load (session providers: {self.session.get_providers()})")
        self.binding = self.session.io_binding()
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import onnxruntime as ort

        x = ort.OrtValue.ortvalue_from_numpy(as_batch(batch), "cuda", 0)
        self.binding.bind_ortvalue_input(self.input_name, x)
        self.binding.bind_output(self.output_name, "cuda", 0)
        self.session.run_with_iobinding(self.binding)
        return self.binding.copy_outputs_to_cpu()[0].astype(np.float32, copy=False)


class OrtTrtRunner(OrtCudaRunner):
    """TensorrtExecutionProvider (CUDA EP fallback for unsupported nodes); fp16 enabled only for fp16 artifacts,
    int8 comes from the QDQ graph itself. Engines are cached under option `cache_dir` (default: beside the artifact).
    """
    name = "onnxruntime-trt"
    provider = "TensorrtExecutionProvider"

    def _providers(self) -> list:
        cache: Optional[str] = self.options.get("cache_dir")
        cache_dir = Path(cache) if cache else self.path.parent / "ort_trt_cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        trt_opts = {
            "trt_fp16_enable": self.artifact.precision == "fp16",
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir),
            "trt_timing_cache_enable": True,
            "trt_timing_cache_path": str(cache_dir),
        }
        return [(self.provider, trt_opts), ("CUDAExecutionProvider", CUDA_OPTS)]

