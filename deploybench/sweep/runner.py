"""Run the stages of a sweep with fault isolation; summarize what was done, skipped and failed.

`run_pipeline` is the entry point. Each run's stages execute through `run_stages`, which never raises for a
failing stage: the failure becomes a `StageResult(status="failed", reason=...)` and the run's later stages are
recorded as skipped ("<stage> failed"). Stage logs and tracebacks are appended to checkpoints/<run_id>/sweep.log.
Only the driver process writes the result store (reports/results.db), once per run as its bench rows arrive.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional

from ..config import Config
from ..errors import DeployBenchError
from ..records import RunSpec, StageResult

STAGES = ("finetune", "export", "bench")
STATUSES = ("done", "skipped", "failed")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageOptions:
    """Per-invocation restrictions passed to the stages (None = what the config says)."""
    formats: Optional[tuple] = None
    precisions: Optional[tuple] = None
    runtimes: Optional[tuple] = None
    batch_sizes: Optional[tuple] = None
    device: Optional[str] = None        # label for this device in result rows


@dataclass
class RunOutcome:
    """Everything one run produced: a StageResult per stage and its bench rows (for the driver's store)."""
    run_id: str
    results: list = field(default_factory=list)
    rows: list = field(default_factory=list)

    def blocker(self) -> Optional[str]:
        """The first stage that failed (later stages are not attempted)."""
        return next((r.stage for r in self.results if r.status == "failed"), None)

    @classmethod
    def crashed(cls, run_id: str, stages: Iterable[str], reason: str,
                prior: Optional["RunOutcome"] = None) -> "RunOutcome":
        """A run whose worker died during `stages` (after `prior`): the first failed with `reason`, the rest
        skipped."""
        stages = list(stages)
        res = [StageResult(run_id, stages[0], "failed", reason)]
        res += [StageResult(run_id, s, "skipped", f"{stages[0]} failed") for s in stages[1:]]
        return cls(run_id, (list(prior.results) if prior else []) + res, list(prior.rows) if prior else [])


def _reason(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = msg if isinstance(e, DeployBenchError) else f"{type(e).__name__}: {msg}".rstrip(": ")
    return text[:300]


@contextmanager
def run_log(root: Path, run: RunSpec) -> Iterator[None]:
    """Append the `deploybench` loggers' records to checkpoints/<run_id>/sweep.log while the block runs; only
    warnings and errors also reach stderr (some libraries configure the root logger, which would otherwise echo
    every INFO line over the progress bar)."""
    path = run.ckpt_dir(root) / "sweep.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("deploybench")
    old_level, old_propagate = logger.level, logger.propagate
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    logger.addHandler(handler)
    logger.addHandler(console)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(console)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
        handler.close()


def _bench_result(run_id: str, rows: list) -> StageResult:
    if not rows:
        return StageResult(run_id, "bench", "skipped", "all results already in the store")
    counts = Counter(r.get("status") for r in rows)
    reason = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: str(kv[0])))
    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        reason += f"; first failure: {failed[0].get('artifact')} on {failed[0].get('runtime')}: " \
                  f"{failed[0].get('status_reason')}"
    return StageResult(run_id, "bench", "failed" if failed else "done", reason[:300])


def _stage(stage: str, cfg: Config, run: RunSpec, opts: StageOptions, existing, out: RunOutcome) -> StageResult:
    root = cfg.root
    if stage == "finetune":
        from ..finetune import finetune_run
        return finetune_run(run, root, progress=False)
    if stage == "export":
        from ..export import export_run
        batch_sizes = opts.batch_sizes or cfg.bench.batch_sizes
        return export_run(run, root, cfg.export, formats=opts.formats, precisions=opts.precisions,
                          max_batch=max(batch_sizes), opt_batches=list(batch_sizes))
    from ..bench import bench_run
    rows = bench_run(run, root, cfg.bench, runtimes=opts.runtimes, batch_sizes=opts.batch_sizes,
                     existing=existing, config_name=cfg.name, device=opts.device)
    out.rows.extend(rows)
    return _bench_result(run.run_id, rows)


def run_stages(cfg: Config, run: RunSpec, stages: Iterable[str], opts: StageOptions = StageOptions(),
               existing: frozenset = frozenset(), prior: Optional[RunOutcome] = None) -> RunOutcome:
    """Run `stages` of one run in this process, after `prior` (earlier stages); never raises for a stage."""
    out = RunOutcome(run.run_id, list(prior.results), list(prior.rows)) if prior else RunOutcome(run.run_id)
    with run_log(cfg.root, run):
        for stage in stages:
            blocker = out.blocker()
            if blocker:
                out.results.append(StageResult(run.run_id, stage, "skipped", f"{blocker} failed"))
                continue
            t0 = time.perf_counter()
            log.info("%s: %s start", run.run_id, stage)
            try:
                res = _stage(stage, cfg, run, opts, existing, out)
            except Exception as e:  # fault isolation: the sweep goes on
                log.error("%s: %s raised\n%s", run.run_id, stage, traceback.format_exc())
                res = StageResult(run.run_id, stage, "failed", _reason(e))
            res = dataclasses.replace(res, run_id=run.run_id, stage=stage, seconds=round(time.perf_counter() - t0, 3),
                                      reason=res.reason or ("already complete" if res.status == "skipped" else ""))
            log.info("%s: %s %s (%.1f s) %s", run.run_id, stage, res.status, res.seconds, res.reason)
            out.results.append(res)
    return out


