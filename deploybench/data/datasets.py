"""get_dataset / load_array / class_names over both dataset kinds, with the split protocol:

- val: the dataset's val split if it has one (imagefolder val/), else a stratified `val_fraction` split of
  train with the fixed seed 0, so val is identical across run seeds;
- caps: `max_train` / `max_val` / `max_test` are stratified caps (fixed seed) applied after the val split;
- `fraction` in (0, 1]: a stratified, nested subset of the capped train split (fixed seed, >= 1 per class);
  it applies to train only (val and test stay whole, so runs at different fractions are comparable).
See splits.py for the selection rule.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..config import DatasetConfig
from ..errors import DeployBenchError
from . import counts, fashion_mnist, imagefolder
from .splits import split_val, stratified_cap, stratified_fraction
from .transforms import EvalTransform

SPLITS = ("train", "val", "test")


class _Base(Dataset):
    def __init__(self, targets: np.ndarray, classes: list[str], transform: Optional[Callable] = None):
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def read(self, i: int) -> torch.Tensor:
        """Image i as a uint8 (C, H, W) tensor."""
        raise NotImplementedError

    def __getitem__(self, i: int):
        img = self.read(i)
        return (self.transform(img) if self.transform else img), int(self.targets[i])


class ArrayDataset(_Base):
    """In-memory uint8 images, (N, H, W) grayscale or (N, H, W, C)."""

    def __init__(self, images: np.ndarray, targets, classes, transform=None):
        super().__init__(targets, classes, transform)
        self.images = images

    def batch(self, idx: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx]))
        return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)

    def read(self, i: int) -> torch.Tensor:
        return self.batch(np.asarray([i]))[0]

    def subset(self, idx: np.ndarray) -> "ArrayDataset":
        return ArrayDataset(self.images[idx], self.targets[idx], self.classes, self.transform)


class FileDataset(_Base):
    """Image files decoded with PIL as RGB."""

    def __init__(self, paths: list[str], targets, classes, transform=None):
        super().__init__(targets, classes, transform)
        self.paths = list(paths)

    def read(self, i: int) -> torch.Tensor:
        try:
            with Image.open(self.paths[i]) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as e:   # passed the scan-time verify, failed to decode (e.g. truncated JPEG)
            raise DeployBenchError(f"{self.paths[i]}: cannot decode image ({e}); delete or replace it") from None
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def subset(self, idx: np.ndarray) -> "FileDataset":
        return FileDataset([self.paths[j] for j in idx], self.targets[idx], self.classes, self.transform)


def _sources(ds: DatasetConfig, split: str) -> dict[str, Optional[_Base]]:
    """The whole train / val (None if absent) / test splits as the dataset ships them.

    An imagefolder asked only for its test split needs no train/ (bring-your-own-model benchmarks)."""
    if ds.kind == "fashion-mnist":
        out = {s: ArrayDataset(*fashion_mnist.load(ds.path, s), fashion_mnist.CLASSES) for s in ("train", "test")}
        return {**out, "val": None}
    if ds.kind != "imagefolder":
        raise DeployBenchError(f"datasets '{ds.name}': kind {ds.kind!r} is not fashion-mnist or imagefolder")
    train_dir = imagefolder.split_dir(ds.path, "train", required=split != "test")
    out = {"train": None, "val": None}
    classes = None
    if train_dir is not None:
        classes, paths, targets = imagefolder.scan(train_dir)
        out["train"] = FileDataset(paths, targets, classes)
    for name, required in (("test", True), ("val", False)):
        if name == "test" and train_dir is None and not (Path(ds.path) / "test").is_dir():
            d = Path(ds.path)      # bring-your-own-model data: a plain folder of class folders is the test split
        else:
            d = imagefolder.split_dir(ds.path, name, required=required)
        if d is not None:
            other, paths, targets = imagefolder.scan(d)
            if classes is None:
                classes = other
            imagefolder.check_same_classes(classes, other, d)
            out[name] = FileDataset(paths, targets, classes)
    if out["train"] is not None:
        counts.warn_mismatches(ds, {"train": sum(len(out[s]) for s in ("train", "val") if out[s] is not None),
                                    "test": len(out["test"]), "classes": len(classes)})
    return out


def _cap(d: _Base, cap: Optional[int], key: str, ds: DatasetConfig) -> _Base:
    if cap is not None and cap < len(d.classes) and key == "max_train":
        raise DeployBenchError(f"datasets '{ds.name}': {key}={cap} is below the number of classes "
                               f"({len(d.classes)}); raise it")
    if cap is not None and cap < 1:
        raise DeployBenchError(f"datasets '{ds.name}': {key}={cap} must be >= 1")
    return d.subset(stratified_cap(d.targets, cap))


def get_dataset(ds: DatasetConfig, split: str, *, fraction: float = 1.0,
                transform: Optional[Callable] = None) -> _Base:
    """The `split` (train | val | test) of `ds` under the split protocol in the module docstring.

    Items are (transform(uint8 CHW tensor), label); the dataset has `.classes` and `.targets`.
    """
    if split not in SPLITS:
        raise DeployBenchError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if not 0 < fraction <= 1:
        raise DeployBenchError(f"datasets '{ds.name}': fraction {fraction} must be in (0, 1]")
    src = _sources(ds, split)
    if split == "test":
        out = _cap(src["test"], ds.max_test, "max_test", ds)
    else:
        if src["val"] is not None:
            train, val = src["train"], src["val"]
        else:
            tr, va = split_val(src["train"].targets, ds.val_fraction, f"datasets '{ds.name}'")
            train, val = src["train"].subset(tr), src["train"].subset(va)
        if split == "val":
            out = _cap(val, ds.max_val, "max_val", ds)
        else:
            out = _cap(train, ds.max_train, "max_train", ds)
            out = out.subset(stratified_fraction(out.targets, fraction))
    out.transform = transform
    return out


def class_names(ds: DatasetConfig, split: str = "train") -> list[str]:
    if ds.kind == "fashion-mnist":
        return list(fashion_mnist.CLASSES)
    if split == "train":
        return imagefolder.scan(imagefolder.split_dir(ds.path, "train", required=True))[0]
    return _sources(ds, split)[split].classes


def load_array(ds: DatasetConfig, split: str, *, image_size: int, mean, std, limit: Optional[int] = None,
               fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Eval-transformed images (float32 N x 3 x S x S) and int64 labels; `limit` is a stratified cap."""
    d = get_dataset(ds, split, fraction=fraction)
    idx = stratified_cap(d.targets, limit)
    tf = EvalTransform(image_size, mean, std)
    x = np.empty((len(idx), 3, image_size, image_size), dtype=np.float32)
    with torch.no_grad():
        if isinstance(d, ArrayDataset):
            for a in range(0, len(idx), 256):
                tf(d.batch(idx[a:a + 256]), out=torch.from_numpy(x[a:a + 256]))
        else:
            for j, i in enumerate(idx):
                x[j] = tf(d.read(int(i))).numpy()
    return x, d.targets[idx].copy()
