"""Top-1 / top-5 accuracy through a Runner (the same object that is timed)."""
from __future__ import annotations

import numpy as np


def evaluate(runner, X: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(top1, top5) in percent over (X, y), fed in full batches of `batch_size`.

    The last partial batch is padded with zeros to `batch_size` (fixed-shape engines) and the padded
    outputs are dropped. With fewer than 5 classes top-5 is 100 %.
    """
    n = len(X)
    if n == 0:
        raise ValueError("evaluate needs at least one image")
    y = np.asarray(y)
    top1 = top5 = 0
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
    return 100.0 * top1 / n, 100.0 * top5 / n
