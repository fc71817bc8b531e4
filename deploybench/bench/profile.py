"""Where the time goes: a per-operator profile of one configuration, taken in its own process after the timed
rounds, so profiling never slows a timed execution.

    python -m deploybench.bench.profile SPEC.json

SPEC: {"runtime", "artifact": Artifact fields, "meta", "batch_size", "threads", "inputs": images.npy, "out"}.
The runner is opened with option `profile=True` (ORT session profiling; OpenVINO PERF_COUNT), runs WARMUP
inferences, then ITERATIONS profiled ones. Profile JSON (written atomically to "out"): {runtime, artifact,
precision, compute_precision, batch_size, threads, iterations, total_ms (the nodes' median times summed),
wall_ms (mean per inference, profiler on), by_op_type: [{op_type, ms, share, count, exec_types}], top_nodes: [{node,
op_type, ms, share, exec_type}], seconds (the whole pass, load included), created_at}.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np

from ..io import read_json, write_json
from ..records import Artifact, RunMeta
from ..workdir import Workdir
from .worker import _batch

PROFILED_BATCH_SIZES = (1,)
WARMUP, ITERATIONS, TOP_NODES = 10, 50, 10
log = logging.getLogger(__name__)


def summarize(runs: list[list[dict]]) -> dict:
    """total_ms, by_op_type and top_nodes from node events grouped by run. A node's time is its median over the
    runs (robust to a run preempted on a busy machine); an op type's is the sum over its nodes."""
    nodes: dict[str, dict] = {}
    for run in runs:
        for e in run:
            nodes.setdefault(e["node"], {"node": e["node"], "op_type": e["op_type"], "exec_type": e["exec_type"],
                                         "us": []})["us"].append(e["us"])
    if not nodes:
        raise RuntimeError("the runtime's profiler recorded no node events")
    for n in nodes.values():
        n["ms"] = statistics.median(n.pop("us")) / 1e3
    total = sum(n["ms"] for n in nodes.values()) or 1.0
    ops: dict[str, dict] = {}
    for n in nodes.values():
        op = ops.setdefault(n["op_type"], {"op_type": n["op_type"], "ms": 0.0, "count": 0, "exec_types": set()})
        op["ms"] += n["ms"]
        op["count"] += 1
        op["exec_types"].add(n["exec_type"])
    by_op = [op | {"ms": round(op["ms"], 5), "share": round(op["ms"] / total, 5),
                   "exec_types": sorted(t for t in op["exec_types"] if t)} for op in ops.values()]
    top = sorted(nodes.values(), key=lambda n: -n["ms"])[:TOP_NODES]
    return {"total_ms": round(total, 5), "by_op_type": sorted(by_op, key=lambda d: -d["ms"]),
            "top_nodes": [n | {"ms": round(n["ms"], 5), "share": round(n["ms"] / total, 5)} for n in top]}


def take_profile(spec: dict) -> dict:
    """Open the runner with profiling on and profile it (in this process); the profile dict."""
    from ..runtimes import get_runner

    start, runtime, bs = time.perf_counter(), spec["runtime"], int(spec["batch_size"])
    if not get_runner(runtime).has_op_profiler():
        raise ValueError(f"no operator profiler for runtime '{runtime}'")
    batch = _batch(np.load(spec["inputs"]), bs)
    artifact = Artifact(**spec["artifact"])
    with get_runner(runtime)(artifact, spec.get("meta") or {}, threads=spec.get("threads"), profile=True) as runner:
        t0 = time.perf_counter()
        runs = runner.op_profile(lambda: runner.infer(batch), WARMUP, ITERATIONS)
        wall_ms = (time.perf_counter() - t0) * 1e3 / (WARMUP + ITERATIONS)
        compute = runner.compute_precision
    return {"runtime": runtime, "artifact": Path(artifact.path).name, "precision": artifact.precision,
            "compute_precision": compute, "batch_size": bs, "threads": spec.get("threads"), "iterations": len(runs),
            **summarize(runs), "wall_ms": round(wall_ms, 5), "seconds": round(time.perf_counter() - start, 3),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def profile_path(root: Path, run_id: str, runtime: str, artifact_path: str, batch_size: int) -> Path:
    """engines/<run_id>/profiles/<runtime>.<artifact file>.bs<N>.json under `root`."""
    return Workdir(root).engine_dir(run_id) / "profiles" / f"{runtime}.{Path(artifact_path).name}.bs{batch_size}.json"


def profile_configuration(runtime: str, artifact, meta: dict, batch_size: int, threads: Optional[int],
                          inputs: Path, out_path: Path, timeout_s: float = 600) -> Path:
    """Profile one configuration in a fresh `python -m deploybench.bench.profile` process; `out_path` once
    written. Raises RuntimeError with the child's stderr tail when it fails."""
    import dataclasses

    out_path = Path(out_path)
    spec_path = out_path.with_name(out_path.name + ".spec.json")
    write_json(spec_path, {"runtime": runtime, "artifact": dataclasses.asdict(artifact),
                           "meta": meta, "batch_size": batch_size, "threads": threads, "inputs": str(inputs),
                           "out": str(out_path)})
    env = dict(os.environ, OMP_NUM_THREADS=str(threads or os.cpu_count()))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                    env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run([sys.executable, "-m", "deploybench.bench.profile", str(spec_path)], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    finally:
        spec_path.unlink(missing_ok=True)
    if proc.returncode != 0 or read_json(out_path) is None:
        raise RuntimeError(f"profile of {runtime} {Path(artifact.path).name} bs {batch_size} failed "
                           f"(exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    return out_path


def profile_jobs(jobs, meta: RunMeta, ctx) -> None:
    """After the timed rounds of a bench call: profile each ok job of a profiled runtime at a profiled batch size
    (as many at once as there are cores: op shares, not the row's latency, come from a profile) and point its
    row's `profile_path` at the file (relative to the workdir). A failed profile is logged and leaves the row as
    it is."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job) -> None:
        out = profile_path(ctx.root, meta.run_id, job.runtime, job.artifact.path, job.batch_size)
        try:
            profile_configuration(job.runtime, job.artifact, meta.to_json(), job.batch_size, ctx.cfg.threads,
                                  ctx.workdir / "inputs.npy", out, ctx.timeout_s)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            log.warning("%s", e)
            return
        job.row["profile_path"] = str(out.relative_to(ctx.root)) if out.is_relative_to(ctx.root) else str(out)

    from ..runtimes import get_runner

    todo = [job for job in jobs if job.row.get("status") == "ok" and get_runner(job.runtime).has_op_profiler()
            and job.batch_size in PROFILED_BATCH_SIZES]
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:   # nothing is timed any more
        list(pool.map(one, todo))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploybench.bench.profile SPEC.json", file=sys.stderr)
        return 2
    spec = read_json(argv[0])
    if not isinstance(spec, dict):
        print(f"{argv[0]}: not a profile spec (JSON object)", file=sys.stderr)
        return 2
    write_json(spec["out"], take_profile(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
