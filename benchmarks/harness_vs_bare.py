"""Is deploybench's p50 the model's latency? Paired comparisons with a bare loop and benchmark_app, plus a repeat check.

For each registry backbone (random init, exported here to ONNX at --image-size, batch 1, --threads threads):

  ORT       bare `session.run` loop on its own session   vs  OrtCpuRunner + bench.latency.measure
  OpenVINO  `benchmark_app -d CPU -hint none -api sync -nireq 1 -nstreams 1 -nthreads T -infer_precision f32`
            (its "Median:" line)                        vs  OpenVinoRunner + bench.latency.measure
  calls     call by call on ONE loaded model, alternating: the runtime's own call (`session.run`,
            `request.infer`) vs the deploybench runner's `infer` (drift cancels call by call: runner overhead).
  repeat    the full bench path (`bench_model` with the default LatencyConfig: fresh workers, 3 executions per
            configuration interleaved across both runtimes) run --repeats times: spread of the p50s against
            the CIs those runs reported.

A shared VM drifts by more than the effect we look for (seen here: a bare loop alone moving 19 -> 23 ms between
rounds), so the two sides are never compared across a long gap. They run in short blocks in ABBA order
(A B, B A, A B, ...), each pair giving one ratio harness/reference; linear drift cancels within a pair and its
sign alternates between pairs. The table shows the median ratio over pairs with its distribution-free 95 % CI
(binomial order statistics, `bench.stats.median_ci`), so a ratio is only claimed as precisely as the pairs allow.

    python benchmarks/harness_vs_bare.py --models resnet18 efficientnet_lite0 --image-size 160 --threads 1
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
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploybench.bench import bench_model  # noqa: E402
from deploybench.bench.latency import measure  # noqa: E402
from deploybench.bench.stats import median_ci  # noqa: E402
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


def bare_session(path: Path, threads: int):
    """An ONNX Runtime session with the same options OrtCpuRunner sets, used directly."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def bare_loop(sess, x: np.ndarray, seconds: float) -> float:
    """p50 (ms) of a plain timed `session.run` loop: 10 warm-up calls, then `seconds` of calls."""
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(10):
        sess.run(None, feed)
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.median(times))


