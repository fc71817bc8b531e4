"""The registry, proven by torch-aoti (one file, one registration): export builds model.fp32.pt2 with parity, bench
runs it with torch's top-1, doctor lists it."""
from __future__ import annotations

import shutil

import pytest

from deploybench.bench import bench_run
from deploybench.doctor import collect
from deploybench.export import export_run
from deploybench.runtimes import EXPORT_FORMATS, FORMATS, get_format, get_runner
from deploybench.workdir import Workdir


def test_registry_owns_the_facts(tmp_path):
    assert set(EXPORT_FORMATS) == {"onnx", "openvino", "tensorrt", "pt2"} and "pytorch" in FORMATS
    xml = tmp_path / "model.fp32.xml"
    assert get_format("openvino").files(xml) == [xml, tmp_path / "model.fp32.bin"]
    xml.write_bytes(b"x" * 2**19)
    assert get_format("openvino").size_mb(xml) is None                 # the .bin is missing
    (tmp_path / "model.fp32.bin").write_bytes(b"x" * 2**19)
    assert get_format("openvino").size_mb(xml) == 1.0
    assert {FORMATS[f].parity_runtime for f in ("onnx", "pt2")} == {"onnxruntime-cpu", "torch-aoti"}
    assert get_runner("tensorrt").device_kind == "cuda" and get_runner("torch-aoti").device_kind == "cpu"
    assert get_runner("tensorrt").bench_options == ("cuda_graphs",) and not get_runner("openvino").bench_options
    assert collect()["runtimes"]["torch-aoti"]["available"]


@pytest.fixture(scope="module")
def aoti_run(exported_run, tmp_path_factory):
    """A copy of the exported run's workdir with model.fp32.pt2 exported into it (compile: ~1 min)."""
    cfg, run = exported_run
    root = tmp_path_factory.mktemp("aoti")
    shutil.copytree(run.ckpt_dir(cfg.root), run.ckpt_dir(root))
    shutil.copytree(run.engine_dir(cfg.root), run.engine_dir(root))
    res = export_run(run, root, cfg.export, formats=["pt2"], precisions=["fp32"], max_batch=8)
    assert res.status == "done", res.reason
    return cfg, run, root


def test_export_pt2_with_parity(aoti_run):
    cfg, run, root = aoti_run
    entry = {a["file"]: a for a in Workdir(root).manifest(run.run_id)["artifacts"]}["model.fp32.pt2"]
    assert entry["status"] == "ok" and entry["format"] == "pt2" and entry["precision"] == "fp32", entry
    assert entry["size_mb"] > 0 and (run.engine_dir(root) / "model.fp32.pt2").is_file()
    assert entry["parity"]["runtime"] == "torch-aoti" and entry["parity"]["max_rel_err"] < 1e-3
    assert entry["parity"]["top1_agree"] == 1.0
    again = export_run(run, root, cfg.export, formats=["pt2"], precisions=["fp32"], max_batch=8)
    assert again.status == "skipped"                                  # idempotent: the package is kept


def test_bench_pt2_same_top1_as_torch(aoti_run):
    cfg, run, root = aoti_run
    rows = bench_run(run, root, cfg.bench, runtimes=["torch", "torch-aoti"], batch_sizes=[1, 8])
    assert all(r["status"] == "ok" for r in rows), [r["status_reason"] for r in rows]
    aoti = [r for r in rows if r["runtime"] == "torch-aoti"]
    torch_top1 = {r["top1"] for r in rows if r["runtime"] == "torch"}
    assert sorted(r["batch_size"] for r in aoti) == [1, 8]                # batch 1 runs on the min-2 export
    for r in aoti:
        assert {r["top1"]} == torch_top1 and r["top1_delta_vs_torch_fp32"] == 0
        assert r["artifact"] == "model.fp32.pt2" and r["format"] == "pt2" and r["compute_precision"] == "fp32"
        assert r["parity_max_rel_err"] < 1e-3 and r["size_mb"] > 0 and r["latency_ms_p50"] > 0
