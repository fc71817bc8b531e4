"""Checkpoint files: atomic torch.save of plain dicts, weights_only loads, RNG state as tensors."""
from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DeployBenchError
from ..io import atomic_path, read_json


def save(path: Path, state: dict) -> None:
    """torch.save `state` to `path` atomically (a kill leaves the old file or the new one, never half)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def try_load(path: Path) -> dict | None:
    """Load a checkpoint dict with weights_only=True; None when missing, truncated or not a checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile):
        return None
    return state if isinstance(state, dict) and "model" in state else None


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


def load_checkpoint(ckpt_dir: Path, which: str = "best") -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, meta dict) from a finished run's `checkpoints/<run_id>/<which>.pt`."""
    from ..backbones import create_backbone

    ckpt_dir = Path(ckpt_dir)
    rel = f"checkpoints/{ckpt_dir.name}"
    meta = read_json(ckpt_dir / "meta.json")
    if not isinstance(meta, dict) or meta.get("status") != "complete":
        raise DeployBenchError(f"{rel}/meta.json: missing or incomplete (re-run `deploybench finetune`)")
    state = try_load(ckpt_dir / f"{which}.pt")
    if state is None:
        raise DeployBenchError(f"{rel}/{which}.pt: missing or truncated (re-run `deploybench finetune`)")
    model = create_backbone(meta["backbone"], meta["num_classes"], weights="none", image_size=meta["image_size"],
                            arch=meta.get("arch"))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise DeployBenchError(f"{rel}/{which}.pt: does not match backbone {meta['backbone']} "
                               f"({str(e).splitlines()[0]}); re-run `deploybench finetune`") from None
    return model.eval(), meta
