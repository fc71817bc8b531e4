"""Bench stage: every artifact x runtime x batch size of a run, each measured by its own fresh worker process.

Every configuration of the call (all runtimes) gets `latency.executions` executions in round-robin rounds
(A B C, A B C, ...): all workers start first and prepare (load, memory, accuracy; untimed, as many at once as
there are cores), then each waits, blocked and idle, for its turn in every round; the rows pool the executions
(stats.pool). Only one worker computes at
a time, with an arg list, OMP_NUM_THREADS and a timeout per execution (worker.ProcessWorker); a crash or timeout
becomes a `failed` row carrying the reason (the worker's own error, else the stderr tail). Idle workers keep their model loaded: on a target short
of memory, set `executions: 1` (one execution per process, nothing kept alive).
Accuracy and parity are computed once per artifact x runtime, in the first worker of that pair (batch sizes run
largest first), through that worker's runner at its batch size, and reused for the pair's other batch-size rows;
per row where the runner's kernels depend on the batch size (Runner.per_batch_numerics: TensorRT's profiles).
Parity (parity_*) compares that runner's logits with the run's torch fp32 reference on the same test images
(reference.py, computed once per run and kept with it); top1_delta_vs_torch_fp32 = row top-1 - reference top-1, and
accuracy_flag marks a drop beyond records.ACC_DROP_PT, whatever runtimes the call measures. Bring-your-own ONNX
(bench_model) has no torch reference: its parity and delta stay None.
Resume: configurations whose store.key_of is in `existing` (store.ResultStore.keys) are not run again. Rows carry
the call's id (`bench_call`) and each execution's p50 in round order, for paired comparisons (report.aggregate).
Device name and fingerprint are those of the processor the runtime computes on (CPU or GPU).
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from ..config import BenchConfig, DatasetConfig
from ..errors import DeployBenchError
from ..records import Artifact, RunMeta, RunSpec
from ..rows import Accuracy, Config, Memory, Outcome, Parity, ResultRow, Run
from ..runtimes import get_format, get_runner
from ..store import key_of
from ..validate import check_batch_sizes
from ..workdir import Workdir
from . import device as dev
from . import reference
from .accuracy import accuracy_flag
from .latency import pool_results
from .probe import device_peak, efficiency
from .profile import profile_jobs
from .worker import LocalWorker, ProcessWorker, Reply, Spec

log = logging.getLogger(__name__)


def on_gpu(runtime: str) -> bool:
    """Whether `runtime` computes on a CUDA device (its Runner's device_kind)."""
    return get_runner(runtime).device_kind == "cuda"


@dataclasses.dataclass
class _Ctx:
    """What every row of one bench call shares."""
    root: Path
    cfg: BenchConfig
    device: str
    fingerprint: str
    threads: int
    existing: set
    workdir: Path            # temp folder with inputs.npy, acc_x.npy, acc_y.npy, and ref_logits.npy with a reference
    has_accuracy: bool
    timeout_s: float
    peaks: Optional[dict] = None
    ref_top1: Optional[float] = None   # the run's torch fp32 top-1 on the accuracy images (None: no reference)
    cpu_label: Optional[tuple] = None   # (name, fingerprint) for CPU runtimes; None: device/fingerprint for all
    call: str = dataclasses.field(default_factory=lambda: f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-"
                                                          f"{secrets.token_hex(4)}")

    def label(self, runtime: str) -> tuple[str, str]:
        """(device name, fingerprint) of the processor `runtime` computes on."""
        if on_gpu(runtime) or self.cpu_label is None:
            return self.device, self.fingerprint
        return self.cpu_label

    def peak(self, runtime: str) -> dict:
        if self.peaks is None:
            info = dev.device_info()
            self.peaks = device_peak(self.root, self.fingerprint, self.cfg.threads, info["isa"])
        return self.peaks.get(get_runner(runtime).device_kind, {})


def _base_row(meta: RunMeta, ctx: _Ctx, artifact: Artifact, runtime: str, batch_size: Optional[int],
              config_name: Optional[str]) -> dict:
    """The row of one configuration before it is measured (flat: the store's and report's form)."""
    name, fp = ctx.label(runtime)
    return ResultRow(
        run=Run(**{k: getattr(meta, k) for k in Run.__dataclass_fields__}),
        config=Config(artifact=Path(artifact.path).name, format=artifact.format, runtime=runtime,
                      precision=artifact.precision, device=name, device_fingerprint=fp, batch_size=batch_size,
                      threads=ctx.threads, size_mb=get_format(artifact.format).size_mb(Path(artifact.path))
                      if artifact.format else None, recipe=artifact.recipe or None,
                      scenario=None if batch_size is None else ("single-stream" if batch_size == 1 else "offline")),
        outcome=Outcome(created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), versions=dev.versions(),
                        config_name=config_name, bench_call=ctx.call)).flat()


