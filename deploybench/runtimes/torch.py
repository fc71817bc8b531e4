"""PyTorch eager fp32 runner: the reference every artifact is compared with, in the memory format (channels_last
or contiguous) that runs this model faster here, measured on the first batch (backbones/memory_format.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Runner, as_batch


class TorchRunner(Runner):
    """Checkpoint (checkpoints/<run_id>/best.pt or its folder) rebuilt by backbones.load_model, fp32 eager.

    Option `model=` runs an in-memory nn.Module instead (benchmarks/gpu_smoke.py, bring-your-own models).
    """
    name = "torch"
    formats = ("pytorch",)
    precisions = ("fp32",)
    packages = ("torch",)

    def __enter__(self) -> "TorchRunner":
        import torch  # imported here so that other runtimes' worker processes never load torch

        from ..backbones import load_model

        self._torch = torch
        if self.threads:
            torch.set_num_threads(self.threads)
        model = self.options.get("model")
        if model is None:
            model, _ = load_model(self.path if self.path.is_dir() else Path(self.path).parent)
        self.model = model.float().eval()
        self.memory_format = None     # channels_last or contiguous, measured on the first batch
        self.compute_precision = "fp32"
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            x = as_batch(batch)
            x = x if x.flags.writeable else x.copy()     # torch.from_numpy warns on read-only (memory-mapped) arrays
            x = torch.from_numpy(x)
            if self.memory_format is None:    # first call (untimed: the worker's load check) picks the faster one
                from ..backbones.memory_format import FORMATS, pick_memory_format

                self.memory_format = pick_memory_format(self.model, x)
                self._fmt = FORMATS[self.memory_format]
            return self.model(x.contiguous(memory_format=self._fmt)).float().numpy()

    def __exit__(self, *exc) -> None:
        self.model = None
