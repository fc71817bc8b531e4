"""Data layer: real Fashion-MNIST IDX files, real image folders written with PIL, the split protocol."""
from __future__ import annotations

import gzip
import logging
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image

from deploybench.config import DatasetConfig
from deploybench.data import class_names, get_dataset, load_array, make_transform
from deploybench.data.splits import split_val, stratified_cap, stratified_fraction
from deploybench.errors import DeployBenchError

HALF = (0.5, 0.5, 0.5)


def fm(**kw) -> DatasetConfig:
    return DatasetConfig(name="fm", kind="fashion-mnist", **kw)


# ---------- split rules ----------

def test_stratified_cap_is_proportional_and_deterministic():
    t = np.repeat(np.arange(3), [600, 300, 100])
    idx = stratified_cap(t, 100)
    assert len(idx) == 100 and np.bincount(t[idx]).tolist() == [60, 30, 10]
    assert np.array_equal(idx, stratified_cap(t, 100))
    skewed = np.repeat(np.arange(4), [1000, 1, 1, 1])
    assert np.bincount(skewed[stratified_cap(skewed, 4)]).tolist() == [1, 1, 1, 1]
    assert len(stratified_cap(t, 2)) == 2 and set(t[stratified_cap(t, 2)]) == {0, 1}


def test_fraction_nested_and_at_least_one_per_class():
    t = np.repeat(np.arange(5), [200, 100, 50, 20, 3])
    small, big = stratified_fraction(t, 0.1), stratified_fraction(t, 0.5)
    assert set(small) <= set(big)
    assert np.bincount(t[small]).tolist() == [20, 10, 5, 2, 1]
    with pytest.raises(DeployBenchError, match="fraction"):
        stratified_fraction(t, 0)


def test_split_val_keeps_one_in_train():
    t = np.repeat(np.arange(3), [10, 2, 1])
    tr, va = split_val(t, 0.5, "x")
    assert not set(tr) & set(va) and len(tr) + len(va) == len(t)
    assert np.bincount(t[va], minlength=3).tolist() == [5, 1, 0] and set(t[tr]) == {0, 1, 2}


# ---------- Fashion-MNIST ----------

def test_fashion_mnist_splits(fmnist_available):
    ds = fm(max_train=400, max_val=100, max_test=200)
    tr, va, te = (get_dataset(ds, s) for s in ("train", "val", "test"))
    assert (len(tr), len(va), len(te)) == (400, 100, 200)
    for d, n in ((tr, 40), (va, 10), (te, 20)):
        assert np.bincount(d.targets).tolist() == [n] * 10
    assert tr.classes == class_names(ds) and tr.classes[0] == "T-shirt/top" and tr.classes[9] == "Ankle boot"
    # val is carved out of train (disjoint), test is t10k
    assert not {a.tobytes() for a in tr.images} & {a.tobytes() for a in va.images}
    full = fm()
    assert [len(get_dataset(full, s)) for s in ("train", "val", "test")] == [54000, 6000, 10000]
    assert get_dataset(full, "test").targets[0] == 9     # first t10k image is an ankle boot
    # fractions: stratified, nested, identical across calls (seeds never enter)
    f1, f5 = get_dataset(ds, "train", fraction=0.1), get_dataset(ds, "train", fraction=0.5)
    assert np.bincount(f1.targets).tolist() == [4] * 10
    assert {a.tobytes() for a in f1.images} <= {a.tobytes() for a in f5.images}
    assert np.array_equal(get_dataset(ds, "val").images, va.images)


def test_load_array_matches_eval_transform_and_is_fast(fmnist_available):
    ds = fm(max_test=300)
    x, y = load_array(ds, "test", image_size=48, mean=HALF, std=HALF, limit=50)
    assert x.shape == (50, 3, 48, 48) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [5] * 10
    d = get_dataset(ds, "test", transform=make_transform(48, HALF, HALF, train=False, augment="trivialaugment"))
    # the same images through the per-item eval transform give the same arrays
    ref = stratified_cap(d.targets, 50)
    assert np.array_equal(np.stack([d[i][0].numpy() for i in ref]), x)
    assert x.min() >= -1 and x.max() <= 1 and np.allclose(x[:, 0], x[:, 2])
    load_array(fm(), "test", image_size=64, mean=HALF, std=HALF, limit=10)   # warm the IDX cache
    t = time.perf_counter()
    x, _ = load_array(fm(), "test", image_size=64, mean=HALF, std=HALF, limit=2000)
    assert x.shape == (2000, 3, 64, 64) and time.perf_counter() - t < 4.0


