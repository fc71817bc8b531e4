"""Artifacts and their formats: each format's files on disk, size, export-time parity runtime and builder.

The registry (`runtimes.FORMATS`) is the built-in formats below plus the `artifact_format` of each registered
Runner that brings its own (runtimes/torch_aoti.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass
class Artifact:
    """A deployable file: what the export stage wrote and the bench stage runs."""
    path: str                   # absolute or workdir-relative path
    format: str                 # an ArtifactFormat name: pytorch | onnx | openvino | tensorrt | pt2
    precision: str              # precision the artifact carries: fp32 | fp16 | int8
    run_id: str = ""
    recipe: str = ""            # int8 recipe: s8s8-qdq | u8s8-qdq | nncf-ptq ("" for fp32/fp16)
    target: str = ""            # runtime the artifact is made for ("" = any)


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
