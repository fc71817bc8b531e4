"""Does the deploybench harness add overhead? Compare its p50 with a bare loop and with OpenVINO's benchmark_app.

For each registry backbone (random init, exported here to ONNX at --image-size, batch 1):
  ORT:      bare `session.run` loop (same session options as the runner)  vs  OrtCpuRunner + bench.latency.measure
  OpenVINO: `benchmark_app -d CPU -hint none -api sync -nireq 1 -nstreams 1 -nthreads T -infer_precision f32`
            (its "Median:" latency; benchmark_app only accepts -nstreams/-nthreads with -hint none)                                        vs  OpenVinoRunner + measure
  worker:   the full `bench_model` path (fresh worker process per runtime) for both runtimes.
Measurements alternate (bare, harness, bare, harness, ...) for --rounds rounds so that load drift on a shared
machine hits both sides; the table shows the median over rounds of each side's p50 and the ratio.

    python benchmarks/harness_vs_bare.py --models resnet18 mobilenetv3_large --image-size 224 --threads 1
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploybench.bench import bench_model  # noqa: E402
from deploybench.bench.latency import measure  # noqa: E402
from deploybench.config import BenchConfig, LatencyConfig  # noqa: E402
from deploybench.records import Artifact  # noqa: E402
from deploybench.runtimes import get_runner  # noqa: E402


def export(name: str, size: int, out: Path) -> Path:
    import torch

    from deploybench.backbones import create_backbone

    model = create_backbone(name, 1000, weights="none", image_size=size).eval()
    path = out / f"{name}.onnx"
    torch.onnx.export(model, torch.randn(1, 3, size, size), str(path), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    return path


def bare_ort(path: Path, x: np.ndarray, threads: int, seconds: float) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(10):
        sess.run(None, feed)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.median(times))


def harness(runtime: str, path: Path, x: np.ndarray, threads: int, cfg: LatencyConfig) -> float:
    with get_runner(runtime)(Artifact(str(path), "onnx", "fp32"), {}, threads=threads) as r:
        return measure(lambda: r.infer(x), cfg).summary.p50


def paired_ort(path: Path, x: np.ndarray, threads: int, seconds: float) -> tuple[float, float]:
    """Call-by-call ABAB on ONE session: p50 of bare `session.run` vs p50 of `OrtCpuRunner.infer` (drift-robust)."""
    with get_runner("onnxruntime-cpu")(Artifact(str(path), "onnx", "fp32"), {}, threads=threads) as r:
        feed, out = {r.input_name: x}, [r.output_name]
        a, b, end = [], [], time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            r.session.run(out, feed)
            t1 = time.perf_counter_ns()
            r.infer(x)
            t2 = time.perf_counter_ns()
            a.append((t1 - t0) / 1e6)
            b.append((t2 - t1) / 1e6)
    return float(np.median(a)), float(np.median(b))


def benchmark_app(path: Path, size: int, threads: int, seconds: float) -> float:
    exe = shutil.which("benchmark_app")
    if exe is None:
        raise SystemExit("benchmark_app not found (it ships with the openvino wheel)")
    args = [exe, "-m", str(path), "-d", "CPU", "-hint", "none", "-api", "sync", "-nireq", "1", "-nstreams", "1",
            "-nthreads", str(threads), "-infer_precision", "f32", "-shape", f"[1,3,{size},{size}]",
            "-t", str(int(seconds))]
    proc = subprocess.run(args, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    m = re.search(r"Median:\s+([\d.]+)\s*ms", out)
    if not m:
        raise RuntimeError(f"no 'Median:' line in benchmark_app output:\n{out[-2000:]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet18", "mobilenetv3_large", "efficientnet_lite0"])
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    lat = LatencyConfig(warmup_iters=10, warmup_s=0.5, min_iters=50, min_duration_s=a.seconds,
                        max_duration_s=a.seconds, ci_rel_width=0.0)      # fixed duration, like the bare loop
    x = np.random.default_rng(0).standard_normal((1, 3, a.image_size, a.image_size)).astype(np.float32)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models:
            path = export(name, a.image_size, Path(tmp))
            res: dict[str, list[float]] = {k: [] for k in ("bare", "ort", "bapp", "ov")}
            for _ in range(a.rounds):
                res["bare"].append(bare_ort(path, x, a.threads, a.seconds))
                res["ort"].append(harness("onnxruntime-cpu", path, x, a.threads, lat))
                res["bapp"].append(benchmark_app(path, a.image_size, a.threads, a.seconds))
                res["ov"].append(harness("openvino", path, x, a.threads, lat))
            pair = paired_ort(path, x, a.threads, 2 * a.seconds)
            cfg = BenchConfig(runtimes=["onnxruntime-cpu", "openvino"], batch_sizes=[1], threads=a.threads,
                              latency=lat)
            worker = {r["runtime"]: r["latency_ms_p50"] for r in bench_model(
                path, (3, a.image_size, a.image_size), cfg=cfg, root=Path(tmp))}
            med = {k: statistics.median(v) for k, v in res.items()}
            rows.append((name, med, worker, res, pair))
    print(f"\nimage {a.image_size}px, batch 1, {a.threads} thread(s), {a.seconds:g} s per measurement, "
          f"median of {a.rounds} alternating rounds (ms)")
    hdr = (f"{'model':<20}{'ORT bare':>10}{'ORT db':>10}{'ratio':>8}{'ORT wrk':>10}{'bench_app':>11}"
           f"{'OV db':>10}{'ratio':>8}{'OV wrk':>10}")
    print(hdr + "\n" + "-" * len(hdr))
    for name, m, w, _, _ in rows:
        print(f"{name:<20}{m['bare']:>10.3f}{m['ort']:>10.3f}{m['ort'] / m['bare']:>8.3f}"
              f"{w.get('onnxruntime-cpu') or float('nan'):>10.3f}{m['bapp']:>11.3f}{m['ov']:>10.3f}"
              f"{m['ov'] / m['bapp']:>8.3f}{w.get('openvino') or float('nan'):>10.3f}")
    print("\nper-round p50s:")
    for name, _, _, res, _ in rows:
        print(f"  {name}: " + "; ".join(f"{k}={', '.join(f'{v:.3f}' for v in vs)}" for k, vs in res.items()))
    print("\npaired ABAB on one ORT session (p50 ms): bare session.run vs OrtCpuRunner.infer")
    for name, _, _, _, (pa, pb) in rows:
        print(f"  {name:<20}{pa:>10.3f}{pb:>10.3f}  ratio {pb / pa:.3f}")
    noop = measure(lambda: None, LatencyConfig(min_iters=10000, min_duration_s=0.2, max_duration_s=0.5))
    print(f"\nharness timing overhead (measure() of a no-op): p50 {noop.summary.p50 * 1e3:.2f} us per call")


if __name__ == "__main__":
    main()
