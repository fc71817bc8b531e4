"""Typed records that stages pass to each other through files: runs, artifacts, result rows."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from .config import BackboneConfig, DatasetConfig, TrainConfig
from .formats import Artifact  # noqa: F401  (re-exported: stages import it from records)
from .rows import COLUMNS, ResultRow  # noqa: F401  (result columns: the fields of rows.ResultRow, in order)
from .workdir import Workdir

# A row losing more than this many top-1 points vs the run's torch fp32 reference gets `accuracy_flag`; the report
# flags the same rows. The one definition both use.
ACC_DROP_PT = 1.0


TRAIN_NOT_MODEL = {"num_workers"}
LATER_DATASET_FIELDS = ("expected", "augment")   # added after 0.1 (see legacy_run_id)


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run: backbone x dataset x fraction x seed under one training setup."""
    backbone: BackboneConfig
    dataset: DatasetConfig
    fraction: float
    seed: int
    train: TrainConfig

    @property
    def run_id(self) -> str:
        """`<backbone>-<dataset>-f<fraction>-s<seed>-<hash8>`; the hash covers what determines the trained model
        except the seed (so seeds of one setup share it): backbone + weights, the dataset's identity (name, kind,
        image size, train/val caps, val fraction: not its path, max_test or anything bench-only), the fraction
        and the training settings except num_workers."""
        return f"{self.backbone.name}-{self.dataset.name}-f{self.fraction:g}-s{self.seed}-{self.setup_hash}"

    @property
    def setup_hash(self) -> str:
        ds = self.dataset.identity()
        train = {k: v for k, v in dataclasses.asdict(self.train).items() if k not in TRAIN_NOT_MODEL}
        payload = json.dumps({"backbone": dataclasses.asdict(self.backbone), "dataset": ds, "fraction": self.fraction,
                              "train": train}, sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()[:8]

    @property
    def legacy_run_id(self) -> str:
        """The 0.1 id (hash of every field of 0.1's configs, path and seed included), for workdirs made before run
        ids changed; DatasetConfig's later fields (`expected`, `augment` unset) are left out as 0.1 had none."""
        fields = dataclasses.asdict(self)
        fields["dataset"] = {k: v for k, v in fields["dataset"].items()
                             if k not in LATER_DATASET_FIELDS or (k == "augment" and v is not None)}
        payload = json.dumps(fields, sort_keys=True, default=str)
        return f"{self.backbone.name}-{self.dataset.name}-f{self.fraction:g}-s{self.seed}-" \
               f"{hashlib.sha1(payload.encode()).hexdigest()[:8]}"

    def stored_id(self, root: Path) -> str:
        """run_id, or legacy_run_id where only a workdir of an older version has this run (Workdir.stored_id)."""
        return Workdir(root).stored_id(self)

    def ckpt_dir(self, root: Path) -> Path:
        return Workdir(root).ckpt_dir(self.stored_id(root))

    def engine_dir(self, root: Path) -> Path:
        return Workdir(root).engine_dir(self.stored_id(root))


@dataclass
class StageResult:
    """What a stage did for one run: done | skipped (already complete) | failed (with the reason)."""
    run_id: str
    stage: str
    status: str
    reason: str = ""
    seconds: float = 0.0
