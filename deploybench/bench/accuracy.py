"""Top-1 / top-5 accuracy through a Runner (the same object that is timed), and parity against a reference.

Torch-free, so ORT/OpenVINO worker processes import it without torch. Parity definitions (per sample i, runtime
logits a_i, reference PyTorch fp32 logits b_i):
  rel_err_i = max_j |a_ij - b_ij| / max_j |b_ij|   (error relative to the largest reference logit)
  max_rel_err = max_i rel_err_i;  median_rel_err = median_i rel_err_i
  top1_agree  = fraction of samples whose arg-max class is the same
  top1_delta  = (artifact top-1 - PyTorch top-1) on the labelled images, in percentage points
  top1_delta_se = its paired standard error: std_i(d_i) / sqrt(n), d_i = [a_i right] - [b_i right], in points
      (only images where exactly one of the two is right move it: on a fragile model a Δ of 1 pt on 2,000
      images can be noise)
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ..records import ACC_DROP_PT


class Accuracy(NamedTuple):
    top1: float                 # percent
    top5: float                 # percent
    logits: np.ndarray          # (n, classes) float32, one row per image of X


def evaluate(runner, X: np.ndarray, y: np.ndarray, batch_size: int) -> Accuracy:
    """Top-1/top-5 in percent over (X, y), fed in full batches of `batch_size`, and the logits produced.

    The last partial batch is padded with zeros to `batch_size` (fixed-shape engines) and the padded
    outputs are dropped. With fewer than 5 classes top-5 is 100 %.
    """
    n = len(X)
    if n == 0:
        raise ValueError("evaluate needs at least one image")
    y = np.asarray(y)
    top1 = top5 = 0
    out = []
    for i in range(0, n, batch_size):
        xb = np.ascontiguousarray(X[i:i + batch_size], dtype=np.float32)
        real = len(xb)
        if real < batch_size:
            xb = np.concatenate([xb, np.zeros((batch_size - real,) + xb.shape[1:], np.float32)])
        logits = np.asarray(runner.infer(xb), dtype=np.float32)[:real]
        yb = y[i:i + real]
        k = min(5, logits.shape[1])
        best = np.argpartition(-logits, k - 1, axis=1)[:, :k]
        top1 += int(np.sum(logits.argmax(1) == yb))
        top5 += int(np.sum((best == yb[:, None]).any(1)))
        out.append(logits)
    return Accuracy(100.0 * top1 / n, 100.0 * top5 / n, np.concatenate(out))


def parity_stats(logits: np.ndarray, ref: np.ndarray, labels: Optional[np.ndarray] = None) -> dict:
    """The metrics of the module docstring for `logits` against reference `ref` (same images, same order)."""
    a, b = np.asarray(logits, np.float64), np.asarray(ref, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"parity: logits of shape {a.shape} against reference logits of shape {b.shape}")
    rel = np.abs(a - b).max(axis=1) / np.maximum(np.abs(b).max(axis=1), 1e-12)
    top_a, top_b = a.argmax(1), b.argmax(1)
    delta = se = None
    if labels is not None:
        d = (top_a == labels).astype(np.float64) - (top_b == labels)
        delta = float(d.mean() * 100.0)
        se = float(d.std(ddof=1) / np.sqrt(len(d)) * 100.0) if len(d) > 1 else None
    return {"max_rel_err": float(rel.max()), "median_rel_err": float(np.median(rel)),
            "top1_agree": float((top_a == top_b).mean()), "top1_delta": delta, "top1_delta_se": se,
            "images": int(len(a))}


def accuracy_flag(delta: Optional[float]) -> Optional[str]:
    """The row's flag for a top-1 change of `delta` points vs torch fp32 (None: within ACC_DROP_PT, or unknown)."""
    return f"drop>{ACC_DROP_PT:g}pt" if delta is not None and delta < -ACC_DROP_PT else None
