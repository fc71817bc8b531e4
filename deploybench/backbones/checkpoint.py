"""Rebuild a fine-tuned model from its checkpoint folder: the backbone of meta.json with best.pt's weights."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from ..errors import DeployBenchError
from ..records import RunMeta
from .registry import create_backbone


def try_load(path: Path) -> dict | None:
    """Load a checkpoint dict with weights_only=True; None when missing, truncated or not a checkpoint."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile):
        return None
    return state if isinstance(state, dict) and "model" in state else None


def load_model(ckpt_dir: Path, which: str = "best") -> tuple[torch.nn.Module, RunMeta]:
    """(model in eval mode, its RunMeta) from a finished run's `checkpoints/<run_id>/<which>.pt`."""
    ckpt_dir = Path(ckpt_dir)
    rel = f"checkpoints/{ckpt_dir.name}"
    meta = RunMeta.read(ckpt_dir)
    state = try_load(ckpt_dir / f"{which}.pt")
    if state is None:
        raise DeployBenchError(f"{rel}/{which}.pt: missing or truncated (re-run `deploybench finetune`)")
    model = create_backbone(meta.backbone, meta.num_classes, weights="none", image_size=meta.image_size,
                            arch=meta.arch)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise DeployBenchError(f"{rel}/{which}.pt: does not match backbone {meta.backbone} "
                               f"({str(e).splitlines()[0]}); re-run `deploybench finetune`") from None
    return model.eval(), meta
