"""Local executor: sequential in-process, or N spawned worker processes.

workers=1: each run goes through all its stages in this process, one run after another.
workers>1: phase 1 runs finetune+export of all runs in N worker processes (spawn context; each worker uses
cores // N torch threads). Phase 2 then benchmarks the runs one at a time in this process: the bench stage
measures in fresh processes of its own, and measuring while other runs train on the same cores would make the
latencies meaningless. Bench rows come back to this process, which alone writes the store, after each run.
A worker that dies (e.g. killed for memory) breaks the pool: the runs still in it are recorded as failed and
a re-run resumes them. Scripts calling this with workers>1 need the usual `if __name__ == "__main__":` guard.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable

from ..config import Config, SweepConfig
from .stages import RunOutcome, StageOptions, run_stages


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def execute_local(cfg: Config, runs: list, stages: tuple, opts: StageOptions, existing: frozenset,
                  sweep: SweepConfig, on_done: Callable[[RunOutcome], None], bar) -> None:
    """Run `stages` of `runs` on `sweep.workers` processes; call `on_done(outcome)` once per run, when its last
    stage has finished."""
    workers = sweep.workers
    if workers <= 1:
        for run in runs:
            on_done(run_stages(cfg, run, stages, opts, existing))
            bar.update()
        return

    early = tuple(s for s in stages if s != "bench")
    outcomes: dict = {}
    if early:
        bar.set_description(f"{cfg.name} {'+'.join(early)}")
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            futures = {pool.submit(run_stages, cfg, run, early, opts): run for run in runs}
            for fut in as_completed(futures):
                run = futures[fut]
                try:
                    outcomes[run.run_id] = fut.result()
                except Exception as e:   # the worker process died (e.g. killed for memory)
                    outcomes[run.run_id] = RunOutcome.crashed(run.run_id, early, f"worker process died: {e!r}")
                bar.update()
    if "bench" not in stages:
        for run in runs:
            on_done(outcomes[run.run_id])
        return
    bar.reset()
    bar.set_description(f"{cfg.name} bench")
    for run in runs:
        on_done(run_stages(cfg, run, ("bench",), opts, existing, prior=outcomes.get(run.run_id)))
        bar.update()
