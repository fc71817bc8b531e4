"""Runner base class: one context-managed object per (artifact, runtime) that accuracy and latency share."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..records import Artifact

if TYPE_CHECKING:
    from ..formats import ArtifactFormat

# Runtimes that share one INT8 artifact: the GPU runtimes run the S8S8 Q/DQ file made for TensorRT.
TARGET_FAMILY = {"onnxruntime-trt": "tensorrt", "onnxruntime-cuda": "tensorrt"}


class Runner:
    """Load in __enter__, run NCHW float32 batches through infer(), release in __exit__.

    `precision` is what the artifact holds (fp32 | fp16 | int8), never changed by the runner.
    `compute_precision` is what the runtime really computes in, read back from it by __enter__ where the runner can
    (compute_label of its compute layers, e.g. "fp32", "bf16", "int8", "int8+fp32"); None until then.
    `device_time_ms` is the last infer's device time where the runner measures it (CUDA events), else None.
    """
    name: str = ""
    formats: tuple[str, ...] = ()
    native: str = ""                    # the format made for this runtime (see deployable)
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")
    device_kind: str = "cpu"            # the processor it computes on: cpu | cuda (device labels, prepare order)
    packages: tuple[str, ...] = ()      # distributions whose version is its version (first: the versions key)
    bench_options: tuple[str, ...] = ()     # BenchConfig switches passed to it as options when on
    artifact_format: Optional["ArtifactFormat"] = None   # a format of its own that export builds (registry)
    per_batch_numerics: bool = False    # runs other kernels at each batch size: accuracy and parity per row (bench)

    def __init__(self, artifact: Artifact, meta: dict, threads: Optional[int] = None, **options):
        self.artifact = artifact
        self.meta = meta or {}
        self.threads = threads
        self.options = options
        self.precision = artifact.precision
        self.compute_precision: Optional[str] = None
        self.device_time_ms: Optional[float] = None

    @property
    def path(self) -> Path:
        return Path(self.artifact.path)

    def __enter__(self) -> "Runner":
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __exit__(self, *exc) -> None:
        return None

    def op_profile(self, infer, warmup: int, iterations: int) -> list[list[dict]]:
        """Per-operator events of `iterations` calls of `infer` after `warmup` ones, one list per call:
        [{node, op_type, us, exec_type}], from the runtime's own profiler (the runner was opened with option
        profile=True; bench/profile.py). Runtimes without an operator profiler keep this default."""
        raise NotImplementedError(f"no operator profiler for runtime '{self.name}'")

    @classmethod
    def has_op_profiler(cls) -> bool:
        return cls.op_profile is not Runner.op_profile

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    @classmethod
    def deployable(cls, artifacts: list[Artifact], cross_target: bool = False) -> list[Artifact]:
        """The artifacts this runtime benches: those it supports, and where an artifact in its `native` format
        holds the same precision and recipe, not the same weights again in another format (OpenVINO reads ONNX
        too, but a practitioner deploys the IR)."""
        ok = [a for a in artifacts if cls.supports(a, cross_target)[0]]
        native = {(a.precision, a.recipe) for a in ok if a.format == cls.native}
        return [a for a in ok if a.format == cls.native or (a.precision, a.recipe) not in native]

    @classmethod
    def supports(cls, artifact: Artifact, cross_target: bool = False) -> tuple[bool, str]:
        """Whether this runtime runs `artifact` (format and precision); (ok, reason). An INT8 artifact made for
        another target (its `target` outside this runtime's family) is refused unless `cross_target`."""
        if artifact.format not in cls.formats:
            return False, f"{cls.name} runs {'/'.join(cls.formats)} artifacts, not {artifact.format}"
        if artifact.precision not in cls.precisions:
            return False, f"{cls.name} does not run {artifact.precision} artifacts"
        if artifact.precision == "int8" and artifact.target and not cross_target \
                and TARGET_FAMILY.get(cls.name, cls.name) != TARGET_FAMILY.get(artifact.target, artifact.target):
            return False, f"made for {artifact.target} (bench.cross_target_int8: true benches it here too)"
        return True, ""


MINOR_SHARE = 0.1   # a precision named in compute_label once it runs this share of the compute layers


def compute_label(counts: dict[str, int]) -> Optional[str]:
    """"int8", "fp32", "int8+fp32", ...: the precisions that compute layers (convolutions, matmuls) ran in, most
    layers first, each holding at least MINOR_SHARE of them; None when there are no compute layers."""
    total = sum(counts.values())
    if not total:
        return None
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "+".join(p for p, n in ranked if n == ranked[0][1] or n >= MINOR_SHARE * total)


def as_batch(batch: np.ndarray) -> np.ndarray:
    """Contiguous float32 NCHW view of `batch` (no copy when it already is one)."""
    return np.ascontiguousarray(batch, dtype=np.float32)
