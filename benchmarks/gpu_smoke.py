"""GPU smoke test: build TensorRT engines from ONNX, check parity against ONNX Runtime CPU, time the GPU runners.

    python benchmarks/gpu_smoke.py --onnx model.fp32.onnx [--fp16 model.fp16.onnx] [--int8 model.int8.onnx]
    python benchmarks/gpu_smoke.py --backbone resnet18 --image-size 224     # random-init model, exported here

Without --fp16 the fp16 ONNX is converted from the fp32 one (deploybench.export.fp16). Inputs are random
normal images (parity is model-vs-model, not accuracy). Engines get one optimization profile per --batch-sizes
entry; each table row says which profile ran, what the engine computed in, host and device p50 (trtexec's
"Host Latency" and "GPU Compute Time") and the device-level memory delta with its method. Exits 1 with the reason when
no GPU stack is present.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from deploybench.export.fp16 import to_fp16
from deploybench.export.parity import batched, parity_stats
from deploybench.bench.memory import DeviceMemProbe
from deploybench.export.tensorrt import build_engine, engine_file
from deploybench.records import Artifact
from deploybench.runtimes import get_runner


def latency(runner, x: np.ndarray, iters: int) -> tuple[float, float | None]:
    """(host p50 ms, device p50 ms or None) over `iters` calls after 10 warm-up calls."""
    for _ in range(10):
        runner.infer(x)
    host, dev = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        runner.infer(x)
        host.append((time.perf_counter() - t0) * 1e3)
        if runner.device_time_ms is not None:
            dev.append(runner.device_time_ms)
    return float(np.median(host)), (float(np.median(dev)) if dev else None)


def onnx_image_size(path: Path) -> int | None:
    """Static width of the ONNX model's NCHW input, if it has one."""
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim[-1].dim_value \
        or None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", type=Path, help="fp32 ONNX file (input NCHW, dynamic batch)")
    src.add_argument("--backbone", help="registry backbone name (random init, 1000 classes)")
    ap.add_argument("--fp16", type=Path, help="fp16 ONNX (default: converted from the fp32 one)")
    ap.add_argument("--int8", type=Path, help="int8 QDQ ONNX (optional)")
    ap.add_argument("--image-size", type=int, default=224, help="default: from --onnx's input, else 224")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--workdir", type=Path, help="where engines go (default: a temp folder)")
    args = ap.parse_args()

    ok, reason = get_runner("tensorrt").available()
    if not ok:
        sys.exit(f"skipped: {reason}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gpu_smoke."))
    work.mkdir(parents=True, exist_ok=True)
    if args.onnx:
        args.image_size = onnx_image_size(args.onnx) or args.image_size
    onnx = {"fp32": args.onnx}
    if args.backbone:
        from deploybench.backbones import create_backbone
        from deploybench.export.onnx import export_onnx

        onnx["fp32"] = work / "model.fp32.onnx"
        export_onnx(create_backbone(args.backbone, 1000, weights="none", image_size=args.image_size),
                    onnx["fp32"], args.image_size)
    onnx["fp16"] = args.fp16 or work / "model.fp16.onnx"
    if not args.fp16:
        to_fp16(onnx["fp32"], onnx["fp16"])
    if args.int8:
        onnx["int8"] = args.int8

    x = np.random.default_rng(0).standard_normal((max(args.batch_sizes), 3, args.image_size, args.image_size),
                                                 dtype=np.float32)
    with get_runner("onnxruntime-cpu")(Artifact(str(onnx["fp32"]), "onnx", "fp32"), {}) as r:
        ref = batched(r.infer, x)
    rows = []
    cuda_ok, cuda_reason = get_runner("onnxruntime-cuda").available()
    for prec, path in onnx.items():
        engine = work / engine_file(prec)
        t0 = time.perf_counter()
        build_engine(path, engine, args.image_size, max_batch=max(args.batch_sizes), opt_batches=args.batch_sizes,
                     timing_cache=work / "trt_timing.cache")
        print(f"built {engine.name} in {time.perf_counter() - t0:.1f} s")
        targets = [("tensorrt", Artifact(str(engine), "tensorrt", prec))]
        if cuda_ok:
            targets += [(rt, Artifact(str(path), "onnx", prec)) for rt in ("onnxruntime-cuda", "onnxruntime-trt")
                        if get_runner(rt).available()[0]]
        for rt, art in targets:
            probe = DeviceMemProbe()
            with get_runner(rt)(art, {}) as r:
                par = parity_stats(batched(r.infer, x), ref)
                for bs in args.batch_sizes:
                    host, dev = latency(r, x[:bs], args.iters)
                    probe.sample()
                    mem, method = probe.figure(None, r.memory_accounting()["total_mb"]
                                               if hasattr(r, "memory_accounting") else None)
                    profile = r.options_used.get("profile_opt", "-")
                    rows.append((rt, r.precision, r.compute_precision, bs, profile, par["max_rel_err"],
                                 par["top1_agree"], host, dev, bs * 1e3 / host, mem, method))
    print(f"\n{'runtime':18} {'prec':5} {'comp':5} {'batch':>5} {'opt':>4} {'max_rel_err':>11} {'top1_agree':>10} "
          f"{'p50 ms':>8} {'dev p50 ms':>10} {'img/s':>9} {'dev MiB':>8} method")
    for rt, prec, comp, bs, opt, err, agree, host, dev, ips, mem, method in rows:
        dev_s = f"{dev:10.3f}" if dev is not None else f"{'-':>10}"
        mem_s = f"{mem:8.1f}" if mem is not None else f"{'-':>8}"
        print(f"{rt:18} {prec:5} {comp or '-':5} {bs:5d} {opt!s:>4} {err:11.2e} {agree:10.3f} {host:8.3f} {dev_s} "
              f"{ips:9.1f} {mem_s} {method}")
    if not cuda_ok:
        print(f"\nonnxruntime-cuda/-trt skipped: {cuda_reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
