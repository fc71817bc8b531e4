"""Artifacts and their formats: each format's files on disk, size, export-time parity runtime and builder.

The registry (`runtimes.FORMATS`) is the built-in formats below plus the `artifact_format` of each registered
Runner that brings its own (runtimes/torch_aoti.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

PRECISIONS = ("fp32", "fp16", "int8")     # what an artifact can hold


@dataclass
class Artifact:
    """A deployable file: what the export stage wrote and the bench stage runs."""
    path: str                   # absolute or workdir-relative path
    format: str                 # an ArtifactFormat name: pytorch | onnx | openvino | tensorrt | pt2
    precision: str              # precision the artifact carries: fp32 | fp16 | int8
    run_id: str = ""
    recipe: str = ""            # int8 recipe: s8s8-qdq | u8s8-qdq | nncf-ptq ("" for fp32/fp16)
    target: str = ""            # runtime the artifact is made for ("" = any)


@dataclass
class ExportEntry:
    """One artifact's record in engines/<run_id>/export.json (`artifacts` list), written by export, read by bench.
    The INT8 fields (None otherwise) are an INT8 recipe's accuracy budget on validation (export/int8.py)."""
    file: str
    format: str
    precision: str
    recipe: str = ""
    target: str = ""
    size_mb: Optional[float] = None
    status: str = "skipped"     # ok | skipped | failed
    reason: str = ""
    seconds: float = 0.0
    parity: Optional[dict] = None     # export-time parity on validation images (export/parity.py)
    calibration_method: Optional[str] = None
    fp32_layers: Optional[list] = None
    val_top1_fp32: Optional[float] = None
    val_top1_int8: Optional[float] = None
    val_drop: Optional[float] = None
    val_drop_se: Optional[float] = None
    val_images: Optional[int] = None
    budget_met: Optional[bool] = None

    INT8 = ("calibration_method", "fp32_layers", "val_top1_fp32", "val_top1_int8", "val_drop", "val_drop_se",
            "val_images", "budget_met")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if k not in self.INT8 or v is not None}

    @classmethod
    def from_json(cls, d: dict) -> "ExportEntry":
        """An entry of a manifest (keys this version does not know are dropped)."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @classmethod
    def listed(cls, manifest: dict) -> dict[str, "ExportEntry"]:
        """{file: entry} of an export.json dict (entries that are not objects with a `file` are skipped)."""
        return {a["file"]: cls.from_json(a) for a in manifest.get("artifacts", [])
                if isinstance(a, dict) and "file" in a}

    def update(self, **fields) -> None:
        for k, v in fields.items():
            if k not in self.__dataclass_fields__:
                raise KeyError(f"ExportEntry has no field {k!r}")
            setattr(self, k, v)

    def artifact(self, engine_dir: Path, run_id: str) -> Artifact:
        return Artifact(str(Path(engine_dir) / self.file), self.format, self.precision, run_id, self.recipe,
                        self.target)


# builder(job, precision) -> export.json entries; `job` is export's per-run job (model, meta, artifact(), ...)
Builder = Callable[[object, str], list]


@dataclass(frozen=True)
class ArtifactFormat:
    """One artifact format. `companions`: suffixes of files that travel with the main file (OpenVINO's .bin);
    `parity_runtime`: the runtime export-time parity runs on; `builder`: None for formats export does not make;
    `planned(precisions)`: the files its builder makes, for export's skip check (the built-in formats' files are
    export's own rules: export._planned)."""
    name: str
    suffix: str
    companions: tuple[str, ...] = ()
    parity_runtime: str = ""
    builder: Optional[Builder] = None
    planned: Optional[Callable[[list], list]] = None

    def files(self, path: Path) -> list[Path]:
        """The main file and its companions."""
        path = Path(path)
        return [path] + [path.with_suffix(s) for s in self.companions]

    def size_mb(self, path: Path) -> Optional[float]:
        """MiB of all its files; None when one is missing."""
        try:
            return round(sum(f.stat().st_size for f in self.files(path)) / 2**20, 3)
        except OSError:
            return None


def _job(method: str) -> Builder:
    return lambda job, precision: getattr(job, method)(precision)


BUILTIN = (
    ArtifactFormat("pytorch", ".pt"),
    ArtifactFormat("onnx", ".onnx", parity_runtime="onnxruntime-cpu", builder=_job("onnx")),
    ArtifactFormat("openvino", ".xml", (".bin",), parity_runtime="openvino", builder=_job("openvino")),
    ArtifactFormat("tensorrt", ".engine", parity_runtime="tensorrt", builder=_job("tensorrt")),
)