def _fill(row: dict, outs: list[Reply], ctx: _Ctx) -> dict:
    """Row from the executions of one configuration: latency pooled (stats.pool), memory from the first."""
    lat = pool_results([o.latency for o in outs], ctx.cfg.latency.noisy_cv)
    first = outs[0]
    latency = lat.latency(efficiency(row["gmacs"], row["batch_size"], lat.summary.p50, ctx.peak(row["runtime"]),
                                     first.compute_precision or row["precision"]))
    memory = Memory(first.peak_host_mem_mb, first.peak_device_mem_mb, first.peak_device_mem_method)
    row.update(latency.flat(), **memory.flat(), status="ok", status_reason=None)
    return row


@dataclasses.dataclass
class _Job:
    """One configuration to measure; `row` is filled in place once its executions are done."""
    artifact: Artifact
    runtime: str
    batch_size: int
    row: dict
    outs: list = dataclasses.field(default_factory=list)
    error: Optional[str] = None
    worker: object = None


def _spec(job: _Job, meta: RunMeta, ctx: _Ctx, accuracy: bool) -> Spec:
    ref = str(ctx.workdir / "ref_logits.npy") if ctx.ref_top1 is not None else None
    return Spec(artifact=dataclasses.asdict(job.artifact), meta=meta.to_json(), runtime=job.runtime,
                threads=ctx.cfg.threads, batch_size=job.batch_size, latency=dataclasses.asdict(ctx.cfg.latency),
                inputs=str(ctx.workdir / "inputs.npy"),
                accuracy={"x": str(ctx.workdir / "acc_x.npy"), "y": str(ctx.workdir / "acc_y.npy"),
                          "reference": ref} if accuracy else None,
                options={k: True for k in get_runner(job.runtime).bench_options if getattr(ctx.cfg, k)})


def prepare_groups(jobs: list, parallel: int) -> list[list]:
    """Jobs in the groups that prepare together: CPU jobs `parallel` at a time, each GPU job alone (its
    device-level memory delta must not see another worker loading); order kept within each kind."""
    cpu = [j for j in jobs if not on_gpu(j.runtime)]
    return [cpu[i:i + parallel] for i in range(0, len(cpu), parallel)] + [[j] for j in jobs if on_gpu(j.runtime)]


def accuracy_key(job) -> tuple:
    """The rows that share one accuracy pass: an artifact x runtime pair, or the row alone where the runtime runs
    other kernels at each batch size."""
    pair = (job.artifact.path, job.runtime)
    return pair + (job.batch_size,) if get_runner(job.runtime).per_batch_numerics else pair


