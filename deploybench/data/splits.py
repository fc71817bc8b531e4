"""Stratified, seed-fixed index selection for splits, caps and fractions.

Every selection uses SPLIT_SEED (0) and one permutation per class (seeded by (SPLIT_SEED, class)), taking
the first k images of each class. Hence:
- the val split, caps and fractions are identical across run seeds (seeds vary training only);
- fractions are nested: the 10% subset is contained in the 50% subset of the same (capped) train split.
"""
from __future__ import annotations

import numpy as np

from ..errors import DeployBenchError

SPLIT_SEED = 0


def _pick(targets: np.ndarray, per_class: dict[int, int]) -> np.ndarray:
    """Sorted indices: the first per_class[c] images of class c in its fixed permutation."""
    out = []
    for c, k in per_class.items():
        idx = np.flatnonzero(targets == c)
        perm = np.random.default_rng([SPLIT_SEED, int(c)]).permutation(idx)
        out.append(perm[:k])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def _class_counts(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.unique(np.asarray(targets), return_counts=True)


def stratified_cap(targets: np.ndarray, cap: int | None) -> np.ndarray:
    """At most `cap` indices, allocated to classes proportionally (largest remainder), >= 1 per class while
    cap allows it; with cap < number of classes the largest classes get one each."""
    targets = np.asarray(targets)
    if cap is None or cap >= len(targets):
        return np.arange(len(targets))
    classes, counts = _class_counts(targets)
    quota = counts * cap / counts.sum()
    if cap < len(counts):                                    # one each for the largest classes (ties by class)
        k = np.zeros_like(counts)
        k[np.lexsort((np.arange(len(counts)), -counts))[:cap]] = 1
    else:
        k = np.minimum(np.maximum(np.floor(quota).astype(int), 1), counts)
    while k.sum() > cap:                                     # the >= 1 floor overshot: trim the most over quota
        k[int(np.argmax(np.where(k > 1, k - quota, -np.inf)))] -= 1
    while k.sum() < cap:
        room = np.where(k < counts, quota - k, -np.inf)
        k[int(np.argmax(room))] += 1
    return _pick(targets, {int(c): int(n) for c, n in zip(classes, k) if n})


def stratified_fraction(targets: np.ndarray, fraction: float) -> np.ndarray:
    """round(fraction * n_c) images of every class c (at least 1)."""
    if not 0 < fraction <= 1:
        raise DeployBenchError(f"fraction {fraction} must be in (0, 1]")
    targets = np.asarray(targets)
    if fraction == 1:
        return np.arange(len(targets))
    classes, counts = _class_counts(targets)
    return _pick(targets, {int(c): max(1, int(np.floor(fraction * n + 0.5))) for c, n in zip(classes, counts)})


def split_val(targets: np.ndarray, val_fraction: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: round(val_fraction * n_c) of each class to val, keeping >= 1 in train."""
    if not 0 < val_fraction < 1:
        raise DeployBenchError(f"{where}: val_fraction {val_fraction} must be in (0, 1) when there is no val/ split")
    targets = np.asarray(targets)
    classes, counts = _class_counts(targets)
    per = {int(c): min(max(1, int(np.floor(val_fraction * n + 0.5))), n - 1) for c, n in zip(classes, counts)}
    val = _pick(targets, {c: k for c, k in per.items() if k > 0})
    train = np.setdiff1d(np.arange(len(targets)), val)
    return train, val
