"""ImageFolder datasets: `path/train/<class>/*`, optional `path/val/<class>/*`, required `path/test/<class>/*`.

Classes are the sorted class-directory names of train/; val/ and test/ must have the same set.
Unreadable images are detected cheaply at scan time (PIL open + verify) and skipped; one warning per
split directory reports how many. A class directory without (readable) images is an error.
The PIL check is cached per process, keyed on each file's path, mtime and size.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ..errors import DeployBenchError

log = logging.getLogger("deploybench.data")
_WARNED: set = set()
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


@functools.lru_cache(maxsize=None)
def _readable(path: Path, _mtime_ns: int, _size: int) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:   # PIL raises many types for corrupt files
        return False


def scan(root: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(classes, image paths, int64 targets) of one split directory."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DeployBenchError(f"{root}: no class directories (expected {root}/<class>/<images>)")
    paths, targets, bad = [], [], []
    for ci, c in enumerate(classes):
        files = sorted(p for p in (root / c).iterdir()
                       if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."))
        ok = [_readable(p, p.stat().st_mtime_ns, p.stat().st_size) for p in files]
        good = [p for p, r in zip(files, ok) if r]
        bad += [p for p, r in zip(files, ok) if not r]
        if not good:
            what = f"only unreadable images ({len(files)})" if files else "no images"
            raise DeployBenchError(f"{root / c}: class directory has {what}; add images or remove the directory")
        paths += [str(p) for p in good]
        targets += [ci] * len(good)
    if bad and (str(root), tuple(bad)) not in _WARNED:     # once per directory and set of bad files
        _WARNED.add((str(root), tuple(bad)))
        log.warning("skipped %d unreadable images in %s, e.g. %s", len(bad), root, bad[0].name)
    return classes, paths, np.asarray(targets, dtype=np.int64)


def split_dir(path: Optional[str], split: str, *, required: bool) -> Optional[Path]:
    root = Path(path or "")
    if not path or not root.is_dir():
        raise DeployBenchError(f"{path}: dataset path does not exist (datasets[].path of an imagefolder dataset)")
    d = root / split
    if d.is_dir():
        return d
    if required:
        raise DeployBenchError(f"{d}: missing {split}/ split (expected {d}/<class>/<images>)")
    return None


def check_same_classes(train: list[str], other: list[str], other_dir: Path) -> None:
    if train != other:
        only_train = sorted(set(train) - set(other))
        only_other = sorted(set(other) - set(train))
        raise DeployBenchError(f"{other_dir}: class directories differ from train/ (only in train: "
                               f"{only_train or 'none'}; only in {other_dir.name}: {only_other or 'none'})")
