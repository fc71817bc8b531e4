"""INT8 vs fp32 per backbone and CPU runtime, on an exported workdir (deploybench export --precision int8).

    python benchmarks/int8_table.py --workdir /tmp/mywork [-c configs/quickstart.yaml] [--threads 2]

For each run whose export.json has INT8 artifacts: the fp32 file and the INT8 file made for each runtime
(onnxruntime-cpu: model.fp32.onnx vs model.int8.u8s8.onnx; openvino: model.fp32.xml vs model.int8.nncf.xml),
p50 at batch 1 measured interleaved (A B A B ..., `--rounds` rounds of `--iters` calls each, both models loaded),
the validation drop export recorded, and the test drop vs PyTorch fp32 with its paired standard error — measured only
here, never by export — on `--test-images` test images (default: the config's bench.accuracy_images; 0: the whole
test split, e.g. all 10,000 of Fashion-MNIST, where a quickstart subset of 2,000 leaves about 0.5 pt of noise).
Prints a markdown table.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from deploybench.config import load_config
from deploybench.data import load_array
from deploybench.export.parity import batched, torch_logits
from deploybench.finetune import load_checkpoint
from deploybench.io import read_json
from deploybench.records import Artifact
from deploybench.runtimes import get_runner
from deploybench.sweep.plan import plan

PAIRS = {"onnxruntime-cpu": ("model.fp32.onnx", "model.int8.u8s8.onnx"),
         "openvino": ("model.fp32.xml", "model.int8.nncf.xml")}


def interleaved_p50(runners: list, x: np.ndarray, rounds: int, iters: int) -> list[float]:
    """p50 (ms) of each runner on batch `x`, timed in alternating blocks of `iters` calls after a warm-up."""
    times: list[list[float]] = [[] for _ in runners]
    for r in runners:
        for _ in range(10):
            r.infer(x)
    for _ in range(rounds):
        for r, t in zip(runners, times):
            for _ in range(iters):
                t0 = time.perf_counter()
                r.infer(x)
                t.append((time.perf_counter() - t0) * 1e3)
    return [float(np.median(t)) for t in times]


def top1(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean() * 100)


def paired_delta(logits: np.ndarray, ref: np.ndarray, y: np.ndarray) -> str:
    """Top-1 of `logits` minus top-1 of `ref` on the same images, with its paired standard error."""
    d = (logits.argmax(1) == y).astype(np.float64) - (ref.argmax(1) == y)
    return f"{d.mean() * 100:+.2f} ± {d.std(ddof=1) / np.sqrt(len(d)) * 100:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", default="configs/quickstart.yaml")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--test-images", type=int, default=None,
                    help="test images for the drop (default: bench.accuracy_images; 0: the whole test split)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    rows = []
    for run in plan(cfg):
        exp = read_json(run.engine_dir(args.workdir) / "export.json") or {}
        arts = {a["file"]: a for a in exp.get("artifacts", []) if a.get("status") == "ok"}
        if not any(a["precision"] == "int8" for a in arts.values()):
            continue
        model, meta = load_checkpoint(run.ckpt_dir(args.workdir))
        n = cfg.bench.accuracy_images if args.test_images is None else (args.test_images or None)
        ds = run.dataset if args.test_images is None else dataclasses.replace(run.dataset, max_test=None)
        x, y = load_array(ds, "test", image_size=meta.image_size, mean=meta.mean, std=meta.std, limit=n)
        ref = torch_logits(model, x)
        torch_top1 = top1(ref, y)
        for rt, files in PAIRS.items():
            if not all(f in arts for f in files):
                continue
            fmt = arts[files[0]]["format"]
            pair = [Artifact(str(run.engine_dir(args.workdir) / f), fmt, arts[f]["precision"], run.run_id)
                    for f in files]
            cls = get_runner(rt)
            meta_json = meta.to_json()
            with cls(pair[0], meta_json, threads=args.threads) as a, cls(pair[1], meta_json, threads=args.threads) as b:
                p50 = interleaved_p50([a, b], x[:1], args.rounds, args.iters)
                test = paired_delta(batched(b.infer, x, 50), ref, y)
            e = arts[files[1]]
            rows.append([meta["backbone"], rt, f"{p50[0]:.3f}", f"{p50[1]:.3f}", f"{p50[0] / p50[1]:.2f}x",
                         f"{-e['val_drop']:+.1f}" + ("" if e["budget_met"] else " (over budget)"),
                         test, f"{torch_top1:.1f}", ", ".join(e["fp32_layers"]) or "-"])
            print(" | ".join(rows[-1]), flush=True)
    head = ["backbone", "runtime", "fp32 p50 ms", "int8 p50 ms", "speed-up", "val Δ top-1 (pt)", "test Δ top-1 vs torch (pt)",
            "torch fp32 test top-1", "layers kept in fp32"]
    print(f"\nbs 1, {args.threads} threads, interleaved {args.rounds} x {args.iters} calls each; test: {len(y)} "
          f"test images\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
