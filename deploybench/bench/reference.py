"""The run's torch fp32 reference on the bench's test images: `checkpoints/<run_id>/reference.npz`.

Arrays: `logits` (N, classes) float32, `labels` (N,), `top1` (percent), `images` (= N), and `key`, a SHA-1 of
the checkpoint file, the test images and labels it was computed on. Every bench call loads it and recomputes it
only when it is missing, unreadable, or its key differs (another `bench.accuracy_images`, another image set, a
re-trained checkpoint), so a later call that measures only, say, OpenVINO still gets parity and Δ vs torch fp32.

Computed in the bench driver process (wherever bench_run runs: the CLI, a local sweep worker or a Ray task),
before any configuration is timed, through the same TorchRunner that times the torch rows. That process already
imports torch to load the test split (data/), so this costs the model load and one fp32 forward pass over N images;
the ORT/OpenVINO worker processes never import torch. The runner is opened without a thread count, so the
driver's torch thread setting (shared with fine-tuning in a sequential sweep) is left alone.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DeployBenchError
from ..io import atomic_path
from ..records import Artifact
from .accuracy import evaluate

FILE = "reference.npz"
BATCH = 32


def _key(ckpt: Path, X: np.ndarray, y: np.ndarray) -> str:
    h = hashlib.sha1()
    with open(ckpt, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    for a in (np.ascontiguousarray(X, dtype=np.float32), np.ascontiguousarray(y, dtype=np.int64)):
        h.update(str(a.shape).encode())
        h.update(a.data)
    return h.hexdigest()


def load(path: Path) -> Optional[dict]:
    """The reference at `path` as {logits, labels, top1, images, key}, or None if missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ref = {k: z[k] for k in ("logits", "labels", "top1", "images", "key")}
    except (OSError, ValueError, KeyError):
        return None
    ref.update(top1=float(ref["top1"]), images=int(ref["images"]), key=str(ref["key"]))
    return ref


def ensure(ckpt_dir: Path, meta: dict, X: np.ndarray, y: np.ndarray) -> tuple[dict, Optional[float]]:
    """(reference, seconds spent computing it or None when the stored one matched) of the run in `ckpt_dir`
    (checkpoints/<run_id>) on `X`, `y`, the bench's accuracy images."""
    from ..runtimes import get_runner

    ckpt_dir = Path(ckpt_dir)
    run_id, ckpt, path = ckpt_dir.name, ckpt_dir / "best.pt", ckpt_dir / FILE
    if not ckpt.is_file():
        raise DeployBenchError(f"{ckpt}: checkpoint not found; the bench compares every row with the torch fp32 "
                               f"model (copy checkpoints/{run_id}/ along with engines/, or run `deploybench finetune`)")
    key = _key(ckpt, X, y)
    ref = load(path)
    if ref is not None and ref["key"] == key:
        return ref, None
    start = time.perf_counter()
    with get_runner("torch")(Artifact(str(ckpt), "pytorch", "fp32", run_id), meta) as runner:
        acc = evaluate(runner, X, y, BATCH)
    ref = {"logits": acc.logits, "labels": np.asarray(y, dtype=np.int64), "top1": acc.top1, "images": len(y),
           "key": key}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **ref)
    return ref, round(time.perf_counter() - start, 3)
