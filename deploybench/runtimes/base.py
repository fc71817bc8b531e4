"""Runner base class: one context-managed object per (artifact, runtime) that accuracy and latency share."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..records import Artifact

# Runtimes that share one INT8 artifact: the GPU runtimes run the S8S8 Q/DQ file made for TensorRT.
TARGET_FAMILY = {"onnxruntime-trt": "tensorrt", "onnxruntime-cuda": "tensorrt"}


class Runner:
    """Load in __enter__, run NCHW float32 batches through infer(), release in __exit__.

    `precision` is what the runtime really computes in (fp32 | fp16 | bf16 | int8), set by __enter__.
    `device_time_ms` is the last infer's device time where the runner measures it (CUDA events), else None.
    """
    name: str = ""
    formats: tuple[str, ...] = ()
    native: str = ""                    # the format made for this runtime (see deployable)
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8")

    def __init__(self, artifact: Artifact, meta: dict, threads: Optional[int] = None, **options):
        self.artifact = artifact
        self.meta = meta or {}
        self.threads = threads
        self.options = options
        self.precision = artifact.precision
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


def as_batch(batch: np.ndarray) -> np.ndarray:
    """Contiguous float32 NCHW view of `batch` (no copy when it already is one)."""
    return np.ascontiguousarray(batch, dtype=np.float32)
