"""ONNX artifact -> TensorRT engine, one path for every precision: the precision comes from the ONNX file
(fp16 casts, int8 Q/DQ) and the network is strongly typed (TensorRT 11 removed the FP16/INT8 builder flags
and calibrators; TensorRT 10 has strongly typed networks; older versions are refused with the reason)."""
from __future__ import annotations

import re
from pathlib import Path

from ..io import atomic_path, write_text
from ..runtimes.tensorrt import TensorRTRunner, trt_version


def gpu_slug() -> str:
    """File-name-safe name of CUDA device 0, e.g. "nvidia-h100-80gb-hbm3"."""
    import torch

    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")


def tensorrt_unavailable() -> str:
    """Why engines cannot be built here ("" when they can)."""
    ok, reason = TensorRTRunner.available()
    return "" if ok else reason


def build_engine(onnx_path: Path, engine_path: Path, image_size: int, max_batch: int = 32, opt_batch: int | None = None,
                 workspace_gb: float = 4.0, timing_cache: Path | None = None, in_chans: int = 3) -> None:
    """Parse `onnx_path`, build a strongly typed engine for batch 1..max_batch (optimized for opt_batch), write
    it to `engine_path` and the TensorRT log to `<engine>.build.log`; the timing cache is read and updated."""
    import tensorrt as trt

    major, version = trt_version()
    if major < 10:
        raise RuntimeError(f"TensorRT {version} has no strongly typed networks; install TensorRT >= 10")
    lines: list[str] = []

    class _Log(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            lines.append(f"[{severity.name}] {msg}")

    logger = _Log()
    builder = trt.Builder(logger)
    flags = 0 if major >= 11 else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    log_path = Path(engine_path).with_suffix(".build.log")
    try:
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise RuntimeError(f"TensorRT could not parse {Path(onnx_path).name}: {'; '.join(errors)}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
        if hasattr(trt.BuilderFlag, "TF32"):   # fp32 tensors compute in fp32, so an fp32 row is really fp32
            config.clear_flag(trt.BuilderFlag.TF32)
        cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
        if not config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False):
            config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)   # other GPU's cache
        shape = (in_chans, image_size, image_size)
        profile = builder.create_optimization_profile()
        opt = min(max(opt_batch or max_batch, 1), max_batch)
        profile.set_shape(network.get_input(0).name, (1, *shape), (opt, *shape), (max_batch, *shape))
        config.add_optimization_profile(profile)
        engine = builder.build_serialized_network(network, config)
        if engine is None:
            raise RuntimeError(f"TensorRT build failed for {Path(onnx_path).name} (see {log_path.name})")
        with atomic_path(engine_path) as tmp:
            tmp.write_bytes(bytes(engine))
        if timing_cache:
            with atomic_path(timing_cache) as tmp:
                tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    finally:
        write_text(log_path, "\n".join(lines) + "\n")
