"""The CLI end to end, as a user runs it: real data, real model, real runtimes, one-line errors."""
import csv
import json
import sqlite3
import subprocess
import sys

import pytest
import yaml

from conftest import tiny_config_dict


def db(*args, cwd=None, check=True):
    p = subprocess.run([sys.executable, "-m", "deploybench", *args], capture_output=True, text=True, cwd=cwd,
                       timeout=900)
    if check and p.returncode != 0:
        raise AssertionError(f"deploybench {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, fmnist_available):
    wd = tmp_path_factory.mktemp("cli")
    cfg = tiny_config_dict(wd, name="cli-tiny")
    cfg["train"]["epochs"] = 1
    cfg["export"]["precisions"] = ["fp32", "int8"]
    cfg["export"]["formats"] = ["onnx", "tensorrt"]
    cfg["bench"]["batch_sizes"] = [1]
    cfg["bench"]["runtimes"] = ["torch", "onnxruntime-cpu", "tensorrt"]
    cfg["report"] = {"constraints": [{"name": "anything", "max_latency_ms": 1000}]}
    (wd / "c.yaml").write_text(yaml.safe_dump(cfg))
    for stage in ("finetune", "export", "bench", "report"):
        db(stage, "-c", str(wd / "c.yaml"), *(["--executions", "1"] if stage == "bench" else []))
    return wd


def test_stages_write_the_contract_files(workdir):
    (run_dir,) = (workdir / "checkpoints").iterdir()
    assert {"best.pt", "last.pt", "meta.json", "metrics.jsonl"} <= {p.name for p in run_dir.iterdir()}
    engines = workdir / "engines" / run_dir.name
    assert (engines / "model.fp32.onnx").exists() and (engines / "model.int8.u8s8.onnx").exists()
    export = json.loads((engines / "export.json").read_text())
    trt = [a for a in export["artifacts"] if a["format"] == "tensorrt"]
    assert trt and all(a["status"] == "skipped" and a["reason"] for a in trt)  # no GPU here: said, not faked
    for name in ("results.db", "results.csv", "report.md", "report.html"):
        assert (workdir / "reports" / name).stat().st_size > 0, name


def test_results_have_rows_for_both_runtimes(workdir):
    with open(workdir / "reports" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    ok = [r for r in rows if r["status"] == "ok"]
    assert {r["runtime"] for r in ok} >= {"torch", "onnxruntime-cpu"}
    assert {r["precision"] for r in ok if r["runtime"] == "onnxruntime-cpu"} == {"fp32", "int8"}
    for r in ok:  # 10 classes: chance is 10 %; one epoch at 32 px, so int8 may lose a few points
        assert float(r["top1"]) > (25 if r["precision"] == "fp32" else 20), r
        assert 0 < float(r["latency_ms_p50"]) <= float(r["latency_ms_p99"])
        assert r["latency_executions"] == "1"                 # --executions 1 overrides the config's 2
    skipped = [r for r in rows if r["runtime"] == "tensorrt"]
    assert skipped and all(r["status"] == "skipped" and r["status_reason"] for r in skipped)
    assert all(r["top1"] == "" and r["latency_ms_p50"] == "" for r in skipped)  # never invented


def test_rerun_is_idempotent(workdir):
    before = sqlite3.connect(workdir / "reports" / "results.db").execute("select count(*) from results").fetchone()
    out = db("finetune", "-c", str(workdir / "c.yaml")).stdout
    assert "skipped" in out
    db("bench", "-c", str(workdir / "c.yaml"))
    after = sqlite3.connect(workdir / "reports" / "results.db").execute("select count(*) from results").fetchone()
    assert before == after


def test_select_and_merge(workdir):
    out = json.loads(db("select", "--workdir", str(workdir), "--max-latency-ms", "1000", "--json").stdout)
    assert out["candidates"]
    nothing = db("select", "--workdir", str(workdir), "--max-latency-ms", "0.000001", check=False)
    assert nothing.returncode != 0
    before = sqlite3.connect(workdir / "reports" / "results.db").execute("select count(*) from results").fetchone()
    db("merge", "--workdir", str(workdir), str(workdir / "reports" / "results.db"))
    after = sqlite3.connect(workdir / "reports" / "results.db").execute("select count(*) from results").fetchone()
    assert before == after


@pytest.mark.parametrize("edit, needle", [
    (lambda c: c["backbones"].__setitem__(0, {"name": "efficientnet_lite9"}), "efficientnet_lite"),
    (lambda c: c["datasets"].__setitem__(0, {"name": "x", "kind": "imagefolder", "path": "/nonexistent/ds"}),
     "/nonexistent/ds"),
])
def test_bad_input_is_one_clear_line(tmp_path, edit, needle):
    cfg = tiny_config_dict(tmp_path)
    edit(cfg)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    p = db("finetune", "-c", str(tmp_path / "c.yaml"), check=False)
    assert p.returncode != 0
    assert needle in p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_bench_executions_must_be_positive():
    p = db("bench", "--executions", "0", check=False)
    assert p.returncode == 2 and "--executions" in p.stderr and "Traceback" not in p.stderr


def test_unknown_config_key_is_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("name: x\ndatasets: []\nbackbones: []\ntrian: {}\n")
    p = db("finetune", "-c", str(tmp_path / "c.yaml"), check=False)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "unknown key 'trian'" in p.stderr


def test_backbones_and_doctor():
    reg = json.loads(db("backbones", "--json").stdout)
    names = {b["name"] for b in reg}
    assert {"resnet50", "wavemix", "shufflenetv2_x2_0", "efficientnet_lite0"} <= names
    doc = json.loads(db("doctor", "--json").stdout)
    assert doc["runtimes"]["onnxruntime-cpu"]["available"] is True
    assert doc["runtimes"]["tensorrt"]["available"] is False and doc["runtimes"]["tensorrt"]["reason"]
