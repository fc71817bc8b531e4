"""One run's stages (finetune -> export -> bench) in this process, fault-isolated: the leaf that every executor
calls. `run_stages` never raises for a failing stage: the failure becomes a `StageResult(status="failed",
reason=...)` and the run's later stages are recorded as skipped ("<stage> failed"). Stage logs and tracebacks are
appended to checkpoints/<run_id>/sweep.log. Bench rows come back in the RunOutcome; only the driver writes the
result store (runner.py).
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
