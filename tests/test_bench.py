"""Bench stage on a real fine-tuned + exported run: rows, skipped GPU runtimes, failures, resume, BYO ONNX."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from deploybench.bench import bench_model, bench_run
from deploybench.bench.device import device_info, device_name, fingerprint, versions
from deploybench.bench.memory import peak_host_mem_mb, used_device_mem
from deploybench.bench.stage import on_gpu
from deploybench.records import COLUMNS
from deploybench.store import KEY

RUNTIMES = ["torch", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt"]


def _key(r: dict) -> tuple:
    return tuple(r[k] for k in KEY)


@pytest.fixture(scope="module")
def bench_rows(exported_run):
    cfg, run = exported_run
    return bench_run(run, cfg.root, cfg.bench, runtimes=RUNTIMES, batch_sizes=[1, 8], config_name=cfg.name)


def test_device_and_versions():
    info = device_info()
    assert info["cores"] >= 1 and info["cpu"]
    assert device_name("cpu-1t") == "cpu-1t"
    assert fingerprint("cpu-1t") != fingerprint("other") and len(fingerprint()) == 12
    assert json.loads(versions())["deploybench"]
    assert peak_host_mem_mb() > 10
    if "gpu" not in info:
        assert used_device_mem() == (None, "")


def test_child_peak_rss_does_not_inherit_parent_peak():
    import subprocess
    import sys

    import numpy as np

    big = np.ones(300 * 2**20 // 8)                              # 300 MiB resident in this (parent) process
    code = "from deploybench.bench.memory import peak_host_mem_mb as p; print(p())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert big.sum() > 0 and 5 < child < 200


def test_rows_complete_and_sensible(bench_rows, exported_run):
    cfg, run = exported_run
    ok = [r for r in bench_rows if r["status"] == "ok"]
    assert {(r["runtime"], r["artifact"]) for r in ok} >= {("torch", "best.pt"), ("onnxruntime-cpu", "model.fp32.onnx")}
    for r in bench_rows:
        assert list(r) == COLUMNS
        kind = "gpu" if on_gpu(r["runtime"]) else "cpu"     # the processor the runtime computes on
        assert r["run_id"] == run.run_id and r["device_fingerprint"] == fingerprint(kind=kind) and r["threads"] == 1
        assert r["config_name"] == "tiny" and json.loads(r["versions"])["onnxruntime"]
    for r in ok:
        assert r["top1"] > 10 and r["top5"] >= r["top1"]
        assert 0 < r["latency_ms_min"] <= r["latency_ms_p50"] <= r["latency_ms_p99"] <= r["latency_ms_max"]
        assert r["latency_ms_p50_ci_low"] <= r["latency_ms_p50"] <= r["latency_ms_p50_ci_high"]
        assert r["throughput_ips"] > 0 and r["peak_host_mem_mb"] > 0 and r["size_mb"] > 0
        assert r["latency_count"] >= cfg.bench.latency.min_iters or r["latency_count"] >= 5
        assert r["latency_executions"] == cfg.bench.latency.executions == 2
        assert r["scenario"] == ("single-stream" if r["batch_size"] == 1 else "offline")
        assert r["params_m"] > 0 and r["gmacs"] > 0 and r["created_at"].endswith("+00:00")
        assert r["top1_delta_vs_torch_fp32"] is not None and r["accuracy_images"] == cfg.bench.accuracy_images
        assert r["accuracy_flag"] == ("drop>1pt" if r["top1_delta_vs_torch_fp32"] < -1 else None)
        assert r["efficiency"] is None or 0 < r["efficiency"] < 5
        assert r["parity_max_rel_err"] is not None and 0 <= r["parity_top1_agree"] <= 1
        if r["runtime"] == "torch":                              # measured against the reference, not assumed
            assert r["top1_delta_vs_torch_fp32"] == 0 and r["parity_max_rel_err"] < 1e-4
    fp32 = [r for r in ok if r["artifact"] == "model.fp32.onnx"]
    assert len({r["top1"] for r in fp32}) == 1                  # accuracy computed once per pair, reused


def test_gpu_runtimes_skipped_with_reason(bench_rows):
    from deploybench.runtimes import get_runner

    for rt in ("onnxruntime-cuda", "tensorrt"):
        ok, reason = get_runner(rt).available()
        rows = [r for r in bench_rows if r["runtime"] == rt]
        assert rows, f"no rows for {rt}"
        if ok:
            pytest.skip(f"{rt} is available here; skipped-row behaviour needs a machine without it")
        assert all(r["status"] == "skipped" and r["status_reason"] == reason and reason for r in rows)
        assert all(r["latency_ms_p50"] is None and r["top1"] is None for r in rows)


def test_resume_skips_existing(bench_rows, exported_run):
    cfg, run = exported_run
    existing = {_key(r) for r in bench_rows}
    again = bench_run(run, cfg.root, cfg.bench, runtimes=RUNTIMES, batch_sizes=[1, 8], existing=existing)
    assert again == []
    one = {_key(r) for r in bench_rows if not (r["runtime"] == "torch" and r["batch_size"] == 1)}
    again = bench_run(run, cfg.root, cfg.bench, runtimes=RUNTIMES, batch_sizes=[1, 8], existing=one)
    assert [(r["runtime"], r["batch_size"], r["status"]) for r in again] == [("torch", 1, "ok")]
    assert again[0]["top1"] > 10                                 # the resumed pair still gets its accuracy


def _engine_copy(exported_run, tmp_path, corrupt: bool):
    """A workdir whose export.json lists one fp32 ONNX artifact (optionally garbage bytes)."""
    cfg, run = exported_run
    src_ckpt, src_eng = run.ckpt_dir(cfg.root), run.engine_dir(cfg.root)
    shutil.copytree(src_ckpt, run.ckpt_dir(tmp_path))
    eng = run.engine_dir(tmp_path)
    eng.mkdir(parents=True)
    exp = json.loads((src_eng / "export.json").read_text())
    exp["artifacts"] = [a for a in exp["artifacts"] if a["file"] == "model.fp32.onnx"]
    (eng / "export.json").write_text(json.dumps(exp))
    if corrupt:
        (eng / "model.fp32.onnx").write_bytes(b"\x08\x07not an onnx model" * 100)
    else:
        shutil.copy(src_eng / "model.fp32.onnx", eng / "model.fp32.onnx")
    return cfg, run


def test_worker_crash_becomes_failed_row(exported_run, tmp_path):
    cfg, run = _engine_copy(exported_run, tmp_path, corrupt=True)
    rows = bench_run(run, tmp_path, cfg.bench, runtimes=["onnxruntime-cpu"], batch_sizes=[1])
    assert len(rows) == 1 and rows[0]["status"] == "failed"
    assert "onnx" in rows[0]["status_reason"].lower() or "protobuf" in rows[0]["status_reason"].lower()
    assert rows[0]["latency_ms_p50"] is None and list(rows[0]) == COLUMNS


def _worker(exported_run, tmp_path, timeout_s=120.0):
    """A real worker process for the fp32 ONNX artifact at batch 1, with accuracy on 20 test images."""
    import numpy as np

    from deploybench.bench.worker import ProcessWorker, Spec

    cfg, run = exported_run
    size = cfg.datasets[0].image_size
    x = np.random.default_rng(0).standard_normal((20, 3, size, size)).astype(np.float32)
    np.save(tmp_path / "inputs.npy", x[:1])
    np.save(tmp_path / "acc_x.npy", x)
    np.save(tmp_path / "acc_y.npy", np.zeros(20, dtype=np.int64))
    art = {"path": str(run.engine_dir(cfg.root) / "model.fp32.onnx"), "format": "onnx", "precision": "fp32",
           "run_id": run.run_id}
    spec = {"artifact": art, "meta": {}, "runtime": "onnxruntime-cpu", "threads": 1, "batch_size": 1,
            "latency": dataclasses.asdict(cfg.bench.latency), "inputs": str(tmp_path / "inputs.npy"),
            "accuracy": {"x": str(tmp_path / "acc_x.npy"), "y": str(tmp_path / "acc_y.npy")}, "options": {}}
    return ProcessWorker(Spec(**spec), tmp_path, "w", 1, timeout_s)


def test_worker_process_serves_several_executions(exported_run, tmp_path):
    w = _worker(exported_run, tmp_path)
    try:
        first, second = w.execute(), w.execute()
    finally:
        w.close()
    assert first.status == second.status == "ok" and (first.execution, second.execution) == (0, 1)
    assert first.peak_host_mem_mb > 10 and first.accuracy_images == 20 and first.load_s > 0
    assert second.peak_host_mem_mb is None and second.top1 is None           # memory and accuracy once
    assert len(second.latency["samples"]) == second.latency["summary"]["count"]
    assert w.proc.returncode == 0                                            # EOF on stdin ends it cleanly


def test_executions_interleave_round_robin_across_runtimes(exported_run, tmp_path):
    """Three executions of four configurations (2 runtimes x 2 batch sizes), each in its own live worker process:
    in time order they go A B C D, A B C D, A B C D, and every worker has exited at the end."""
    import numpy as np

    from deploybench.bench.stage import _Ctx, _execute_rounds, _plan
    from deploybench.records import Artifact, RunMeta

    cfg, run = exported_run
    meta = RunMeta.read(run.ckpt_dir(cfg.root))
    bcfg = dataclasses.replace(cfg.bench, latency=dataclasses.replace(cfg.bench.latency, executions=3))
    size = cfg.datasets[0].image_size
    np.save(tmp_path / "inputs.npy", np.zeros((8, 3, size, size), dtype=np.float32))
    ctx = _Ctx(tmp_path, bcfg, "cpu", fingerprint(), 1, set(), tmp_path, False, 120.0)
    art = Artifact(str(run.engine_dir(cfg.root) / "model.fp32.onnx"), "onnx", "fp32", run.run_id)
    jobs = []
    for rt in ("onnxruntime-cpu", "openvino"):
        jobs += _plan([art], rt, meta, ctx, [1, 8], None)[1]
    _execute_rounds(jobs, meta, ctx)
    assert all(j.error is None and len(j.outs) == 3 and j.worker is None for j in jobs)
    order = sorted((o.started_ns, i, o.execution) for i, j in enumerate(jobs) for o in j.outs)
    assert [(i, e) for _, i, e in order] == [(i, e) for e in range(3) for i in range(4)]
    assert [j.row["latency_executions"] for j in jobs] == [3] * 4
    assert all(j.row["latency_count"] == sum(len(o.latency["samples"]) for o in j.outs) for j in jobs)


def test_worker_killed_between_executions_is_a_failure_with_reason(exported_run, tmp_path):
    w = _worker(exported_run, tmp_path)
    try:
        assert w.execute().status == "ok"
        w.proc.kill()
        w.proc.wait()
        out = w.execute()
    finally:
        w.close()
    assert out.status == "failed" and "worker exited with code -9" in out.reason


def test_worker_timeout_becomes_failed_row(exported_run, tmp_path):
    cfg, run = _engine_copy(exported_run, tmp_path, corrupt=False)
    # 0.05 s is below the worker's own start-up (interpreter and imports, ~0.25 s); an idle machine prepares this
    # tiny model in ~0.3 s, so a 0.3 s limit raced
    rows = bench_run(run, tmp_path, cfg.bench, runtimes=["onnxruntime-cpu"], batch_sizes=[1], timeout_s=0.05)
    assert [r["status"] for r in rows] == ["failed"] and "timed out" in rows[0]["status_reason"]


def test_in_process_mode_and_bring_your_own_onnx(exported_run, tmp_path):
    cfg, run = exported_run
    onnx_path = run.engine_dir(cfg.root) / "model.fp32.onnx"
    size = cfg.datasets[0].image_size
    bcfg = dataclasses.replace(cfg.bench, fresh_process=False)
    rows = bench_model(onnx_path, input_size=(3, size, size), mean=[0.5] * 3, std=[0.5] * 3, cfg=bcfg,
                       runtimes=["onnxruntime-cpu"], batch_sizes=[2], device="cpu-1t", root=tmp_path)
    assert [(r["status"], r["precision"], r["batch_size"]) for r in rows] == [("ok", "fp32", 2)]
    r = rows[0]
    assert r["top1"] is None and r["device"] == "cpu-1t" and r["device_fingerprint"] == fingerprint("cpu-1t")
    assert r["parity_max_rel_err"] is None and r["top1_delta_vs_torch_fp32"] is None   # no torch reference
    assert r["latency_ms_p50"] > 0 and r["image_size"] == size and list(r) == COLUMNS