def _start_workers(jobs: list[_Job], meta: RunMeta, ctx: _Ctx, worker_cls) -> None:
    """Start every job's worker and let it load and prepare (one inference, memory, accuracy), as many at a time
    as the machine has cores (GPU jobs one at a time): nothing is timed yet, and start-up is most of a short bench
    call's cost. Accuracy goes to the first worker of each accuracy_key (largest batch first)."""
    with_acc: set = set()
    for chunk in prepare_groups(jobs, max(1, dev.device_info()["cores"])):
        for job in chunk:
            key = accuracy_key(job)
            tag = hashlib.sha1(f"{job.artifact.path}|{job.runtime}|{job.batch_size}".encode()).hexdigest()[:10]
            spec = _spec(job, meta, ctx, ctx.has_accuracy and key not in with_acc)
            with_acc.add(key)
            job.worker = worker_cls(spec, ctx.workdir, tag, ctx.threads, ctx.timeout_s)
        for job in chunk:
            job.worker.wait_ready()


def _execute_rounds(jobs: list[_Job], meta: RunMeta, ctx: _Ctx) -> None:
    """`latency.executions` rounds over all jobs (round-robin); a job's worker lives from its first round to its
    last, so its executions are spread over the whole bench call and meet the same machine drift as the others."""
    repeats = ctx.cfg.latency.executions
    acc: dict[tuple, dict] = {}
    worker_cls = ProcessWorker if ctx.cfg.fresh_process else LocalWorker
    try:
        _start_workers(jobs, meta, ctx, worker_cls)
        for rnd in range(repeats):
            for job in jobs:
                if job.error:
                    continue
                out = job.worker.execute()
                if out.status != "ok":
                    job.error = out.reason if repeats == 1 else f"execution {rnd + 1} of {repeats}: {out.reason}"
                elif out.top1 is not None:
                    acc[accuracy_key(job)] = _accuracy_cols(out)
                job.outs.append(out)
                if job.error or rnd == repeats - 1:
                    job.worker.close()
                    job.worker = None
    finally:
        for job in jobs:
            if job.worker is not None:
                job.worker.close()
    for job in jobs:
        if job.error:
            job.row.update(status="failed", status_reason=job.error)
            continue
        _fill(job.row, job.outs, ctx)
        job.row.update(acc.get(accuracy_key(job), {}),
                       compute_precision=job.outs[0].compute_precision)


def _accuracy_cols(out: Reply) -> dict:
    """Row columns from a worker's accuracy pass: top-1/5, its image count, parity vs the torch fp32 reference."""
    parity = out.parity or {}
    return Accuracy(top1=out.top1, top5=out.top5, accuracy_images=out.accuracy_images,
                    top1_delta_se=parity.get("top1_delta_se")).flat() | Parity(
        parity_max_rel_err=parity.get("max_rel_err"), parity_median_rel_err=parity.get("median_rel_err"),
        parity_top1_agree=parity.get("top1_agree")).flat()


def _plan(artifacts: list[Artifact], runtime: str, meta: RunMeta, ctx: _Ctx, batch_sizes: list[int],
          config_name: Optional[str]) -> tuple[list[dict], list[_Job]]:
    """Rows for one runtime (skipped per artifact when it is unavailable, else one per artifact x batch size,
    largest batch first) and the jobs that will fill them."""
    ok, reason = get_runner(runtime).available()
    rows, jobs = [], []
    for art in artifacts:
        for bs in sorted(set(batch_sizes), reverse=True) if ok else [None]:
            row = _base_row(meta, ctx, art, runtime, bs, config_name)
            if key_of(row) in ctx.existing:
                continue
            if not ok:
                row.update(status="skipped", status_reason=reason or f"{runtime} is not available")
            else:
                jobs.append(_Job(art, runtime, bs, row))
            rows.append(row)
    return rows, jobs


def _finish(rows: list[dict], ref_top1: Optional[float]) -> list[dict]:
    """top1_delta_vs_torch_fp32 and accuracy_flag of every row with a top-1, against the run's torch fp32 reference
    (same images)."""
    for r in rows:
        if r["top1"] is not None and ref_top1 is not None:
            r["top1_delta_vs_torch_fp32"] = round(r["top1"] - ref_top1, 4)
            r["accuracy_flag"] = accuracy_flag(r["top1_delta_vs_torch_fp32"])
    return rows


