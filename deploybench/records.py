"""Typed records that stages pass to each other through files: runs, artifacts, result rows."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .config import BackboneConfig, DatasetConfig, TrainConfig

# Result columns (reports/results.csv and results.db), the contract from DESIGN.md, plus extensions
# documented in the README (after `versions`).
COLUMNS = [
    "run_id", "backbone", "dataset", "domain", "fraction", "seed", "pretrained", "artifact", "format",
    "runtime", "precision", "device", "device_fingerprint", "batch_size", "threads", "top1", "top5",
    "top1_delta_vs_torch_fp32", "parity_max_rel_err", "parity_top1_agree", "latency_ms_mean",
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99", "latency_ms_p50_ci_low",
    "latency_ms_p50_ci_high", "latency_cv", "throughput_ips", "peak_host_mem_mb", "peak_device_mem_mb",
    "size_mb", "params_m", "gmacs", "status", "status_reason", "created_at", "versions",
    # extensions
    "scenario", "latency_ms_std", "latency_ms_min", "latency_ms_max", "latency_count", "latency_executions",
    "latency_ms_device_p50",
    "noisy", "accuracy_flag", "parity_median_rel_err", "image_size", "efficiency", "config_name",
    "compute_precision", "accuracy_images",
]
# A row losing more than this many top-1 points vs the run's torch fp32 reference gets `accuracy_flag`; the report
# flags the same rows. The one definition both use.
ACC_DROP_PT = 1.0


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
        """Readable and stable: the same setup always gets the same id (content hash)."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        digest = hashlib.sha1(payload.encode()).hexdigest()[:8]
        return f"{self.backbone.name}-{self.dataset.name}-f{self.fraction:g}-s{self.seed}-{digest}"

    def ckpt_dir(self, root: Path) -> Path:
        return Path(root) / "checkpoints" / self.run_id

    def engine_dir(self, root: Path) -> Path:
        return Path(root) / "engines" / self.run_id


@dataclass
class Artifact:
    """A deployable file: what the export stage wrote and the bench stage runs."""
    path: str                   # absolute or workdir-relative path
    format: str                 # pytorch | onnx | openvino | tensorrt
    precision: str              # precision the artifact carries: fp32 | fp16 | int8
    run_id: str = ""


@dataclass
class StageResult:
    """What a stage did for one run: done | skipped (already complete) | failed (with the reason)."""
    run_id: str
    stage: str
    status: str
    reason: str = ""
    seconds: float = 0.0
