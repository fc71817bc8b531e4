"""Ray executor: one Ray task per run and phase, with the config's resource requests.

Phase 1 submits finetune+export of every run as tasks (num_cpus=sweep.cpus_per_run,
num_gpus=sweep.gpus_per_run); Ray runs as many at once as the cluster fits. Phase 2 benchmarks the runs with at
most one bench task per node at a time (node affinity), so no latency is measured while another task loads the
same machine. Tasks return StageResults and bench rows; the driver alone writes the store.

Files: tasks read and write checkpoints/ and engines/ under the driver's workdir and resolve relative paths from
the driver's current directory, so on a multi-node cluster both must be on a filesystem shared by all nodes
(NFS, Lustre, ...) at the same path. A task on a node that cannot see them fails with a message saying so.
Workers must be able to import deploybench (pip install it on every node).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Optional

from ..config import Config, SweepConfig
from ..errors import DeployBenchError
from .stages import RunOutcome, StageOptions, run_stages


def _task(cfg: Config, run, stages: tuple, opts: StageOptions, existing: frozenset, cwd: str,
          prior: Optional[RunOutcome]) -> RunOutcome:
    """Body of a Ray task: run `stages` of one run in the driver's directory."""
    try:
        if not Path(cwd).is_dir():
            raise DeployBenchError(f"{cwd}: driver directory not visible on this node; a multi-node Ray sweep "
                                   f"needs the workdir on a shared filesystem at the same path")
        os.chdir(cwd)
        import torch

        torch.set_num_threads(max(1, int(cfg.sweep.cpus_per_run)))
    except Exception as e:
        return RunOutcome.crashed(run.run_id, stages, str(e))
    return run_stages(cfg, run, stages, opts, existing, prior)


def _short(e: Exception) -> str:
    """One line from a Ray error: its last non-empty line, without terminal colours."""
    lines = [ln.strip() for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:280]


def _runtime_env() -> dict:
    """Workers import deploybench from where the driver does (a source checkout need not be installed)."""
    import deploybench

    paths = [str(Path(deploybench.__file__).resolve().parent.parent)] + \
        [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def _bench_nodes(ray, cpus: float, gpus: float) -> list:
    """Ids of alive nodes that can hold one bench task."""
    return [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= cpus
            and n["Resources"].get("GPU", 0) >= gpus]


def execute_ray(cfg: Config, runs: list, stages: tuple, opts: StageOptions, existing: frozenset,
                sweep: SweepConfig, on_done: Callable[[RunOutcome], None], bar) -> None:
    """Run `stages` of `runs` as Ray tasks on the cluster at `sweep.address`; call `on_done(outcome)` once per run
    in the driver."""
    address = sweep.address
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise DeployBenchError("sweep.executor ray: Ray is not installed (pip install 'deploybench[ray]')") from None

    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError) as e:
            raise DeployBenchError(f"sweep.address {address!r}: cannot connect to Ray ({_short(e)}); start "
                                   f"one with `ray start --head` or set sweep.address: null for a local "
                                   f"instance") from None
    try:
        cpus, gpus = cfg.sweep.cpus_per_run, cfg.sweep.gpus_per_run
        remote = ray.remote(_task)
        resources = dict(num_cpus=cpus, num_gpus=gpus, max_retries=1, runtime_env=_runtime_env())
        task = remote.options(**resources)
        cfg_ref, existing_ref, cwd = ray.put(cfg), ray.put(existing), os.getcwd()

        def wait_one(pending: dict, stage_names: tuple) -> tuple:
            """(ref, run, outcome) of the next finished task; a task that died reads as a crashed run."""
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ref)
            prior = outcomes.get(run.run_id)
            try:
                return ref, run, ray.get(ref)
            except Exception as e:   # worker or node died
                return ref, run, RunOutcome.crashed(run.run_id, stage_names, f"Ray task failed: {_short(e)}", prior)

        early = tuple(s for s in stages if s != "bench")
        outcomes: dict = {}
        if early:
            bar.set_description(f"{cfg.name} {'+'.join(early)}")
            pending = {task.remote(cfg_ref, run, early, opts, existing_ref, cwd, None): run for run in runs}
            while pending:
                _, run, out = wait_one(pending, early)
                outcomes[run.run_id] = out
                if "bench" not in stages:
                    on_done(out)
                bar.update()
        if "bench" not in stages:
            return

        bar.reset()
        bar.set_description(f"{cfg.name} bench")
        queue, pending, busy = [], {}, {}      # busy: ref -> node id
        for run in runs:
            prior = outcomes.get(run.run_id)
            if prior and prior.blocker():    # an earlier stage failed: bench is recorded as skipped, no task
                on_done(run_stages(cfg, run, ("bench",), opts, existing, prior))
                bar.update()
            else:
                queue.append(run)
        while queue or pending:
            nodes = _bench_nodes(ray, cpus, gpus)
            if not nodes and not pending:
                raise DeployBenchError(f"sweep: no Ray node has {cpus:g} CPUs and {gpus:g} GPUs for a bench "
                                       f"task (lower sweep.cpus_per_run / sweep.gpus_per_run)")
            for node in [n for n in nodes if n not in busy.values()]:
                if not queue:
                    break
                run = queue.pop(0)
                strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
                ref = remote.options(**resources, scheduling_strategy=strategy).remote(
                    cfg_ref, run, ("bench",), opts, existing_ref, cwd, outcomes.get(run.run_id))
                pending[ref], busy[ref] = run, node
            if pending:
                ref, run, out = wait_one(pending, ("bench",))
                busy.pop(ref)
                on_done(out)
                bar.update()
    finally:
        if started:
            ray.shutdown()
