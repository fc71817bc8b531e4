"""Datasets (Fashion-MNIST IDX, ImageFolder), the split protocol, and transforms.

Split protocol (details in datasets.py / splits.py): val = the dataset's own val split or a stratified
`val_fraction` split of train with fixed seed 0; `max_*` are stratified caps; `fraction` is a stratified,
nested subset of the capped train split; all selections are identical across run seeds.
"""
from .datasets import ArrayDataset, FileDataset, class_names, get_dataset, load_array
from .transforms import EvalTransform, make_transform

__all__ = ["ArrayDataset", "FileDataset", "EvalTransform", "class_names", "get_dataset", "load_array",
           "make_transform"]
