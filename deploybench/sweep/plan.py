"""Expand a config into runs: backbones x datasets x fractions x seeds, with stable ids; a dry-run listing."""
from __future__ import annotations

from pathlib import Path

from ..backbones.registry import WEIGHT_CHOICES
from ..config import Config, DatasetConfig
from ..records import RunSpec


def plan(cfg: Config, backbones: tuple[str, ...] = ()) -> list[RunSpec]:
    """All runs of `cfg`, optionally restricted to the named backbones, in a stable order."""
    chosen = [b for b in cfg.backbones if not backbones or b.name in backbones]
    return [RunSpec(b, d, fr, s, cfg.train)
            for d in cfg.datasets for b in chosen for fr in cfg.fractions for s in cfg.seeds]


def dataset_check(ds: DatasetConfig) -> str:
    """One line: the folder's counts against `expected` (file names only, nothing decoded), or why not."""
    from ..data.counts import folder_counts, mismatches

    if ds.kind != "imagefolder":
        return f"{ds.name}: {ds.kind}, not checked"
    found = folder_counts(ds.path) if Path(ds.path).is_dir() else None
    if found is None:
        return f"{ds.name}: {ds.path} not found (arrange it as {ds.path}/train/<class>/*, {ds.path}/test/<class>/*)"
    have = f"train {found['train']}, test {found['test']}, classes {found['classes']}"
    if ds.expected is None:
        return f"{ds.name}: {have} (no expected counts)"
    bad = mismatches(ds, found)
    return f"{ds.name}: {have}: " + ("matches expected" if not bad else "WARNING " + "; ".join(
        line.split(": ", 1)[1] for line in bad))


def _weights(w) -> str:
    return "default" if w is None else w if w in WEIGHT_CHOICES else "file"


def render_plan(cfg: Config, runs: list[RunSpec]) -> str:
    """The dry run: every run, the dataset count checks, and the totals."""
    lines = [f"{'run_id':<60} {'backbone':<18} {'weights':<12} {'dataset':<20} {'fraction':>8} {'seed':>4}"]
    lines += [f"{r.run_id:<60} {r.backbone.name:<18} {_weights(r.backbone.weights):<12} "
              f"{r.dataset.name:<20} {r.fraction:>8g} {r.seed:>4}" for r in runs]
    datasets = list(dict.fromkeys(r.dataset.name for r in runs))
    checks = [dataset_check(d) for d in cfg.datasets if d.name in datasets]
    backbones = len({r.backbone.name for r in runs})
    lines += ["", "Dataset folders:"] + [f"  {c}" for c in checks]
    lines += ["", f"{len(runs)} runs = {backbones} backbones x {len(datasets)} datasets x {len(cfg.fractions)} "
                  f"fractions x {len(cfg.seeds)} seeds (nothing trained)"]
    return "\n".join(lines)
