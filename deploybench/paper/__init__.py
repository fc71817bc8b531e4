"""The seed study's own figures, shipped with the package (transcribed from the paper; see README.md here).

Jeevan & Sethi, "Which Backbone to Use: A Resource-efficient Domain Specific Comparison for Computer Vision"
(2024). Table 2 -> `backbones()`, Table 3 -> `datasets()`, Tables 4-8 -> `figures()`. The CSVs' keys are
deploybench's registry / paper.yaml names, but for WaveMix (`registry_name()`); `paper_backbone()` /
`paper_dataset()` give the paper's names, `dataset_key()` also accepts those ("CIFAR-10").
"""
from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Optional

CITATION = ('P. Jeevan and A. Sethi, "Which Backbone to Use: A Resource-efficient Domain Specific Comparison for '
            'Computer Vision", 2024')
FILES = ("which-backbone-backbones.csv", "which-backbone-datasets.csv", "which-backbone-top1.csv")
DATASET_NAMES = {
    "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tiny_imagenet": "Tiny ImageNet", "stanford_dogs": "Stanford Dogs",
    "flowers102": "Oxford Flowers-102", "cub200_2011": "CUB-200-2011", "stanford_cars": "Stanford Cars",
    "food101": "Food-101", "dtd": "DTD", "neu_surface_defects": "NEU surface defects", "uc_merced": "UC Merced",
    "eurosat": "EuroSAT", "plantvillage": "PlantVillage", "plantclef": "PlantCLEF",
    "galaxy10_decals": "Galaxy10 DECaLS", "breakhis_40x": "BreakHis 40x", "breakhis_100x": "BreakHis 100x",
    "breakhis_200x": "BreakHis 200x", "breakhis_400x": "BreakHis 400x", "rsna_pneumonia": "RSNA Pneumonia",
}


# the paper's backbone keys that are not our registry name: our `wavemix` is a level-1 WaveMix-288/16
REGISTRY_NAMES = {"wavemix": "wavemix_192_16_l3"}


@dataclass(frozen=True)
class PaperBackbone:
    name: str               # the CSV's key (registry_name() gives ours)
    paper_name: str
    params_m: float
    imagenet_top1: float    # of the ImageNet weights the paper fine-tuned
    weights_in_paper: str   # torchvision | WaveMix authors


@dataclass(frozen=True)
class PaperDataset:
    name: str
    domain: str
    train: int
    test: int
    classes: int


@dataclass(frozen=True)
class PaperFigure:
    backbone: str
    dataset: str
    fraction: float
    top1: float             # test top-1 %, best of three runs chosen on the test set
    source: str             # "Table 4" ...


def read_rows(filename: str) -> list[dict]:
    """One shipped CSV as dicts of strings."""
    text = resources.files(__package__).joinpath(filename).read_text()
    return list(csv.DictReader(text.splitlines()))


@functools.lru_cache(maxsize=None)
def backbones() -> dict[str, PaperBackbone]:
    return {r["backbone"]: PaperBackbone(r["backbone"], r["paper_name"], float(r["params_m"]),
                                         float(r["imagenet_top1"]), r["weights_in_paper"])
            for r in read_rows(FILES[0])}


@functools.lru_cache(maxsize=None)
def datasets() -> dict[str, PaperDataset]:
    return {r["dataset"]: PaperDataset(r["dataset"], r["domain"], int(r["train_images"]), int(r["test_images"]),
                                       int(r["classes"]))
            for r in read_rows(FILES[1])}


@functools.lru_cache(maxsize=None)
def _figures() -> tuple[PaperFigure, ...]:
    return tuple(PaperFigure(r["backbone"], r["dataset"], float(r["fraction"]), float(r["top1"]), r["source"])
                 for r in read_rows(FILES[2]))


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@functools.lru_cache(maxsize=None)
def _dataset_aliases() -> dict[str, str]:
    out = {_key(n): n for n in datasets()}
    out |= {_key(shown): n for n, shown in DATASET_NAMES.items()}
    return out


def dataset_key(name: Optional[str]) -> Optional[str]:
    """The paper's dataset key for one of our dataset names ("CIFAR-10", "cifar10", "cifar_10"), or None."""
    return _dataset_aliases().get(_key(name or ""))


def registry_name(key: str) -> str:
    """Our registry name for one of the paper's backbone keys."""
    return REGISTRY_NAMES.get(key, key)


def backbone_key(name: str) -> Optional[str]:
    """The paper's backbone key for one of our registry names, or None when the paper did not use it."""
    return next((k for k in backbones() if registry_name(k) == name), None)


def figures(backbone: str, dataset: str, fraction: float) -> list[PaperFigure]:
    """The paper's figures for our backbone / dataset names at `fraction`; two when its tables disagree."""
    bb, ds = backbone_key(backbone), dataset_key(dataset)
    return [f for f in _figures() if f.backbone == bb and f.dataset == ds and abs(f.fraction - fraction) < 1e-9]


def paper_backbone(name: str) -> str:
    """The paper's name for one of our registry names (the name itself when the paper did not use it)."""
    key = backbone_key(name)
    return backbones()[key].paper_name if key else name


def paper_dataset(name: str) -> str:
    key = dataset_key(name)
    return DATASET_NAMES[key] if key else name
