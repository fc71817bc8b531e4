"""Parity of an artifact against the PyTorch fp32 model, measured through the artifact's runner.

Definitions (per sample i, artifact logits a_i, PyTorch fp32 logits b_i):
  rel_err_i = max_j |a_ij - b_ij| / max_j |b_ij|   (error relative to the largest reference logit)
  max_rel_err = max_i rel_err_i;  median_rel_err = median_i rel_err_i
  top1_agree  = fraction of samples whose arg-max class is the same
  top1_delta  = (artifact top-1 - PyTorch top-1) on the labelled images, in percentage points
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ..records import Artifact
from ..runtimes import get_runner

PARITY_RUNTIME = {"onnx": "onnxruntime-cpu", "openvino": "openvino", "tensorrt": "tensorrt"}


def batched(fn, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Concatenate fn(chunk) over `images` in chunks of `batch_size`."""
    return np.concatenate([fn(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def torch_logits(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """Reference fp32 logits of `model` on `images` (NCHW float32)."""
    model = model.float().eval()
    with torch.inference_mode():
        return batched(lambda x: model(torch.from_numpy(np.ascontiguousarray(x))).float().numpy(), images)


def parity_stats(logits: np.ndarray, ref: np.ndarray, labels: Optional[np.ndarray] = None) -> dict:
    """The metrics of the module docstring for `logits` against reference `ref`."""
    a, b = np.asarray(logits, np.float64), np.asarray(ref, np.float64)
    rel = np.abs(a - b).max(axis=1) / np.maximum(np.abs(b).max(axis=1), 1e-12)
    top_a, top_b = a.argmax(1), b.argmax(1)
    delta = None
    if labels is not None:
        delta = float(((top_a == labels).mean() - (top_b == labels).mean()) * 100.0)
    return {"max_rel_err": float(rel.max()), "median_rel_err": float(np.median(rel)),
            "top1_agree": float((top_a == top_b).mean()), "top1_delta": delta, "images": int(len(a))}


def artifact_parity(artifact: Artifact, meta: dict, images: np.ndarray, ref: np.ndarray,
                    labels: Optional[np.ndarray] = None, runtime: Optional[str] = None, batch_size: int = 16) -> dict:
    """Run `images` through the artifact's runner (ORT CPU for ONNX, OpenVINO for IR, TensorRT for engines)."""
    runner_cls = get_runner(runtime or PARITY_RUNTIME[artifact.format])
    with runner_cls(artifact, meta) as runner:
        logits = batched(runner.infer, images, batch_size)
    stats = parity_stats(logits, ref, labels)
    stats["runtime"] = runner_cls.name
    return stats