@dataclass
class SweepSummary:
    """Done/skipped/failed per stage with reasons and timings; `str()` is a one-screen summary."""
    name: str
    runs: int
    stages: tuple
    executor: str                       # e.g. "local, 2 workers" or "ray (local), 1 cpu/run"
    results: list = field(default_factory=list)
    rows_written: int = 0
    seconds: float = 0.0

    def add(self, outcome: RunOutcome) -> None:
        self.results.extend(outcome.results)

    def counts(self) -> dict:
        """{stage: {"done": n, "skipped": n, "failed": n}}"""
        c = {s: dict.fromkeys(STATUSES, 0) for s in self.stages}
        for r in self.results:
            c[r.stage][r.status] += 1
        return c

    def stage_seconds(self) -> dict:
        return {s: round(sum(r.seconds for r in self.results if r.stage == s), 2) for s in self.stages}

    def failures(self) -> list:
        return [r for r in self.results if r.status == "failed"]

    @property
    def failed(self) -> list:
        return self.failures()

    def failed_all(self, stage: str) -> bool:
        """Every run failed in `stage` (nothing worked: the CLI exits non-zero)."""
        return self.runs > 0 and self.counts()[stage]["failed"] == self.runs

    @property
    def ok(self) -> bool:
        return not self.failures()

    def render(self) -> str:
        return str(self)

    def to_dict(self) -> dict:
        return {"name": self.name, "runs": self.runs, "stages": list(self.stages), "executor": self.executor,
                "seconds": self.seconds, "rows_written": self.rows_written,
                "counts": self.counts(), "stage_seconds": self.stage_seconds(),
                "results": [dataclasses.asdict(r) for r in self.results]}

    def __str__(self) -> str:
        counts, secs = self.counts(), self.stage_seconds()
        lines = [f"sweep {self.name}: {self.runs} runs on {self.executor}, {self.seconds:.1f} s wall, "
                 f"{self.rows_written} result rows written",
                 f"  {'stage':<10}{'done':>6}{'skipped':>9}{'failed':>8}{'seconds':>10}"]
        for s in self.stages:
            c = counts[s]
            lines.append(f"  {s:<10}{c['done']:>6}{c['skipped']:>9}{c['failed']:>8}{secs[s]:>10.1f}")
        def line(text: str) -> str:
            return (text.strip().splitlines() or [""])[0][:160]

        skipped = Counter(f"{r.stage}: {line(r.reason)}" for r in self.results if r.status == "skipped")
        if skipped:
            lines.append("skipped:")
            lines += [f"  {n} x {why}" for why, n in skipped.most_common(5)]
        fails = self.failures()
        if fails:
            lines.append(f"failed ({len(fails)}; tracebacks in checkpoints/<run_id>/sweep.log):")
            lines += [f"  {r.run_id} {r.stage}: {line(r.reason)}" for r in fails[:10]]
            if len(fails) > 10:
                lines.append(f"  ... and {len(fails) - 10} more")
        return "\n".join(lines)


def _ordered_stages(stages: Iterable[str]) -> tuple:
    stages = tuple(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise DeployBenchError(f"sweep: unknown stage '{unknown[0]}' (known: {', '.join(STAGES)})")
    return tuple(s for s in STAGES if s in stages)


def run_pipeline(cfg: Config, runs: Optional[Iterable[RunSpec]] = None, stages: Iterable[str] = STAGES,
                 executor: Optional[str] = None, workers: Optional[int] = None, address: Optional[str] = None,
                 progress: bool = True, formats=None, precisions=None, runtimes=None,
                 batch_sizes=None, device: Optional[str] = None) -> SweepSummary:
    """Run `stages` for `runs` (default: plan(cfg)) on the local or Ray executor; resumable and fault-isolated.

    executor/workers/address default to cfg.sweep. Runs whose outputs are complete are skipped stage by stage
    (finetune: meta.json complete; export: export.json; bench: rows already `ok` in reports/results.db).
    """
    from tqdm.auto import tqdm

    from .plan import plan

    stages = _ordered_stages(stages)
    executor = executor or cfg.sweep.executor
    workers = max(1, workers or cfg.sweep.workers)
    address = address or cfg.sweep.address
    unique: dict = {}
    for run in (plan(cfg) if runs is None else runs):
        unique.setdefault(run.run_id, run)
    runs = list(unique.values())
    opts = StageOptions(*(tuple(v) if v else None for v in (formats, precisions, runtimes, batch_sizes)), device)

    store, existing = None, frozenset()
    if "bench" in stages:
        from ..store import ResultStore
        store = ResultStore(cfg.root / "reports" / "results.db")
        existing = frozenset(store.keys(status="ok"))
    where = (f"local, {workers} worker{'s' if workers > 1 else ''}" if executor == "local" else
             f"ray ({address or 'local'}), {cfg.sweep.cpus_per_run:g} cpu + {cfg.sweep.gpus_per_run:g} gpu/run")
    summary = SweepSummary(cfg.name, len(runs), stages, where)

    def on_done(outcome: RunOutcome) -> None:
        if outcome.rows:
            store.add(outcome.rows)     # the driver alone writes the store, after each run
            summary.rows_written += len(outcome.rows)
        summary.add(outcome)

    t0 = time.perf_counter()
    bar = tqdm(total=len(runs), unit="run", desc=cfg.name, disable=not progress, dynamic_ncols=True)
    try:
        if executor == "local":
            from .local import execute_local
            execute_local(cfg, runs, stages, opts, existing, workers, on_done, bar)
        elif executor == "ray":
            from .ray_executor import execute_ray
            execute_ray(cfg, runs, stages, opts, existing, address, on_done, bar)
        else:
            raise DeployBenchError(f"sweep.executor: {executor!r} is not one of local, ray")
    finally:
        bar.close()
        summary.seconds = round(time.perf_counter() - t0, 2)
    return summary