def test_train_transform_augments(fmnist_available):
    d = get_dataset(fm(max_train=100), "train",
                    transform=make_transform(32, HALF, HALF, train=True, augment="trivialaugment"))
    torch.manual_seed(0)
    a, b = d[3][0], d[3][0]
    assert a.shape == (3, 32, 32) and a.dtype == torch.float32 and not torch.equal(a, b)
    with pytest.raises(DeployBenchError, match="augment"):
        make_transform(32, HALF, HALF, train=True, augment="mixup")


def test_fashion_mnist_bad_paths(tmp_path, fmnist_available):
    with pytest.raises(DeployBenchError, match="does not exist"):
        get_dataset(fm(path=str(tmp_path / "nope")), "train")
    for f in fmnist_available.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    good = get_dataset(fm(path=str(tmp_path), max_test=10), "test")
    assert len(good) == 10
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DeployBenchError, match="t10k-images-idx3-ubyte.gz"):
        get_dataset(fm(path=str(tmp_path)), "test")


# ---------- ImageFolder ----------

def _write(folder, classes, n, size=(20, 16)):
    rng = np.random.default_rng(0)
    for c in classes:
        (folder / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")


def folder_ds(root, **kw):
    return DatasetConfig(name="if", kind="imagefolder", path=str(root), **kw)


def test_imagefolder_splits_and_arrays(tmp_path):
    _write(tmp_path / "train", ["cat", "dog", "eel"], 10)
    _write(tmp_path / "test", ["cat", "dog", "eel"], 4)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = folder_ds(tmp_path, val_fraction=0.2)
    tr, va, te = (get_dataset(ds, s) for s in ("train", "val", "test"))
    assert tr.classes == ["cat", "dog", "eel"] == class_names(ds)
    assert (len(tr), len(va), len(te)) == (24, 6, 12) and not set(tr.paths) & set(va.paths)
    x, y = load_array(ds, "test", image_size=24, mean=HALF, std=HALF)
    assert x.shape == (12, 3, 24, 24) and y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    img, lbl = get_dataset(ds, "test", transform=make_transform(24, HALF, HALF, train=False, augment="none"))[5]
    assert np.array_equal(img.numpy(), x[5]) and lbl == 1
    _write(tmp_path / "val", ["cat", "dog", "eel"], 2)          # an explicit val/ replaces the split
    assert len(get_dataset(ds, "val")) == 6 and len(get_dataset(ds, "train")) == 30
    shutil.rmtree(tmp_path / "train")                            # test alone serves bring-your-own-model benches
    assert get_dataset(ds, "test").classes == ["cat", "dog", "eel"]
    with pytest.raises(DeployBenchError, match="missing train/ split"):
        get_dataset(ds, "val")


def test_imagefolder_skips_corrupt_images_with_one_warning(tmp_path, caplog):
    _write(tmp_path / "train", ["a", "b"], 5)
    _write(tmp_path / "test", ["a", "b"], 2)
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "train" / "b" / "empty.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="deploybench.data"):
        d = get_dataset(folder_ds(tmp_path, val_fraction=0.2), "train")
    assert len(d) == 8 and not any("broken" in p for p in d.paths)
    msgs = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(msgs) == 1 and msgs[0].startswith("skipped 2 unreadable images in") and "broken.png" in msgs[0]
    for f in (tmp_path / "train" / "b").glob("*.png"):
        f.write_bytes(b"junk")
    with pytest.raises(DeployBenchError, match=r"train/b: class directory has only unreadable images"):
        get_dataset(folder_ds(tmp_path), "train")


@pytest.mark.parametrize("case, match", [
    ("missing_path", "dataset path does not exist"),
    ("empty_class", r"train/b: class directory has no images"),
    ("no_test", r"missing test/ split"),
    ("class_mismatch", r"only in train: \['b'\]; only in test: \['c'\]"),
])
def test_imagefolder_errors(tmp_path, case, match):
    _write(tmp_path / "train", ["a", "b"], 3)
    _write(tmp_path / "test", ["a", "b"], 1)
    root = tmp_path
    if case == "missing_path":
        root = tmp_path / "missing"
    elif case == "empty_class":
        for f in (tmp_path / "train" / "b").iterdir():
            f.unlink()
    elif case == "no_test":
        shutil.rmtree(tmp_path / "test")
    else:
        (tmp_path / "test" / "b").rename(tmp_path / "test" / "c")
    with pytest.raises(DeployBenchError, match=match) as e:
        get_dataset(folder_ds(root), "train")
    assert "\n" not in str(e.value)


def test_caps_below_class_count(tmp_path):
    _write(tmp_path / "train", ["a", "b", "c"], 4)
    _write(tmp_path / "test", ["a", "b", "c"], 1)
    with pytest.raises(DeployBenchError, match="max_train=2"):
        get_dataset(folder_ds(tmp_path, max_train=2), "train")
    with pytest.raises(DeployBenchError, match="split 'dev'"):
        get_dataset(folder_ds(tmp_path), "dev")
