"""Up-front checks of user input (config names and CLI flags), run before any model or data is touched.

Each check raises DeployBenchError with one line naming the flag/key, the bad value and the known values.
"""
from __future__ import annotations

import difflib
from typing import Iterable

from .config import Config
from .errors import DeployBenchError


def _unknown(what: str, value: str, known: Iterable[str], hint: str = "") -> DeployBenchError:
    known = list(known)
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
    near = f"did you mean {', '.join(close)}? " if close else ""
    return DeployBenchError(f"{what}: unknown {value!r} ({near}known: {', '.join(known)}){hint}")


def check_choices(what: str, values: Iterable[str], known: Iterable[str]) -> None:
    """Every value is one of `known`; else one line naming `what`, the value and the closest known ones."""
    known = list(known)
    for v in values:
        if v not in known:
            raise _unknown(what, v, known)


def check_batch_sizes(values: list[int], what: str = "bench.batch_sizes") -> None:
    if not values or min(values) < 1:
        raise DeployBenchError(f"{what}: {list(values)} must be a non-empty list of integers >= 1")


def check_runtimes(values: Iterable[str], what: str = "--runtime") -> None:
    from .runtimes import RUNTIMES

    check_choices(what, values, RUNTIMES)


def check_formats(values: Iterable[str], what: str = "--format") -> None:
    from .runtimes import EXPORT_FORMATS

    check_choices(what, values, EXPORT_FORMATS)


def check_backbones(cfg: Config, names: Iterable[str]) -> None:
    """--backbone names: in the registry (else the closest registry names) and in the config (else its list)."""
    from .backbones import list_backbones

    registry, configured = list_backbones(), [b.name for b in cfg.backbones]
    for name in names:
        if name not in registry:
            close = difflib.get_close_matches(name, registry, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else "`deploybench backbones` lists them"
            raise DeployBenchError(f"--backbone: unknown backbone {name!r} ({hint})")
        if name not in configured:
            raise DeployBenchError(f"--backbone: {name!r} is not in {cfg.source}'s backbones "
                                   f"({', '.join(configured)}); add it under backbones: or pick one of those")


def check_config(cfg: Config, stages: Iterable[str]) -> None:
    """The names a stage will look up: backbones for finetune, formats/precisions for export, runtimes for
    bench — so a typo fails in one line before the first run starts, not once per run."""
    stages = set(stages)
    if "finetune" in stages:
        from .backbones import list_backbones

        for i, b in enumerate(cfg.backbones):
            check_choices(f"{cfg.source}: backbones[{i}].name", [b.name], list_backbones())
    if "export" in stages:
        from .export import PRECISIONS

        check_formats(cfg.export.formats, f"{cfg.source}: export.formats")
        check_choices(f"{cfg.source}: export.precisions", cfg.export.precisions, PRECISIONS)
    if "bench" in stages:
        check_runtimes(cfg.bench.runtimes, f"{cfg.source}: bench.runtimes")
        check_batch_sizes(cfg.bench.batch_sizes, f"{cfg.source}: bench.batch_sizes")
