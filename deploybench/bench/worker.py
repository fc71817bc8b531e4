"""One configuration (artifact x runtime x batch size) measured in a fresh process.

    python -m deploybench.bench.worker SPEC.json OUT.json

SPEC: {"artifact": {path, format, precision, run_id}, "meta": {...}, "runtime", "threads", "batch_size",
"latency": LatencyConfig fields, "inputs": images.npy (real test images, tiled up to batch_size),
"accuracy": {"x": X.npy, "y": y.npy} or null, "options": runner options}.

Order inside the process: open the runner once -> warm-up + timed phase -> record peak RSS (VmHWM, see memory.py) and
device memory -> accuracy pass through the same runner (when asked). Memory is read before the accuracy pass
so the test split (memory-mapped) does not count toward the deployment footprint; accuracy uses the
row's batch size. OUT.json (written atomically): {"status": "ok", "precision", "latency", "top1", "top5",
"accuracy_images", "peak_host_mem_mb", "peak_device_mem_mb", "load_s", "seconds"} or {"status": "failed",
"reason"} (exit code 1).
"""
from __future__ import annotations

import json
import sys
import time
import traceback

import numpy as np


def _batch(images: np.ndarray, batch_size: int) -> np.ndarray:
    reps = -(-batch_size // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:batch_size], dtype=np.float32)


def run(spec: dict) -> dict:
    from ..config import LatencyConfig
    from ..records import Artifact
    from ..runtimes import get_runner
    from .accuracy import evaluate
    from .latency import measure
    from .memory import device_mem_mb, peak_host_mem_mb

    start = time.perf_counter()
    threads, bs = spec.get("threads"), int(spec["batch_size"])
    if threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
    batch = _batch(np.load(spec["inputs"]), bs)
    cls = get_runner(spec["runtime"])
    out: dict = {"status": "ok"}
    with cls(Artifact(**spec["artifact"]), spec["meta"], threads=threads, **(spec.get("options") or {})) as runner:
        out["load_s"] = round(time.perf_counter() - start, 3)
        logits = np.asarray(runner.infer(batch))
        if logits.ndim != 2 or logits.shape[0] != bs:
            raise RuntimeError(f"runner returned shape {logits.shape} for a batch of {bs}; expected ({bs}, classes)")
        res = measure(lambda: runner.infer(batch), LatencyConfig(**spec["latency"]),
                      device_time=lambda: runner.device_time_ms, batch_size=bs)
        out["latency"] = res.as_dict()
        out["peak_host_mem_mb"] = round(peak_host_mem_mb(), 1)
        out["peak_device_mem_mb"] = device_mem_mb()
        out["precision"] = runner.precision
        acc = spec.get("accuracy")
        if acc:
            X, y = np.load(acc["x"], mmap_mode="r"), np.load(acc["y"])
            out["top1"], out["top5"] = evaluate(runner, X, y, bs)
            out["accuracy_images"] = int(len(y))
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


def main(argv: list[str]) -> int:
    from ..io import write_json

    if len(argv) != 2:
        print("usage: python -m deploybench.bench.worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        spec = json.load(f)
    try:
        out, code = run(spec), 0
    except Exception as e:  # any runtime error becomes a failed row with its reason
        traceback.print_exc()
        out, code = {"status": "failed", "reason": f"{type(e).__name__}: {e}".strip()[:2000]}, 1
    write_json(argv[1], out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
