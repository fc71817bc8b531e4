"""Runtime and format registry: one Runner class per backend name, and the artifact formats they run.

Adding a runtime: one module here with its Runner (and, for a format of its own, `artifact_format` with the
builder export calls), plus its class in RUNNERS.
"""
from __future__ import annotations

from ..errors import DeployBenchError
from ..formats import BUILTIN, ArtifactFormat
from .base import Runner
from .onnxruntime import OrtCpuRunner, OrtCudaRunner, OrtTrtRunner
from .openvino import OpenVinoBf16Runner, OpenVinoRunner
from .tensorrt import TensorRTRunner
from .torch import TorchRunner
from .torch_aoti import TorchAotiRunner

RUNNERS = (TorchRunner, OrtCpuRunner, OrtCudaRunner, OrtTrtRunner, OpenVinoRunner, OpenVinoBf16Runner, TensorRTRunner,
           TorchAotiRunner)
RUNTIMES: dict[str, type[Runner]] = {cls.name: cls for cls in RUNNERS}
FORMATS: dict[str, ArtifactFormat] = {f.name: f for f in (*BUILTIN, *(c.artifact_format for c in RUNNERS
                                                                        if c.artifact_format))}
EXPORT_FORMATS = tuple(name for name, f in FORMATS.items() if f.builder)   # what `deploybench export` makes


def get_runner(name: str) -> type[Runner]:
    """The Runner class registered as `name`."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise DeployBenchError(f"unknown runtime '{name}' (known: {', '.join(RUNTIMES)})") from None


def get_format(name: str) -> ArtifactFormat:
    """The ArtifactFormat registered as `name`."""
    try:
        return FORMATS[name]
    except KeyError:
        raise DeployBenchError(f"unknown artifact format '{name}' (known: {', '.join(FORMATS)})") from None


__all__ = ["EXPORT_FORMATS", "FORMATS", "RUNNERS", "RUNTIMES", "Runner", "get_format", "get_runner"]
