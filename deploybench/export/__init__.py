"""Export stage: checkpoint -> ONNX fp32/fp16/int8, OpenVINO IR, TensorRT engines, with parity per artifact.

Writes engines/<run_id>/ and export.json (merged with earlier entries). Idempotent: an artifact whose entry
is ok and whose file exists is kept; missing, failed or skipped ones are (re)built. All writes are atomic.
INT8 is made per target (deploybench.export.int8): model.int8.u8s8.onnx (ORT CPU, with format onnx),
model.int8.nncf.xml (OpenVINO, with format openvino), model.int8.s8s8.onnx (TensorRT and ORT's GPU EPs, and the
source of the TensorRT int8 engine: with format tensorrt), each within an accuracy budget on the validation split.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..config import ExportConfig
from ..errors import DeployBenchError
from ..io import read_json, write_json
from ..formats import PRECISIONS, ExportEntry
from ..records import Artifact, RunMeta, RunSpec, StageResult
from ..runtimes import EXPORT_FORMATS as FORMATS
from ..runtimes import get_format
from .int8 import RECIPES

ONNX_FILES = {"fp32": ["model.fp32.onnx"], "fp16": ["model.fp16.onnx"], "int8": [RECIPES["u8s8"][0]]}
GPU_INT8 = RECIPES["s8s8"][0]     # ONNX, but made for the tensorrt format (and ORT's GPU EPs): built with it
SOURCE = {"fp32": "model.fp32.onnx", "fp16": "model.fp16.onnx", "int8": RECIPES["s8s8"][0]}   # of IR and engines
IR_FILES = {"fp32": "model.fp32.xml", "fp16": "model.fp16.xml", "int8": RECIPES["nncf"][0]}


def _unusable(src: ExportEntry) -> str:
    """Why artifacts made from `src` cannot be built ("" when they can)."""
    return "" if src.status == "ok" else f"{src.file} {src.status}"


def _is_done(out: Path, entry: Optional[ExportEntry]) -> bool:
    return entry is not None and entry.status == "ok" and entry.format in FORMATS \
        and all(f.is_file() for f in get_format(entry.format).files(out / entry.file))


class _Export:
    """One run's export: lazily loaded data, the manifest, and the artifact builders."""

    def __init__(self, run: RunSpec, root: Path, cfg: ExportConfig, model, meta: RunMeta, max_batch: int,
                 opt_batches: Optional[list[int]] = None, formats: tuple = FORMATS):
        self.run, self.cfg, self.model, self.meta, self.max_batch = run, cfg, model, meta, max_batch
        self.formats = tuple(formats)
        self.opt_batches = opt_batches
        self.out = run.engine_dir(root)
        self.out.mkdir(parents=True, exist_ok=True)
        old = read_json(self.out / "export.json") or {}
        fresh = meta.recorded_in(old.get("meta"))    # a re-trained checkpoint invalidates every earlier artifact
        self.entries: dict[str, ExportEntry] = ExportEntry.listed(old) if fresh else {}
        self._val = None
        self._int8 = None
        self.built = 0

    def close(self) -> None:
        if self._int8 is not None:
            self._int8.close()

    def save(self) -> None:
        order = {f: i for i, f in enumerate(FORMATS)}
        arts = sorted(self.entries.values(), key=lambda a: (order.get(a.format, 9), a.precision, a.file))
        write_json(self.out / "export.json", {"run_id": self.run.run_id, "meta": self.meta.to_json(),
                                              "artifacts": [a.to_json() for a in arts]})

    def images(self, split: str, n: int, uncapped: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """`n` images of `split` (stratified); `uncapped`: from the whole split, past the dataset's max_<split> cap
        (fine-tuning's cap: caps are nested, so these include the images fine-tuning saw)."""
        from ..data import load_array

        fraction = self.run.fraction if split == "train" else 1.0   # calibrate on the run's own training images
        ds = dataclasses.replace(self.run.dataset, **{f"max_{split}": None}) if uncapped else self.run.dataset
        x, y = load_array(ds, split, limit=n, image_size=self.meta.image_size,
                          mean=self.meta.mean, std=self.meta.std, fraction=fraction)
        return np.ascontiguousarray(x, dtype=np.float32), np.asarray(y)

    def val(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(images, labels, PyTorch fp32 logits) for parity, computed once."""
        if self._val is None:
            from .parity import torch_logits

            x, y = self.images("val", self.cfg.parity_images)
            self._val = (x, y, torch_logits(self.model, x))
        return self._val

    def int8(self):
        """The run's Int8Job (calibration and validation images, fp32 validation logits), made once."""
        if self._int8 is None:
            from .int8 import Int8Job

            calib, _ = self.images("train", self.cfg.calibration_images)
            x, y = self.images("val", self.cfg.int8.val_images, uncapped=True)   # max_val caps fine-tuning's epochs
            self._int8 = Int8Job(self.out / SOURCE["fp32"], calib, x, y, self.cfg.int8, self.cfg.calibration_method)
        return self._int8

    def artifact(self, file: str, fmt: str, prec: str, build: Callable[[Path], Optional[dict]],
                 skip_reason: str = "", recipe: tuple[str, str] = ("", "")) -> ExportEntry:
        """Build one artifact unless already done; record its entry (with parity, and the fields `build` returns:
        an INT8 recipe's budget) in export.json. `recipe`: (recipe, target runtime) of an INT8 artifact."""
        from .parity import artifact_parity

        if _is_done(self.out, self.entries.get(file)):
            return self.entries[file]
        entry = ExportEntry(file, fmt, prec, recipe=recipe[0], target=recipe[1], reason=skip_reason)
        if not skip_reason:
            t0 = time.perf_counter()
            try:
                extra = build(self.out / file)
                entry.update(status="ok", reason="", size_mb=get_format(fmt).size_mb(self.out / file))
                entry.update(**(extra or {}))
                x, y, ref = self.val()
                art = Artifact(str(self.out / file), fmt, prec, self.run.run_id)
                entry.parity = artifact_parity(art, self.meta.to_json(), x, ref, y,
                                               batch_size=min(16, self.max_batch))
            except Exception as e:   # one artifact failing must not stop the others; the reason is recorded
                msg = (str(e).strip().splitlines() or [""])[0][:500]
                entry.update(status="failed", reason=f"{type(e).__name__}: {msg}")
            entry.seconds = round(time.perf_counter() - t0, 3)
            self.built += 1
        self.entries[file] = entry
        self.save()
        return entry

    def onnx(self, prec: str) -> list[ExportEntry]:
        from .onnx import export_onnx

        if prec == "fp32":
            return [self.artifact(SOURCE["fp32"], "onnx", "fp32", lambda p: export_onnx(
                self.model, p, self.meta.image_size, self.cfg.opset, self.meta.in_chans))]
        src = self.onnx("fp32")[0]
        reason = _unusable(src)
        if prec == "fp16":
            from .fp16 import to_fp16

            return [self.artifact(SOURCE["fp16"], "onnx", "fp16", lambda p: to_fp16(self.out / src.file, p),
                                  reason)]
        keys = ("u8s8", "s8s8") if "tensorrt" in self.formats else ("u8s8",)   # the CPU target first: the warm start
        return [self.artifact(RECIPES[k][0], "onnx", "int8", lambda p, k=k: self.int8().onnx(k, p), reason,
                              RECIPES[k][1:]) for k in keys]

    def source(self, prec: str) -> tuple[ExportEntry, str]:
        """(ONNX entry that IR and engines of `prec` are made from, why they cannot be: "" when they can)."""
        src = next(e for e in self.onnx(prec) if e.file == SOURCE[prec])
        return src, _unusable(src)

    def openvino(self, prec: str) -> list[ExportEntry]:
        from .openvino import to_ir

        if prec == "int8":
            _, reason = self.source("fp32")
            return [self.artifact(IR_FILES["int8"], "openvino", "int8", lambda p: self.int8().openvino(p), reason,
                                  RECIPES["nncf"][1:])]
        src, reason = self.source(prec)
        return [self.artifact(IR_FILES[prec], "openvino", prec, lambda p: to_ir(self.out / src.file, p),
                              reason)]

    def tensorrt(self, prec: str) -> list[ExportEntry]:
        from .tensorrt import build_engine, engine_file, superseded, tensorrt_unavailable

        recipe = RECIPES["s8s8"][1:] if prec == "int8" else ("", "")
        reason = tensorrt_unavailable()
        if reason:
            return [self.artifact(f"model.{prec}.engine", "tensorrt", prec, None, reason, recipe)]
        src, reason = self.source(prec)
        file = engine_file(prec)
        # drop "no GPU here" placeholders and this GPU's engines of another TensorRT version (bench would run them)
        self.entries = {f: a for f, a in self.entries.items()
                        if not (a.format == "tensorrt" and a.precision == prec
                                and (a.status == "skipped" or superseded(f, file)))}
        return [self.artifact(file, "tensorrt", prec, lambda p: build_engine(
            self.out / src.file, p, self.meta.image_size, max_batch=self.max_batch, opt_batches=self.opt_batches,
            workspace_gb=self.cfg.tensorrt_workspace_gb, timing_cache=self.out / "trt_timing.cache",
            in_chans=self.meta.in_chans), reason, recipe)]


def _planned(formats: list[str], precisions: list[str]) -> tuple[list[str], dict[str, str]]:
    """(artifact files a request produces, {TensorRT placeholder file: why it is skipped} without TensorRT)."""
    files = [f for p in precisions for f in ONNX_FILES[p]]
    if "tensorrt" in formats and "int8" in precisions:
        files.append(GPU_INT8)
    if "openvino" in formats:
        files += [IR_FILES[p] for p in precisions]
    skipped = {}
    if "tensorrt" in formats:
        from .tensorrt import engine_file, tensorrt_unavailable

        reason = tensorrt_unavailable()
        if reason:
            skipped = {f"model.{p}.engine": reason for p in precisions}
        else:
            files += [engine_file(p) for p in precisions]
    files += [f for fmt in formats if get_format(fmt).planned for f in get_format(fmt).planned(precisions)]
    return files, skipped


def _check_int8(cfg: ExportConfig) -> None:
    from .quantize import METHODS

    i8 = cfg.int8
    known = ("nncf", *METHODS)
    bad = [m for m in i8.try_methods if m not in known]
    if bad:
        raise DeployBenchError(f"export.int8.try_methods: unknown {bad[0]!r} (known: {', '.join(known)})")
    for key in ("val_images", "rank_images"):
        if getattr(i8, key) < 1:
            raise DeployBenchError(f"export.int8.{key}: {getattr(i8, key)} must be an integer >= 1")
    if i8.max_fallbacks < 0 or i8.max_drop < 0:
        raise DeployBenchError("export.int8: max_drop and max_fallbacks must be >= 0")


def export_run(run: RunSpec, root: Path, cfg: ExportConfig, formats: Optional[list[str]] = None,
               precisions: Optional[list[str]] = None, max_batch: int = 32,
               opt_batches: Optional[list[int]] = None) -> StageResult:
    """Export one fine-tuned run; ONNX of each precision is always written (it is the source of the others).

    `max_batch`: largest batch TensorRT engines accept (pass the largest bench batch size); `opt_batches`: the
    bench batch sizes, one TensorRT optimization profile each (default: one profile, opt = max_batch).
    """
    from ..backbones import load_model

    t0 = time.perf_counter()
    formats, precisions = list(formats or cfg.formats), list(precisions or cfg.precisions)
    for value, known, key in ((formats, FORMATS, "export.formats"), (precisions, PRECISIONS, "export.precisions")):
        bad = [v for v in value if v not in known]
        if bad:
            raise DeployBenchError(f"{key}: unknown {bad[0]!r} (known: {', '.join(known)})")
    _check_int8(cfg)
    done = read_json(run.engine_dir(root) / "export.json") or {}
    entries = ExportEntry.listed(done)
    files, skipped = _planned(formats, precisions)
    try:
        same_ckpt = RunMeta.read(run.ckpt_dir(root)).recorded_in(done.get("meta"))
    except DeployBenchError:
        same_ckpt = False
    if same_ckpt and all(_is_done(run.engine_dir(root), entries.get(f)) for f in files) \
            and set(skipped) <= set(entries):
        reason = "; ".join(f"{f}: {r}" for f, r in sorted(skipped.items()))
        return StageResult(run.run_id, "export", "skipped", reason, time.perf_counter() - t0)
    try:
        model, meta = load_model(run.ckpt_dir(root))
    except DeployBenchError as e:
        return StageResult(run.run_id, "export", "failed", str(e), time.perf_counter() - t0)
    job = _Export(run, Path(root), cfg, model, meta, max(1, max_batch), opt_batches, formats)
    try:
        entries = [e for fmt in ("onnx", *[f for f in formats if f != "onnx"]) for prec in precisions
                   for e in get_format(fmt).builder(job, prec)]
    finally:
        job.close()
    failed = [f"{e.file}: {e.reason}" for e in entries if e.status == "failed"]
    skipped = sorted({f"{e.file}: {e.reason}" for e in entries if e.status == "skipped"})
    status = "failed" if failed else ("done" if job.built else "skipped")
    return StageResult(run.run_id, "export", status, "; ".join(failed or skipped), time.perf_counter() - t0)


__all__ = ["export_run", "FORMATS", "PRECISIONS"]
