"""Typed records that stages pass to each other through files: runs, artifacts, result rows."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .config import BackboneConfig, DatasetConfig, TrainConfig
from .errors import DeployBenchError
from .formats import Artifact  # noqa: F401  (re-exported: stages import it from records)
from .io import read_json
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


@dataclass(frozen=True)
class RunMeta:
    """checkpoints/<run_id>/meta.json, written last by fine-tuning (status "complete" marks the run finished): the
    fields export, bench and the report's Run columns read, typed; the rest of the trainer's record (epochs, history,
    versions, ...) rides along in `extra`. Runners and bench workers get it as JSON (`to_json`): the worker protocol."""
    run_id: str
    backbone: str
    image_size: int
    mean: list[float]
    std: list[float]
    num_classes: Optional[int] = None
    in_chans: int = 3
    arch: Optional[str] = None
    dataset: Optional[str] = None
    domain: Optional[str] = None
    fraction: Optional[float] = None
    seed: Optional[int] = None
    pretrained: Optional[bool] = None
    params_m: Optional[float] = None
    gmacs: Optional[float] = None
    status: str = "complete"
    extra: dict[str, Any] = field(default_factory=dict)

    FILE = "meta.json"

    @classmethod
    def from_json(cls, d: dict) -> "RunMeta":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in d.items() if k in known},
                   extra={k: v for k, v in d.items() if k not in known})

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return d | self.extra

    def recorded_in(self, d: Any) -> bool:
        """Whether JSON `d` (export.json's copy) records this same run meta."""
        try:
            return isinstance(d, dict) and RunMeta.from_json(d) == self
        except TypeError:
            return False

    @classmethod
    def read(cls, ckpt_dir: Path) -> "RunMeta":
        """The finished run's record; a one-line error naming the file when it is missing or incomplete."""
        d = read_json(Path(ckpt_dir) / cls.FILE)
        if not isinstance(d, dict) or d.get("status") != "complete":
            raise DeployBenchError(f"checkpoints/{Path(ckpt_dir).name}/{cls.FILE}: missing or incomplete "
                                   "(run `deploybench finetune` first)")
        try:
            return cls.from_json(d)
        except TypeError as e:     # a required field missing: an older or hand-edited file
            raise DeployBenchError(f"checkpoints/{Path(ckpt_dir).name}/{cls.FILE}: {e} (re-run `deploybench "
                                   "finetune`)") from None


@dataclass
class StageResult:
    """What a stage did for one run: done | skipped (already complete) | failed (with the reason)."""
    run_id: str
    stage: str
    status: str
    reason: str = ""
    seconds: float = 0.0
