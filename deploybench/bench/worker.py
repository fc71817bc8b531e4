"""One configuration (artifact x runtime x batch size) in a fresh process, measured in one or more executions.
Both sides of the protocol live here: `Session`/`serve` in the worker, `ProcessWorker` in the driver (stage.py).

    python -m deploybench.bench.worker SPEC.json

SPEC (typed: `Spec`): {"artifact": {path, format, precision, run_id}, "meta": {...}, "runtime", "threads", "batch_size",
"latency": LatencyConfig fields, "inputs": images.npy (real test images, tiled up to batch_size),
"accuracy": {"x": X.npy, "y": y.npy, "reference": logits.npy (the run's torch fp32 logits on X) or null} or null,
"options": runner options}.

The process opens the runner once and prepares: one inference, then peak RSS (VmHWM, see memory.py), read before
the accuracy pass so the test split (memory-mapped) does not count toward the deployment footprint, then accuracy
through the same runner at the row's batch size (GPU runners: the device-level used-memory delta from before the
load to after the first timed phase, memory.DeviceMemProbe). It answers "ready" on its control channel (the
original stdout; fd 1 is pointed at stderr so that runtime libraries cannot write into it). Nothing
is timed while workers prepare, so the driver prepares several at once (stage.py). Then it serves the driver:
each line on stdin is an OUT.json path; the worker runs one execution (warm-up + timed phase), writes OUT.json
there atomically and answers "done". EOF on stdin, or a failed execution, ends it. Between executions the process
sits blocked on stdin while the driver measures other configurations (stage.py interleaves them). The first
execution's OUT carries what preparing measured.
OUT.json (typed: `Reply`; the driver gets Replies): {"status": "ok", "execution", "started_ns" (time.monotonic_ns),
"precision", "compute_precision", "latency" (LatencyResult.as_dict, samples included), "seconds", and on the first:
"load_s", "peak_host_mem_mb",
"peak_device_mem_mb", "peak_device_mem_method" (GPU runners: device-level used-memory delta around load and run,
see memory.DeviceMemProbe), "options_used" (the runner's, e.g. the TensorRT profile that ran), "top1", "top5",
"accuracy_images", "parity" (accuracy.parity_stats of this runner's logits against the reference, when there is
one)} or {"status": "failed", "reason"}.
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..io import read_json, write_json

STDERR_TAIL = 800


def _batch(images: np.ndarray, batch_size: int) -> np.ndarray:
    reps = -(-batch_size // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:batch_size], dtype=np.float32)


def _accounting(runner) -> Optional[float]:
    """The runtime's own device-memory total (TensorRT: weights + activations + I/O), where it reports one."""
    fn = getattr(runner, "memory_accounting", None)
    return fn().get("total_mb") if fn else None


@dataclass
class Spec:
    """SPEC.json: one configuration to serve (module docstring)."""
    artifact: dict              # records.Artifact fields
    meta: dict
    runtime: str
    threads: Optional[int]
    batch_size: int
    latency: dict               # config.LatencyConfig fields
    inputs: str                 # images.npy, tiled up to batch_size
    accuracy: Optional[dict] = None     # {"x", "y", "reference" (or None)}; None: no accuracy pass
    options: dict = field(default_factory=dict)     # runner options (Runner.bench_options)

    @classmethod
    def from_json(cls, d: dict) -> "Spec":
        return cls(**d)


@dataclass
class Reply:
    """OUT.json: the answer to one execution request (module docstring); `None` fields are left out of the file.
    The fields after `seconds` are what preparing measured: the first execution's reply carries them."""
    status: str                 # ok | failed
    reason: str = ""
    execution: Optional[int] = None
    started_ns: Optional[int] = None
    precision: Optional[str] = None
    compute_precision: Optional[str] = None
    latency: Optional[dict] = None      # latency.LatencyResult.as_dict(), samples included
    seconds: Optional[float] = None
    load_s: Optional[float] = None
    peak_host_mem_mb: Optional[float] = None
    peak_device_mem_mb: Optional[float] = None
    peak_device_mem_method: Optional[str] = None
    options_used: Optional[dict] = None
    top1: Optional[float] = None
    top5: Optional[float] = None
    accuracy_images: Optional[int] = None
    parity: Optional[dict] = None

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, d: dict) -> "Reply":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def failed(e: BaseException) -> Reply:
    return Reply("failed", f"{type(e).__name__}: {e}".strip()[:2000])


