"""PyTorch's own deployment package: torch.export + AOTInductor, one `.pt2` file (format `pt2`, runtime `torch-aoti`).

Export compiles the checkpoint's fp32 model ahead of time into engines/<run_id>/model.fp32.pt2 (C++ kernels and
weights in one archive; about a minute per model here) with a dynamic batch dimension: torch.export specializes
a size-1 dimension, so the spec's minimum is 2, and the package still runs batches of 1.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..formats import ArtifactFormat
from .base import Runner, as_batch

if TYPE_CHECKING:
    from ..records import RunMeta

FILE = "model.fp32.pt2"


def compile_package(model, meta: "RunMeta", path: Path, max_batch: int) -> None:
    """torch.export `model` with a dynamic batch (2..max_batch) and AOTInductor-compile it into `path`, atomically."""
    import torch

    size = int(meta.image_size)
    example = torch.randn(2, int(meta.in_chans), size, size)
    batch = torch.export.Dim("batch", min=2, max=max(2, max_batch))
    with torch.no_grad():
        program = torch.export.export(model.float().eval(), (example,), dynamic_shapes=({0: batch},))
        with tempfile.TemporaryDirectory(prefix=".pt2-", dir=path.parent) as tmp:
            built = torch._inductor.aoti_compile_and_package(program, package_path=str(Path(tmp) / path.name))
            os.replace(built, path)


def build(job, precision: str) -> list:
    """Export's builder: the fp32 package (the only precision this format holds)."""
    if precision != "fp32":
        return []
    return [job.artifact(FILE, "pt2", "fp32", lambda p: compile_package(job.model, job.meta, p, job.max_batch))]


class TorchAotiRunner(Runner):
    """Loads the package with torch._inductor.aoti_load_package; threads via torch.set_num_threads. It computes
    in fp32 (AOTInductor compiles the fp32 graph as exported; no autocast)."""
    name = "torch-aoti"
    formats = ("pt2",)
    precisions = ("fp32",)
    packages = ("torch",)
    artifact_format = ArtifactFormat("pt2", ".pt2", parity_runtime="torch-aoti", builder=build,
                                     planned=lambda precisions: [FILE] if "fp32" in precisions else [])

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("torch") is None:
            return False, "torch is not installed"
        return True, ""

    def __enter__(self) -> "TorchAotiRunner":
        import torch

        self._torch = torch
        if self.threads:
            torch.set_num_threads(self.threads)
        self.model = torch._inductor.aoti_load_package(str(self.path))
        self.compute_precision = "fp32"
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        x = as_batch(batch)
        x = x if x.flags.writeable else x.copy()     # torch.from_numpy warns on read-only (memory-mapped) arrays
        with self._torch.inference_mode():
            return self.model(self._torch.from_numpy(x)).float().numpy()

    def __exit__(self, *exc) -> None:
        self.model = None
