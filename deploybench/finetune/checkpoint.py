"""Checkpoint files: atomic torch.save of plain dicts, RNG state as tensors; loading lives in backbones."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from ..backbones.checkpoint import try_load  # noqa: F401  (resume reads last.pt and best.pt with it)
from ..io import atomic_path


def save(path: Path, state: dict) -> None:
    """torch.save `state` to `path` atomically (a kill leaves the old file or the new one, never half)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def rng_state() -> dict:
    """torch / numpy / random generator states as tensors and primitives (weights_only-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "random": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() captured."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    r = state["random"]
    random.setstate((r["version"], tuple(int(v) for v in r["state"].tolist()), r["gauss_next"]))