class Session:
    """The configuration of one spec, runner open: `with Session(spec) as s: s.execute(); s.execute()`."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.executions = 0
        self.runner = None
        self.first: Optional[dict] = None     # what prepare() measured, reported by the first execution

    def __enter__(self) -> "Session":
        from ..records import Artifact
        from ..runtimes import get_runner

        start = time.perf_counter()
        spec, bs = self.spec, int(self.spec.batch_size)
        threads = spec.threads
        if threads and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        self.batch = _batch(np.load(spec.inputs), bs)
        cls = get_runner(spec.runtime)
        self.mem = None
        if cls.device_kind == "cuda":     # device-level baseline before the runner touches the GPU
            from .memory import DeviceMemProbe
            self.mem = DeviceMemProbe()
        self.runner = cls(Artifact(**spec.artifact), spec.meta, threads=threads, **(spec.options or {}))
        self.runner.__enter__()
        logits = np.asarray(self.runner.infer(self.batch))
        if logits.ndim != 2 or logits.shape[0] != bs:
            raise RuntimeError(f"runner returned shape {logits.shape} for a batch of {bs}; expected ({bs}, classes)")
        if self.mem:
            self.mem.sample()
        self.load_s = round(time.perf_counter() - start, 3)
        return self

    def prepare(self) -> None:
        """Untimed: memory after load (before the accuracy pass), then accuracy; reported by the first execution."""
        from .accuracy import evaluate, parity_stats
        from .memory import peak_host_mem_mb

        used = getattr(self.runner, "options_used", None)     # copied before accuracy's partial batch changes it
        self.first = {"load_s": self.load_s, "peak_host_mem_mb": round(peak_host_mem_mb(), 1),
                      "peak_device_mem_mb": None, "peak_device_mem_method": None,
                      "options_used": dict(used) if used else None}
        acc = self.spec.accuracy
        if acc:
            X, y = np.load(acc["x"], mmap_mode="r"), np.load(acc["y"])
            scores = evaluate(self.runner, X, y, int(self.spec.batch_size))
            self.first.update(top1=scores.top1, top5=scores.top5, accuracy_images=int(len(y)))
            if acc.get("reference"):
                self.first["parity"] = parity_stats(scores.logits, np.load(acc["reference"]), y)

    def execute(self) -> Reply:
        """One execution: latency (+ what `prepare` measured, and GPU memory, on the first)."""
        from ..config import LatencyConfig
        from .latency import measure

        if self.first is None:
            self.prepare()
        started_ns = time.monotonic_ns()       # system-wide clock: orders executions across worker processes
        start, runner, bs = time.perf_counter(), self.runner, int(self.spec.batch_size)
        res = measure(lambda: runner.infer(self.batch), LatencyConfig(**self.spec.latency),
                      device_time=lambda: runner.device_time_ms, batch_size=bs)
        out = Reply("ok", execution=self.executions, started_ns=started_ns, precision=runner.precision,
                    compute_precision=getattr(runner, "compute_precision", None), latency=res.as_dict(),
                    **(self.first if self.executions == 0 else {}))
        if self.executions == 0 and self.mem:      # device-level used-memory delta around load, accuracy, this phase
            self.mem.sample()
            out.peak_device_mem_mb, out.peak_device_mem_method = self.mem.figure(
                self.first["peak_host_mem_mb"], _accounting(runner))
        self.executions += 1
        out.seconds = round(time.perf_counter() - start, 3)
        return out

    def __exit__(self, *exc) -> None:
        if self.runner is not None:
            self.runner.__exit__(*exc)
            self.runner = None


def serve(spec: Spec, requests, control) -> int:
    """Answer each OUT path read from `requests` with one execution; 0 when every execution succeeded."""
    session, code = Session(spec), 0
    try:
        session.__enter__()
        session.prepare()
        setup_error = None
    except Exception as e:  # a runner that cannot load answers every request with the reason
        traceback.print_exc()
        setup_error = failed(e)
    control.write("ready\n")
    control.flush()
    try:
        for line in requests:
            path = line.strip()
            if not path:
                continue
            out = setup_error
            if out is None:
                try:
                    out = session.execute()
                except Exception as e:  # any runtime error becomes a failed row with its reason
                    traceback.print_exc()
                    out = failed(e)
            write_json(path, out.to_json())
            control.write("done\n")
            control.flush()
            if out.status != "ok":
                code = 1
                break
    finally:
        session.__exit__(None, None, None)
    return code


class ProcessWorker:
    """Driver side: a fresh `python -m deploybench.bench.worker` process serving one configuration; `execute()`
    asks for one execution and returns its OUT dict, or a failed result with the reason (never raises)."""

    def __init__(self, spec: Spec, workdir: Path, tag: str, threads: int, timeout_s: float):
        self.workdir, self.tag, self.timeout_s, self.n = Path(workdir), tag, timeout_s, 0
        spec_path = self.workdir / f"{tag}.spec.json"
        write_json(spec_path, dataclasses.asdict(spec))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        self.stderr = open(self.workdir / f"{tag}.stderr", "w+b")
        self.proc = subprocess.Popen([sys.executable, "-m", "deploybench.bench.worker", str(spec_path)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self._ready: Optional[bool] = None
        self.timed_out: Optional[str] = None

    def wait_ready(self) -> None:
        """Block until the worker has loaded and prepared (or ended). One that does not answer within the timeout
        is killed, so that its late "ready" is never taken for the answer to an execution."""
        if self._ready is None:
            got = _wait_line(self.proc.stdout.fileno(), self.timeout_s)
            self._ready = bool(got)
            if got is None:
                self.proc.kill()
                self.proc.wait()
                self.timed_out = f"worker timed out after {self.timeout_s:.0f} s while loading and preparing; " \
                                 f"{self._tail()}"

    def _tail(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0, os.SEEK_END)
        self.stderr.seek(max(0, self.stderr.tell() - STDERR_TAIL))
        return self.stderr.read().decode(errors="replace").strip()

    def execute(self) -> Reply:
        self.wait_ready()
        if self.timed_out:
            return Reply("failed", self.timed_out)
        out_path = self.workdir / f"{self.tag}.{self.n}.out.json"
        self.n += 1
        try:
            self.proc.stdin.write(f"{out_path}\n".encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass    # the worker is gone; its exit code and stderr say why below
        answered = _wait_line(self.proc.stdout.fileno(), self.timeout_s)
        if answered is None:
            self.proc.kill()
            self.proc.wait()
            return Reply("failed", f"worker timed out after {self.timeout_s:.0f} s; {self._tail()}")
        out = read_json(out_path)
        if answered and isinstance(out, dict) and (out.get("status") == "ok" or out.get("reason")):
            return Reply.from_json(out)
        code = self.proc.wait()
        return Reply("failed", f"worker exited with code {code}: {self._tail()}")

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()


class LocalWorker:
    """The same contract in this process (bench.fresh_process: false): faster, but memory is not per config."""

    def __init__(self, spec: Spec, workdir: Path, tag: str, threads: int, timeout_s: float):
        self.session, self.error = Session(spec), None
        try:
            self.session.__enter__()
            self.session.prepare()
        except Exception as e:
            self.error = failed(e)

    def wait_ready(self) -> None:
        """Prepared in __init__."""

    def execute(self) -> Reply:
        if self.error:
            return self.error
        try:
            return self.session.execute()
        except Exception as e:
            return failed(e)

    def close(self) -> None:
        self.session.__exit__(None, None, None)


def _wait_line(fd: int, timeout_s: float) -> Optional[bool]:
    """Wait for one newline on `fd`: True when it came, False at EOF (the process ended), None on timeout."""
    deadline, buf = time.monotonic() + timeout_s, b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return False
        buf += chunk
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploybench.bench.worker SPEC.json  (OUT.json paths on stdin)", file=sys.stderr)
        return 2
    control = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    with open(argv[0]) as f:
        spec = Spec.from_json(json.load(f))
    return serve(spec, sys.stdin, control)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
