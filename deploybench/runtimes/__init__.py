"""Runtime registry: one Runner class per backend name; which artifacts each one runs."""
from __future__ import annotations

from ..errors import DeployBenchError
from .base import Runner
from .onnxruntime import OrtCpuRunner, OrtCudaRunner, OrtTrtRunner
from .openvino import OpenVinoBf16Runner, OpenVinoRunner
from .tensorrt import TensorRTRunner
from .torch import TorchRunner

RUNTIMES: dict[str, type[Runner]] = {cls.name: cls for cls in (
    TorchRunner, OrtCpuRunner, OrtCudaRunner, OrtTrtRunner, OpenVinoRunner, OpenVinoBf16Runner, TensorRTRunner)}


def get_runner(name: str) -> type[Runner]:
    """The Runner class registered as `name`."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise DeployBenchError(f"unknown runtime '{name}' (known: {', '.join(RUNTIMES)})") from None


__all__ = ["RUNTIMES", "Runner", "get_runner"]
