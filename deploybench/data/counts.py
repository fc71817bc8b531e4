"""Compare a dataset's image and class counts with the ones it should have (`datasets[].expected`).

A mismatch is a warning naming both numbers, never an error: people re-split, deduplicate or subsample.
train counts train/ plus val/ (the paper's splits have no separate val).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from ..config import DatasetConfig
from .imagefolder import IMAGE_EXTS

log = logging.getLogger("deploybench.data")
_WARNED: set = set()


def folder_counts(path: str) -> Optional[dict]:
    """{"train", "test", "classes"} of an ImageFolder by file extension (no decoding); None when absent."""
    root = Path(path)
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        return None
    counts, classes = {"train": 0, "test": 0}, set()
    for split, key in (("train", "train"), ("val", "train"), ("test", "test")):
        d = root / split
        if not d.is_dir():
            continue
        for c in (c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")):
            classes.add(c.name)
            counts[key] += sum(1 for p in c.iterdir() if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
    return counts | {"classes": len(classes)}


def mismatches(ds: DatasetConfig, counts: dict) -> list[str]:
    """One line per count that differs from `ds.expected`, with both numbers."""
    exp = ds.expected
    if exp is None:
        return []
    out = []
    for key, what in (("train", "train images (train/ + val/)"), ("test", "test images"), ("classes", "classes")):
        want, have = getattr(exp, key), counts.get(key)
        if want is not None and have is not None and want != have:
            out.append(f"datasets '{ds.name}' ({ds.path}): {have} {what}, expected {want} "
                       f"({have - want:+d}); results may not compare with the reference")
    return out


def warn_mismatches(ds: DatasetConfig, counts: dict) -> None:
    """Log each mismatch once per process."""
    for line in mismatches(ds, counts):
        if line not in _WARNED:
            _WARNED.add(line)
            log.warning(line)
