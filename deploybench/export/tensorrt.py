"""ONNX artifact -> TensorRT engine, one path for every precision: the precision comes from the ONNX file
(fp16 casts, int8 Q/DQ) and the network is strongly typed (TensorRT 11 removed the FP16/INT8 builder flags
and calibrators; TensorRT 10 has strongly typed networks; older versions are refused with the reason).

One engine per precision with one optimization profile per bench batch size (opt = that batch, min 1, max the
largest batch), rather than one engine per batch size: the weights are stored once, export.json keeps one
artifact per precision, every profile still runs any batch up to max (accuracy's last partial batch), and the
runner selects the profile whose opt equals the row's batch, so each row runs tactics timed at its own batch.
TensorRT Python API pages cited below (OptimizationProfile.html: set_shape; BuilderConfig.html:
add_optimization_profile, timing cache, flags) are under
https://docs.nvidia.com/deeplearning/tensorrt/latest/_static/python-api/infer/Core/
"""
from __future__ import annotations

import logging
from pathlib import Path

from ..io import atomic_path, write_text
from ..runtimes.cuda import gpu_slug
from ..runtimes.tensorrt import TensorRTRunner, trt_version

__all__ = ["build_engine", "engine_file", "gpu_slug", "profile_batches", "superseded", "tensorrt_unavailable"]

log = logging.getLogger(__name__)


def engine_file(precision: str, gpu: str | None = None, version: str | None = None) -> str:
    """Engine file name: precision, GPU and TensorRT version (engines are specific to all three), e.g.
    model.fp16.nvidia-h100.trt10.8.0.engine; `version` is tensorrt.__version__ (build number dropped).
    gpu / version default to this machine's device 0 and installed TensorRT."""
    gpu = gpu or gpu_slug()
    version = version or trt_version()[1]
    return f"model.{precision}.{gpu}.trt{'.'.join(version.split('.')[:3])}.engine"


def superseded(file: str, current: str) -> bool:
    """Whether engine `file` is an older build of `current`: same precision and GPU, another TensorRT version
    (or the unversioned name used before versions were in the name). Other GPUs' engines are not superseded."""
    prefix = current.rsplit(".trt", 1)[0] + "."
    return file != current and file.endswith(".engine") and file.startswith(prefix)


def profile_batches(batch_sizes, max_batch: int) -> list[int]:
    """The opt batch of each optimization profile: the distinct bench batch sizes within 1..max_batch, ascending
    (profile i has opt = result[i]); [max_batch] when none is given."""
    opts = sorted({int(b) for b in batch_sizes or () if 1 <= int(b) <= max_batch})
    return opts or [max_batch]


def tensorrt_unavailable() -> str:
    """Why engines cannot be built here ("" when they can)."""
    ok, reason = TensorRTRunner.available()
    return "" if ok else reason


def load_timing_cache(config, path: Path | None) -> str:
    """Attach a timing cache to `config` (IBuilderConfig.create_timing_cache / set_timing_cache): the one in
    `path` when it loads, else an empty one. A corrupt cache, or one from another GPU or TensorRT version, is
    deleted with a warning (the build rewrites it). Returns what happened: "loaded", "new" or "discarded: why".
    (BuilderConfig.html: create_timing_cache, set_timing_cache; TimingCache.html)"""
    blob = path.read_bytes() if path and path.exists() else b""
    status = "new"
    if blob:
        try:
            cache = config.create_timing_cache(blob)
            ok = cache is not None and config.set_timing_cache(cache, ignore_mismatch=False)
            status = "loaded" if ok else "discarded: TensorRT rejected it (other GPU or TensorRT version)"
        except Exception as e:   # TensorRT raises on a blob it cannot parse
            status = f"discarded: {type(e).__name__}: {e}"
        if status != "loaded":
            log.warning("%s: timing cache %s; building without it and rewriting it", path, status)
            path.unlink(missing_ok=True)
    if status != "loaded":
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    return status


def build_engine(onnx_path: Path, engine_path: Path, image_size: int, max_batch: int = 32, opt_batches=None,
                 workspace_gb: float = 4.0, timing_cache: Path | None = None, in_chans: int = 3) -> None:
    """Parse `onnx_path`, build a strongly typed engine for batch 1..max_batch with one optimization profile per
    opt batch (profile_batches), write it to `engine_path` and the TensorRT log to `<engine>.build.log`; the
    timing cache is read (discarded when corrupt) and updated."""
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
    # TensorRT 11 networks are always strongly typed; 10 needs the flag (Builder.html, precision-control.html)
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
        # TF32 is a compute mode for FP32 tensors, not a type, so it stays a builder flag under strong typing
        # (enabled by default): cleared, fp32 tensors compute in fp32. BuilderConfig.html (BuilderFlag.TF32);
        # https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/precision-control.html
        config.clear_flag(trt.BuilderFlag.TF32)
        # DETAILED keeps per-layer types in the engine for IEngineInspector (the runner's compute_precision):
        # BuilderConfig.html (ProfilingVerbosity), EngineInspector.html
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        lines.append(f"[deploybench] timing cache: {load_timing_cache(config, timing_cache)}")
        shape = (in_chans, image_size, image_size)
        name = network.get_input(0).name
        for opt in profile_batches(opt_batches, max_batch):   # IOptimizationProfile.set_shape(min, opt, max)
            profile = builder.create_optimization_profile()
            profile.set_shape(name, (1, *shape), (opt, *shape), (max_batch, *shape))
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
