"""The sweep pipeline: plan the runs, hand them to an executor (EXECUTORS: local, ray), write the store, summarize.

`run_pipeline` is the entry point. Executors run each run's stages through stages.run_stages (fault-isolated) and
call back once per finished run; only this driver writes the result store (reports/results.db), once per run as
its bench rows arrive.
"""
from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

from ..config import Config
from ..errors import DeployBenchError
from ..records import RunSpec
from ..workdir import Workdir
from .local import execute_local
from .ray_executor import execute_ray
from .stages import STAGES, RunOutcome, StageOptions

STATUSES = ("done", "skipped", "failed")
EXECUTORS = {"local": execute_local, "ray": execute_ray}   # name -> execute(cfg, runs, stages, opts, existing, sweep, on_done, bar)


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
        store = ResultStore(Workdir(cfg.root).results_db)
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
    if executor not in EXECUTORS:
        raise DeployBenchError(f"sweep.executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    try:
        EXECUTORS[executor](cfg, runs, stages, opts, existing, dataclasses.replace(
            cfg.sweep, workers=workers, address=address), on_done, bar)
    finally:
        bar.close()
        summary.seconds = round(time.perf_counter() - t0, 2)
    return summary

