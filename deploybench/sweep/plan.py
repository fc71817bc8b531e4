"""Expand a config into runs: backbones x datasets x fractions x seeds, with stable ids."""
from __future__ import annotations

from ..config import Config
from ..records import RunSpec


def plan(cfg: Config, backbones: tuple[str, ...] = ()) -> list[RunSpec]:
    """All runs of `cfg`, optionally restricted to the named backbones, in a stable order."""
    chosen = [b for b in cfg.backbones if not backbones or b.name in backbones]
    return [RunSpec(b, d, fr, s, cfg.train)
            for d in cfg.datasets for b in chosen for fr in cfg.fractions for s in cfg.seeds]
