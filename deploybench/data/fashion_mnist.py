"""Fashion-MNIST from its IDX files (.gz or raw), held in memory as uint8 arrays.

Search order: `path` from the config (must then hold the files), $DEPLOYBENCH_DATA/fashion-mnist,
/usr/share/datasets/fashion-mnist, ~/.cache/deploybench (a previous download); only if none holds the files,
torchvision downloads them into ~/.cache/deploybench. Each folder is also searched under FashionMNIST/raw
(torchvision's layout). Splits: train = the 60k train files, test = t10k; there is no official val.
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DeployBenchError

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CACHE = Path.home() / ".cache" / "deploybench"


def _file(folder: Path, base: str) -> Optional[Path]:
    for name in (base, base + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _holds_files(folder: Path) -> bool:
    return all(_file(folder, b) for pair in FILES.values() for b in pair)


def _with_raw(folder: Path) -> list[Path]:
    return [folder, folder / "FashionMNIST" / "raw"]


INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"


def _roots() -> list[Path]:
    roots = [Path(os.environ["DEPLOYBENCH_DATA"]) / "fashion-mnist"] if os.environ.get("DEPLOYBENCH_DATA") else []
    return roots + [Path("/usr/share/datasets/fashion-mnist"), CACHE]


def find_local() -> Optional[Path]:
    """The first search-order folder (module docstring) that holds the four IDX files, or None; no download."""
    return next((f for root in _roots() for f in _with_raw(root) if _holds_files(f)), None)


def find_folder(path: Optional[str]) -> Path:
    """The folder holding the four IDX files (see module docstring); downloads only as a last resort."""
    if path:
        for f in _with_raw(Path(path)):
            if _holds_files(f):
                return f
        what = "does not exist" if not Path(path).exists() else "lacks the Fashion-MNIST IDX files"
        raise DeployBenchError(f"{path}: dataset path {what} (need {', '.join(p[0] for p in FILES.values())} "
                               "and their labels, .gz or raw)")
    found = find_local()
    if found is not None:
        return found
    try:
        from torchvision.datasets import FashionMNIST
        for train in (True, False):
            FashionMNIST(str(CACHE), train=train, download=True)
    except Exception as e:
        raise DeployBenchError(f"Fashion-MNIST not found in {', '.join(map(str, _roots()))} and the download "
                               f"failed ({type(e).__name__}); install it with `{INSTALL_HINT}` (what `make "
                               "install` tries), or set datasets[].path or DEPLOYBENCH_DATA") from None
    return CACHE / "FashionMNIST" / "raw"


@functools.lru_cache(maxsize=8)
def _read_idx(path: str, mtime_ns: int) -> np.ndarray:
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
        magic = int.from_bytes(data[:4], "big")
        ndim = magic & 0xFF
        if magic >> 8 != 0x08 or ndim not in (1, 3):    # 0x08 = unsigned byte
            raise ValueError(f"bad magic {magic:#x}")
        shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
        arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        return arr.reshape(shape)
    except (OSError, EOFError, ValueError) as e:
        raise DeployBenchError(f"{path}: not a readable IDX file ({e}); re-download Fashion-MNIST") from None


def load(path: Optional[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images N x 28 x 28, int64 labels) of split train | test."""
    folder = find_folder(path)
    images_f, labels_f = (_file(folder, b) for b in FILES[split])
    images = _read_idx(str(images_f), images_f.stat().st_mtime_ns)
    labels = _read_idx(str(labels_f), labels_f.stat().st_mtime_ns).astype(np.int64)
    if len(images) != len(labels) or images.ndim != 3 or labels.max(initial=0) >= len(CLASSES):
        raise DeployBenchError(f"{labels_f}: {len(labels)} labels (0-9) for {len(images)} images expected; "
                               "re-download Fashion-MNIST")
    return images, labels