def _run_all(artifacts: list[Artifact], meta: RunMeta, root: Path, cfg: BenchConfig, runtimes, batch_sizes,
             existing, device, data: tuple, config_name, timeout_s) -> list[dict]:
    """data = (inputs (n, C, H, W), acc_x or None, acc_y or None, reference.ensure's dict for acc_x or None)."""
    threads = cfg.threads or dev.device_info()["cores"]
    batch_sizes = list(batch_sizes or cfg.batch_sizes)
    check_batch_sizes(batch_sizes)
    if cfg.latency.executions < 1:
        raise DeployBenchError(f"bench.latency.executions: {cfg.latency.executions} must be an integer >= 1")
    timeout = timeout_s or 900 + 3 * cfg.latency.max_duration_s
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="deploybench-bench-") as tmp:
        tmpdir = Path(tmp)
        np.save(tmpdir / "inputs.npy", np.ascontiguousarray(data[0], dtype=np.float32))
        if data[1] is not None:
            np.save(tmpdir / "acc_x.npy", np.ascontiguousarray(data[1], dtype=np.float32))
            np.save(tmpdir / "acc_y.npy", np.asarray(data[2], dtype=np.int64))
        ref = data[3]
        if ref is not None:
            np.save(tmpdir / "ref_logits.npy", ref["logits"])
        ctx = _Ctx(Path(root), cfg, dev.device_name(device, "gpu"), dev.fingerprint(device, "gpu"), threads,
                   set(existing), tmpdir, data[1] is not None, timeout,
                   cpu_label=(dev.device_name(device, "cpu"), dev.fingerprint(device, "cpu")),
                   ref_top1=None if ref is None else ref["top1"])
        jobs: list[_Job] = []
        for rt in runtimes or cfg.runtimes:
            arts = get_runner(rt).deployable(artifacts, cfg.cross_target_int8)
            rt_rows, rt_jobs = _plan(arts, rt, meta, ctx, batch_sizes, config_name)
            rows += rt_rows if arts else _no_artifact(rt, meta, ctx, config_name)
            jobs += rt_jobs
        _execute_rounds(jobs, meta, ctx)
        profile_jobs(jobs, meta, ctx)
    return _finish(rows, ctx.ref_top1)


def _no_artifact(runtime: str, meta: RunMeta, ctx: _Ctx, config_name: Optional[str]) -> list[dict]:
    """One skipped row (artifact None) for a requested runtime that has nothing to run, saying why."""
    cls = get_runner(runtime)
    ok, reason = cls.available()
    row = _base_row(meta, ctx, Artifact("", "", None), runtime, None, config_name)
    row.update(artifact=None, format=None, size_mb=None, status="skipped",
               status_reason=reason if not ok else f"no {'/'.join(cls.formats)} artifact for this run "
               f"(export it first: deploybench export --format {cls.formats[0]})")
    return [] if key_of(row) in ctx.existing else [row]


def bench_run(run: RunSpec, root: Path, cfg: BenchConfig, runtimes=None, batch_sizes=None,
              existing: set = frozenset(), device: Optional[str] = None, config_name: Optional[str] = None,
              timeout_s: Optional[float] = None) -> list[dict]:
    """Rows (all COLUMNS keys) for every artifact x runtime x batch size of a finished, exported run."""
    from ..data import load_array

    meta = RunMeta.read(run.ckpt_dir(root))
    X, y = load_array(run.dataset, "test", image_size=meta.image_size, mean=meta.mean, std=meta.std,
                      limit=cfg.accuracy_images)
    if len(X) == 0:
        raise DeployBenchError(f"dataset '{run.dataset.name}': the test split is empty")
    ref, seconds = reference.ensure(run.ckpt_dir(root), meta.to_json(), X, y)
    if seconds is not None:
        log.info("%s: torch fp32 reference on %d test images computed in %.1f s", run.run_id, len(y), seconds)
    arts = Workdir(root).artifacts(run.stored_id(root))
    return _run_all(arts, meta, root, cfg, runtimes, batch_sizes, existing, device,
                    (X[:max(batch_sizes or cfg.batch_sizes)], X, y, ref), config_name, timeout_s)