def benchmark_app(path: Path, size: int, threads: int, seconds: float) -> float:
    """benchmark_app's own median latency (ms) for `seconds` of synchronous batch-1 inference."""
    exe = shutil.which("benchmark_app")
    if exe is None:
        raise SystemExit("benchmark_app not found (it ships with the openvino wheel)")
    args = [exe, "-m", str(path), "-d", "CPU", "-hint", "none", "-api", "sync", "-nireq", "1", "-nstreams", "1",
            "-nthreads", str(threads), "-infer_precision", "f32", "-shape", f"[1,3,{size},{size}]",
            "-t", str(max(1, round(seconds)))]
    proc = subprocess.run(args, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    m = re.search(r"Median:\s+([\d.]+)\s*ms", out)
    if not m:
        raise RuntimeError(f"no 'Median:' line in benchmark_app output:\n{out[-2000:]}")
    return float(m.group(1))


def abba(ref: Callable[[], float], ours: Callable[[], float], pairs: int) -> tuple[list, list]:
    """Run the two sides in ABBA order; return (reference p50s, harness p50s), one entry per pair."""
    a, b = [], []
    for i in range(pairs):
        if i % 2 == 0:
            a.append(ref())
            b.append(ours())
        else:
            b.append(ours())
            a.append(ref())
    return a, b


def ratio_stats(ref: list, ours: list) -> tuple[float, float, float]:
    """Median of the per-pair ratios ours/ref and its 95 % CI."""
    r = np.asarray(ours) / np.asarray(ref)
    lo, hi = median_ci(r)
    return float(np.median(r)), lo, hi


def compare(path: Path, size: int, threads: int, seconds: float, pairs: int) -> dict:
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    lat = LatencyConfig(warmup_iters=10, warmup_s=0.2, min_iters=20, min_duration_s=seconds,
                        max_duration_s=seconds, ci_rel_width=0.0)      # fixed duration, like the references
    art = Artifact(str(path), "onnx", "fp32")
    sess = bare_session(path, threads)
    with get_runner("onnxruntime-cpu")(art, {}, threads=threads) as r:
        ort = abba(lambda: bare_loop(sess, x, seconds), lambda: measure(lambda: r.infer(x), lat).summary.p50, pairs)
    with get_runner("openvino")(art, {}, threads=threads) as r:
        ov = abba(lambda: benchmark_app(path, size, threads, seconds),
                  lambda: measure(lambda: r.infer(x), lat).summary.p50, pairs)
    return {"ort": ort, "ov": ov}


def call_by_call(path: Path, size: int, threads: int, seconds: float) -> dict:
    """p50 of the runtime's own call vs the runner's `infer`, alternating on one loaded model, per runtime."""
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    art, out = Artifact(str(path), "onnx", "fp32"), {}
    for runtime in ("onnxruntime-cpu", "openvino"):
        with get_runner(runtime)(art, {}, threads=threads) as r:
            if runtime == "openvino":
                own = lambda: r.request.infer({0: x})                      # noqa: E731
            else:
                feed, names = {r.input_name: x}, [r.output_name]
                own = lambda: r.session.run(names, feed)                   # noqa: E731
            a, b, end = [], [], time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter_ns()
                own()
                t1 = time.perf_counter_ns()
                r.infer(x)
                t2 = time.perf_counter_ns()
                a.append((t1 - t0) / 1e6)
                b.append((t2 - t1) / 1e6)
        out[runtime] = (float(np.median(a)), float(np.median(b)))
    return out


def repeat(path: Path, size: int, threads: int, repeats: int, root: Path) -> dict:
    """`repeats` full bench calls (default LatencyConfig); p50, CI and sample count of each row."""
    cfg = BenchConfig(runtimes=["onnxruntime-cpu", "openvino"], batch_sizes=[1], threads=threads)
    out: dict = {"onnxruntime-cpu": [], "openvino": []}
    for _ in range(repeats):
        for row in bench_model(path, (3, size, size), cfg=cfg, root=root):
            out[row["runtime"]].append((row["latency_ms_p50"], row["latency_ms_p50_ci_low"],
                                        row["latency_ms_p50_ci_high"], row["latency_count"]))
    return out


def spread_line(name: str, runtime: str, runs: list) -> str:
    """Spread of the p50s vs the CIs: how many runs' p50s fall inside each other run's CI."""
    p50 = np.array([r[0] for r in runs])
    halfw = np.array([(r[2] - r[1]) / 2 for r in runs])
    inside = sum(1 for i, ri in enumerate(runs) for j, pj in enumerate(p50) if i != j and ri[1] <= pj <= ri[2])
    pairs = len(runs) * (len(runs) - 1)
    med = float(np.median(p50))
    return (f"{name:<20}{runtime:<17}{', '.join(f'{v:.3f}' for v in p50):<44}"
            f"{100 * (p50.max() - p50.min()) / med:>8.2f}%{100 * float(np.median(halfw)) / med:>9.2f}%"
            f"{inside:>6}/{pairs}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet18", "efficientnet_lite0"])
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0, help="per block")
    ap.add_argument("--pairs", type=int, default=8, help="ABBA pairs per comparison")
    ap.add_argument("--repeats", type=int, default=5, help="full bench runs per model for the spread check")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.models:
            path = export(name, a.image_size, Path(tmp))
            cmp = compare(path, a.image_size, a.threads, a.seconds, a.pairs) if a.pairs else {}
            calls = call_by_call(path, a.image_size, a.threads, 4 * a.seconds)
            rep = repeat(path, a.image_size, a.threads, a.repeats, Path(tmp)) if a.repeats > 1 else {}
            results.append((name, cmp, rep, calls))
            print(f"{name}: done", file=sys.stderr, flush=True)

    print(f"\nimage {a.image_size}px, batch 1, {a.threads} thread(s)")
    if a.pairs:
        print(f"\n{a.pairs} ABBA pairs of {a.seconds:g} s blocks; p50 in ms (median over pairs); "
              "ratio = median of per-pair ratios [95 % CI]")
        hdr = f"{'model':<20}{'reference':<16}{'ref p50':>9}{'ours p50':>10}{'ratio':>8}  {'95 % CI':<16}"
        print(hdr + "\n" + "-" * len(hdr))
        for name, cmp, _, _ in results:
            for key, label in (("ort", "ORT bare loop"), ("ov", "benchmark_app")):
                ref, ours = cmp[key]
                m, lo, hi = ratio_stats(ref, ours)
                print(f"{name:<20}{label:<16}{statistics.median(ref):>9.3f}{statistics.median(ours):>10.3f}"
                      f"{m:>8.3f}  [{lo:.3f}, {hi:.3f}]")
        print("\nper-pair p50s (ref / ours, ms):")
        for name, cmp, _, _ in results:
            for key in ("ort", "ov"):
                ref, ours = cmp[key]
                print(f"  {name} {key}: " + "  ".join(f"{p:.3f}/{q:.3f}" for p, q in zip(ref, ours)))
    print(f"\ncall by call, alternating on one loaded model for {4 * a.seconds:g} s (p50 ms)")
    hdr = f"{'model':<20}{'runtime':<17}{'own call':>10}{'runner':>10}{'ratio':>8}"
    print(hdr + "\n" + "-" * len(hdr))
    for name, _, _, calls in results:
        for runtime, (own, ours) in calls.items():
            print(f"{name:<20}{runtime:<17}{own:>10.3f}{ours:>10.3f}{ours / own:>8.3f}")
    if any(rep for _, _, rep, _ in results):
        print(f"\nrepeat: {a.repeats} full bench calls (default LatencyConfig: {LatencyConfig().executions} executions "
              "per configuration, interleaved; each stops when its CI is within +-1 % or after "
              f"{LatencyConfig().max_duration_s:g} s)")
        hdr = f"{'model':<20}{'runtime':<17}{'p50 per run (ms)':<44}{'spread':>9}{'CI +-':>10}{'inside':>11}"
        print(hdr + "\n" + "-" * len(hdr))
        for name, _, rep, _ in results:
            for runtime, runs in rep.items():
                print(spread_line(name, runtime, runs))
        print("spread = (max - min) / median of the p50s; CI +- = median half-width of the runs' 95 % CIs; "
              "inside = run pairs (i, j) with p50_j inside CI_i")
    noop = measure(lambda: None, LatencyConfig(min_iters=10000, min_duration_s=0.2, max_duration_s=0.5))
    print(f"\nharness timing overhead (measure() of a no-op): p50 {noop.summary.p50 * 1e3:.2f} us per call")


if __name__ == "__main__":
    main()
