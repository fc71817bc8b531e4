"""Parity of an artifact against the PyTorch fp32 model, measured through the artifact's runner.

The metrics (`parity_stats`) are defined in bench/accuracy.py, which the bench workers share without torch.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..bench.accuracy import parity_stats
from ..records import Artifact
from ..runtimes import get_format, get_runner


def batched(fn, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Concatenate fn(chunk) over `images` in chunks of `batch_size`."""
    return np.concatenate([fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def torch_logits(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Reference fp32 logits of `model` on `images` (NCHW float32)."""
    model = model.float().eval()
    with torch.inference_mode():
        return batched(lambda x: model(torch.from_numpy(np.ascontiguousarray(x))).float().numpy(), images)


def artifact_parity(artifact: Artifact, meta: dict, images: np.ndarray, ref: np.ndarray,
                    labels: Optional[np.ndarray] = None, runtime: Optional[str] = None, batch_size: int = 16) -> dict:
    """Run `images` through `runtime`, by default the one its format names (ORT CPU for ONNX, OpenVINO for IR, ...)."""
    runner_cls = get_runner(runtime or get_format(artifact.format).parity_runtime)
    with runner_cls(artifact, meta) as runner:
        logits = batched(runner.infer, images, batch_size)
    stats = parity_stats(logits, ref, labels)
    stats["runtime"] = runner_cls.name
    return stats