def _onnx_info(path: Path) -> tuple[str, Optional[int]]:
    """(precision the file holds, number of logits when static) of a user's ONNX file; one line if unreadable."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as e:   # protobuf DecodeError, ValidationError, ...: all mean "not a usable ONNX file"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DeployBenchError(f"{path}: not a readable ONNX model ({first}); re-export it or check the path") \
            from None
    if not model.graph.input or not model.graph.output:
        raise DeployBenchError(f"{path}: ONNX model has no graph inputs/outputs; re-export it")
    dims = model.graph.output[0].type.tensor_type.shape.dim
    classes = dims[-1].dim_value if len(dims) >= 2 and dims[-1].HasField("dim_value") else None
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul")
           for n in model.graph.node):
        return "int8", classes
    fp16 = onnx.TensorProto.FLOAT16
    return ("fp16" if any(t.data_type == fp16 for t in model.graph.initializer) else "fp32"), classes


def bench_model(onnx_path: Path, input_size: tuple = (3, 224, 224), mean=(0.485, 0.456, 0.406),
                std=(0.229, 0.224, 0.225), data_dir: Optional[Path] = None, cfg: Optional[BenchConfig] = None,
                runtimes=None, batch_sizes=None, device: Optional[str] = None, root: Optional[Path] = None
                ) -> list[dict]:
    """Bring your own ONNX: random inputs for latency without data; accuracy on `data_dir` (a folder of class
    folders, or an ImageFolder root with test/) whose class count must match the model's outputs."""
    cfg = cfg or BenchConfig()
    path = Path(onnx_path).resolve()
    if not path.is_file():
        raise DeployBenchError(f"{onnx_path}: ONNX model not found")
    precision, classes = _onnx_info(path)
    c, h, w = (int(v) for v in input_size)
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:8]
    acc_x = acc_y = ds = None
    if data_dir is not None:
        from ..data import class_names, load_array

        if not Path(data_dir).is_dir():
            raise DeployBenchError(f"--data {data_dir}: folder not found")
        ds = DatasetConfig(name=Path(data_dir).name, kind="imagefolder", path=str(data_dir), image_size=h)
        found = class_names(ds, "test")
        if classes is not None and len(found) != classes:
            raise DeployBenchError(f"--data {data_dir}: {len(found)} class folders, but {path.name} outputs "
                                   f"{classes} logits; pass the folder of the classes the model was trained on")
        acc_x, acc_y = load_array(ds, "test", image_size=h, mean=list(mean), std=list(std),
                                  limit=cfg.accuracy_images)
    meta = RunMeta(run_id=f"{path.stem}-{digest}", backbone=path.stem, image_size=h, mean=list(mean),
                   std=list(std), num_classes=classes, in_chans=c, dataset=ds.name if ds else None,
                   extra={"input_size": [c, h, w]})
    nmax = max(batch_sizes or cfg.batch_sizes)
    inputs = acc_x[:nmax] if acc_x is not None else \
        np.random.default_rng(0).standard_normal((nmax, c, h, w)).astype(np.float32)
    art = Artifact(str(path), "onnx", precision, meta.run_id)
    runtimes = [r for r in (runtimes or cfg.runtimes) if r != "torch"]
    return _run_all([art], meta, Path(root) if root else Path.cwd(), cfg, runtimes, batch_sizes, frozenset(),
                    device, (inputs, acc_x, acc_y, None), None, None)
