"""Report stage: pareto, aggregation/tiers, constraint selection, markdown/html/plots on realistic synthetic rows
(two devices, four backbones, three runtimes, three precisions, two batches, three seeds, two fractions, two
domains, plus skipped/failed rows), and end to end on real bench rows when the bench stage is present."""
from __future__ import annotations

import dataclasses
import json
import random
import re

import pytest

from deploybench.records import COLUMNS
from deploybench.report import write_report
from deploybench.report.aggregate import aggregate, configs, flags, ranked, tiers
from deploybench.report.pareto import pareto_indices, pareto_rows
from deploybench.report.select import select
from deploybench.store import ResultStore

BACKBONES = {"efficientnet_lite0": (2.0, 4.7, True, 0.0), "efficientnet_lite1": (3.1, 5.4, True, 1.1),
             "efficientnet_lite2": (4.6, 6.1, True, 1.9), "mobilenetv3_small": (0.9, 6.0, False, -9.0)}
DATASETS = {"fashion-mnist": ("natural", 90.0), "chest-xray": ("medical", 84.0)}
DEVICES = {"cpu-a1b2c3d4": ("AMD EPYC 7B13 (2 threads)", 1.0), "cpu-e5f6a7b8": ("Intel Xeon 8480+ (4 threads)", 0.6)}
ARTIFACTS = [("torch", "pytorch", "fp32", "best.pt", 1.6, 0.0), ("onnxruntime-cpu", "onnx", "fp32", "model.fp32.onnx", 1.0, 0.0),
             ("onnxruntime-cpu", "onnx", "fp16", "model.fp16.onnx", 1.3, -0.05),
             ("onnxruntime-cpu", "onnx", "int8", "model.int8.onnx", 0.55, -0.6),
             ("openvino", "openvino", "fp32", "model.fp32.xml", 0.85, 0.0),
             ("openvino", "openvino", "int8", "model.int8.xml", 0.5, -0.7)]


def synthetic_rows(seeds=(0, 1, 2), fractions=(0.25, 1.0), devices=DEVICES) -> list[dict]:
    """Plausible result rows: accuracy/latency follow backbone size, runtime, precision, device and data fraction."""
    rng = random.Random(0)
    rows = []
    for ds, (domain, base_acc) in DATASETS.items():
        for bb, (ms, mb, pretrained, acc_off) in BACKBONES.items():
            for fr in fractions:
                for seed in seeds:
                    run_id = f"{bb}-{ds}-f{fr:g}-s{seed}-0a1b2c3d"
                    ref = base_acc + acc_off - (1 - fr) * 8 + rng.gauss(0, 0.4)
                    for fp, (dev, speed) in devices.items():
                        for rt, fmt, prec, art, mult, drop in ARTIFACTS:
                            d = drop * (2.6 if bb == "efficientnet_lite2" and prec == "int8" else 1.0)
                            top1 = ref + d + rng.gauss(0, 0.05) * (prec != "fp32")
                            size = mb * {"fp32": 1, "fp16": 0.5, "int8": 0.27}[prec]
                            for bs in (1, 16):
                                p50 = ms * mult * speed * (1 if bs == 1 else bs * 0.45) * rng.uniform(0.97, 1.03)
                                cv = 0.31 if (bb, rt, bs, fp) == ("efficientnet_lite1", "openvino", 1, "cpu-a1b2c3d4") \
                                    else rng.uniform(0.01, 0.06)
                                row = dict.fromkeys(COLUMNS)
                                row.update(
                                    run_id=run_id, backbone=bb, dataset=ds, domain=domain, fraction=fr, seed=seed,
                                    pretrained=pretrained, artifact=art, format=fmt, runtime=rt, precision=prec,
                                    device=dev, device_fingerprint=fp, batch_size=bs, threads=2, top1=top1,
                                    top5=min(100.0, top1 + 8), top1_delta_vs_torch_fp32=top1 - ref,
                                    parity_max_rel_err=None if rt == "torch" else {"fp32": 1e-6, "fp16": 1e-3, "int8": 0.08}[prec],
                                    parity_top1_agree=None if rt == "torch" else (0.97 if d < -1 else 1.0),
                                    latency_ms_mean=p50 * 1.02, latency_ms_p50=p50, latency_ms_p90=p50 * 1.1,
                                    latency_ms_p95=p50 * 1.15, latency_ms_p99=p50 * (1.25 + cv),
                                    latency_ms_p50_ci_low=p50 * 0.99, latency_ms_p50_ci_high=p50 * 1.01, latency_cv=cv,
                                    throughput_ips=1000 * bs / p50, peak_host_mem_mb=180 + 12 * mb + 3 * bs,
                                    size_mb=size, params_m=mb / 4, gmacs=ms / 10, status="ok", noisy=cv > 0.15,
                                    created_at="2026-11-21T10:00:00+00:00", versions={"onnxruntime": "1.31.0"},
                                    scenario="single-stream" if bs == 1 else "offline", config_name="synthetic")
                                rows.append(row)
                        for rt, reason in (("onnxruntime-cuda", "no CUDA device"), ("tensorrt", "tensorrt not installed")):
                            rows.append(dict.fromkeys(COLUMNS) | dict(
                                run_id=run_id, backbone=bb, dataset=ds, domain=domain, fraction=fr, seed=seed,
                                pretrained=pretrained, artifact="model.fp16.onnx", format="onnx", runtime=rt,
                                precision="fp16", device=dev, device_fingerprint=fp, batch_size=1, threads=2,
                                status="skipped", status_reason=reason))
    rows.append(dict.fromkeys(COLUMNS) | dict(
        run_id="efficientnet_lite2-fashion-mnist-f1-s0-0a1b2c3d", backbone="efficientnet_lite2",
        dataset="fashion-mnist", domain="natural", fraction=1.0, seed=0, pretrained=True, artifact="model.fp16.xml",
        format="openvino", runtime="openvino", precision="fp16", device="AMD EPYC 7B13 (2 threads)",
        device_fingerprint="cpu-a1b2c3d4", batch_size=1, threads=2, status="failed",
        status_reason="RuntimeError: compile_model failed: unsupported layer"))
    return rows


@pytest.fixture(scope="module")
def rows():
    return synthetic_rows()


def test_pareto_known_points():
    pts = [(90, 10), (85, 5), (80, 5), (92, 20), (88, 12), (92, 20), (None, 1), (70, 1)]
    assert pareto_indices(pts) == [0, 1, 3, 5, 7]
    assert pareto_indices([(1, 1), (2, 2), (3, 3)], maximize=(True, True)) == [2]
    assert pareto_indices([(1, 3), (2, 2), (3, 1), (3, 3)], maximize=(False, False)) == [0, 1, 2]
    front = pareto_rows([{"top1": a, "latency_ms_p50": b} for a, b in pts])
    assert [(r["top1"], r["latency_ms_p50"]) for r in front] == [(70, 1), (85, 5), (90, 10), (92, 20), (92, 20)]


def test_aggregate_over_seeds(rows):
    groups = aggregate(rows)
    g = next(g for g in groups if (g["backbone"], g["runtime"], g["precision"], g["batch_size"], g["dataset"],
                                   g["fraction"], g["device_fingerprint"]) ==
             ("efficientnet_lite0", "torch", "fp32", 1, "fashion-mnist", 1.0, "cpu-a1b2c3d4"))
    mine = [r["top1"] for r in rows if r["status"] == "ok" and r["backbone"] == "efficientnet_lite0"
            and r["runtime"] == "torch" and r["batch_size"] == 1 and r["dataset"] == "fashion-mnist"
            and r["fraction"] == 1.0 and r["device_fingerprint"] == "cpu-a1b2c3d4"]
    assert g["seeds"] == [0, 1, 2] and g["n"] == 3
    assert g["top1_mean"] == pytest.approx(sum(mine) / 3) and g["top1_best"] == max(mine)
    assert g["top1_std"] > 0
    cs = configs(rows)
    assert all(c["latency_batch"] == 1 and c["throughput_batch"] == 16 for c in cs)
    assert len(groups) == 2 * len(cs)


def test_tiers(rows):
    t = tiers(rows)
    assert list(t) == ["medical", "natural", "overall"]
    for dom in t:
        assert [x["tier"] for x in t[dom]][:3] == ["Best", "Better", "Good"]
        assert t[dom][0]["backbone"] == "efficientnet_lite2"
        assert t[dom][-1]["backbone"] == "mobilenetv3_small (scratch)" and t[dom][-1]["tier"] == ""
    assert t["overall"][0]["datasets"] == 2


def test_ranked_never_mixes_devices(rows):
    tables = ranked(rows)
    assert len(tables) == 2 * 2 * 2   # devices x datasets x fractions
    for t in tables:
        assert {c["device_fingerprint"] for c in t["configs"]} == {t["device_fingerprint"]}
        stars = [c for c in t["configs"] if c["pareto"]]
        assert stars and all(not (o["top1_mean"] >= s["top1_mean"] and o["latency_ms_p50"] < s["latency_ms_p50"])
                             for s in stars for o in t["configs"])
        top1 = [c["top1_mean"] for c in t["configs"]]
        assert top1 == sorted(top1, reverse=True)


def test_select_reasons_and_ranking(rows):
    sel = select(rows, max_latency_ms=2.0, min_top1=85, device="cpu-e5f6a7b8", dataset="fashion-mnist")
    assert sel.candidates
    for c in sel.candidates:
        assert c["batch_size"] == 1 and c["latency_ms_p50"] <= 2.0 and c["top1"] >= 85
        assert c["device_fingerprint"] == "cpu-e5f6a7b8" and c["throughput_batch"] == 16
    keys = [(-c["top1"], c["latency_ms_p50"]) for c in sel.candidates]
    assert keys == sorted(keys)
    reasons = [r for e in sel.excluded for r in e["reasons"]]
    assert any(re.fullmatch(r"p50 [\d.]+ ms > 2 ms", r) for r in reasons)
    assert any(re.fullmatch(r"top-1 [\d.]+ % < 85 %", r) for r in reasons)
    assert "skipped: no CUDA device" in reasons
    assert any(r.startswith("failed: RuntimeError") for r in reasons)
    assert any(r == "dataset chest-xray != fashion-mnist" for r in reasons)
    assert any(r.startswith("device AMD EPYC") for r in reasons)
    ok = sum(r["status"] == "ok" for r in rows)
    assert len(sel.candidates) + len(sel.excluded) + sel.throughput_rows == len(rows) and ok > 0
    text = sel.render()
    assert "p50 ms" in text and sel.candidates[0]["backbone"] in text.splitlines()[2]
    d = json.loads(sel.to_json())
    assert d["candidates"][0]["top1"] == sel.best["top1"] and d["excluded"][0]["reasons"]


def test_select_nothing_fits(rows):
    sel = select(rows, max_latency_ms=0.01, max_size_mb=0.5, max_mem_mb=10)
    assert sel.candidates == [] and sel.best is None
    assert "nothing fits" in sel.render()
    e = next(e for e in sel.excluded if e["row"]["status"] == "ok")
    assert len(e["reasons"]) == 3 and e["reasons"][2].startswith("peak mem ")


def test_select_needs_single_stream_for_latency():
    r = dict.fromkeys(COLUMNS) | dict(run_id="x", backbone="b", runtime="torch", precision="fp32", batch_size=8,
                                       top1=80.0, latency_ms_p50=1.0, status="ok")
    assert select([r]).candidates
    sel = select([r], max_latency_ms=5)
    assert sel.excluded[0]["reasons"] == ["no single-stream (batch 1) latency, smallest batch is 8"]


def test_select_notes_a_fit_its_ci_does_not_resolve():
    base = dict.fromkeys(COLUMNS) | dict(run_id="x", backbone="b", runtime="onnxruntime-cpu", precision="fp32",
                                          batch_size=1, top1=80.0, status="ok")
    sure = base | dict(artifact="a", latency_ms_p50=1.0, latency_ms_p50_ci_low=0.95, latency_ms_p50_ci_high=1.05)
    unsure = base | dict(artifact="b", top1=81.0, latency_ms_p50=1.4, latency_ms_p50_ci_low=1.1,
                         latency_ms_p50_ci_high=1.8)
    text = select([sure, unsure], max_latency_ms=1.5).render()
    assert "p50 CI" in text and "1.1-1.8" in text
    assert text.count("note:") == 1 and "note: #1 fits on its p50, but its 95 % CI reaches 1.8 ms > 1.5 ms" in text


def test_write_report_from_store(tmp_path, rows):
    from deploybench.config import ConstraintConfig, from_dict

    store = ResultStore(tmp_path / "results.db")
    store.add(rows)
    cfg = from_dict({"name": "synthetic-study", "datasets": [{"name": "fashion-mnist", "kind": "fashion-mnist"}],
                     "backbones": ["efficientnet_lite0"]})
    cfg.report.constraints = [ConstraintConfig(name="edge box", max_latency_ms=1.5, max_size_mb=3)]
    paths = write_report(store, tmp_path / "reports", cfg)
    md = paths["markdown"].read_text()
    assert md.startswith("# deploybench report: synthetic-study")
    for section in ("## Device: AMD EPYC 7B13 (2 threads)", "## Device: Intel Xeon 8480+ (4 threads)",
                    "### Flagged", "### Skipped and failed", "## Accuracy delta per precision",
                    "## Best / Better / Good", "## Top-1 vs data fraction", "## Best choice under constraints",
                    "## Devices side by side", "edge box"):
        assert section in md, section
    assert "| # | backbone | pretrained | runtime |" in md
    assert "| p50 ms | p50 95 % CI | next faster (p50 ratio, 95 % CI) | p99 ms |" in md
    assert re.search(r"\| [\d.]+ \| [\d.]+–[\d.]+ \| #\d+ faster \(other bench call[^|]+ \| [\d.]+ \|", md)  # p50 CI p99
    assert "| dataset | fraction | backbone | runtime | artifact | precision |" in md   # side by side keys on artifact
    assert md.count("★") >= 8 and "no CUDA device" in md and "unsupported layer" in md
    assert re.search(r"top-1 -1\.\d\d pt vs torch fp32", md) and "noisy latency (CV 0.31)" in md
    assert re.search(r"\| \d\d\.\d\d ± \d\.\d\d \|", md)
    html = paths["html"].read_text()
    assert "<script src=" not in html and not re.search(r"<script[^>]+src=[\"']?https?:", html)
    assert "Plotly" in html and "synthetic-study" in html and "data-errors" in html
    assert len(html) > 3_000_000 or "plotly.js" in html.lower()
    plots = {p.name for p in (tmp_path / "reports" / "plots").glob("*.png")}
    assert {"accuracy_vs_latency.png", "accuracy_vs_size.png", "throughput_vs_batch.png",
            "top1_vs_fraction.png"} <= plots
    for p in (tmp_path / "reports" / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_write_report_single_fraction_and_empty(tmp_path):
    one = synthetic_rows(seeds=(0,), fractions=(1.0,), devices={"cpu-a1b2c3d4": DEVICES["cpu-a1b2c3d4"]})
    paths = write_report(one, tmp_path / "one", None)
    md = paths["markdown"].read_text()
    assert "## Top-1 vs data fraction" not in md and "## Devices side by side" not in md
    assert not (tmp_path / "one" / "plots" / "top1_vs_fraction.png").exists()
    empty = write_report([], tmp_path / "empty", None)
    assert "no results" in empty["markdown"].read_text()
    assert empty["html"].exists()


def test_write_report_tolerates_missing_metrics(tmp_path):
    """ok rows without accuracy (bring-your-own ONNX without data) or without any measurement still report."""
    rows = [dict.fromkeys(COLUMNS) | dict(run_id=f"byo-{fr}", backbone="model.onnx", dataset="random", fraction=fr,
                                          runtime="onnxruntime-cpu", precision="fp32", batch_size=bs, status="ok",
                                          latency_ms_p50=3.0 * bs if fr == 1.0 else None, throughput_ips=300.0)
            for fr in (0.5, 1.0) for bs in (1, 4)]
    rows.append(dict.fromkeys(COLUMNS) | dict(run_id="bad", status="failed", status_reason="boom"))
    paths = write_report(rows, tmp_path, None)
    md = paths["markdown"].read_text()
    assert "| 1 | model.onnx |" in md and "boom" in md and "## Top-1 vs data fraction" not in md
    assert "plot:top1_vs_fraction" not in paths and paths["plot:throughput_vs_batch"].exists()
    assert [e["reasons"] for e in select(rows, max_latency_ms=1).excluded] == [
        ["p50 not measured"], ["p50 3 ms > 1 ms"], ["failed: boom"]]


def test_report_on_real_bench_rows(tmp_path, exported_run):
    bench = pytest.importorskip("deploybench.bench", reason="bench stage not present yet")
    cfg, run = exported_run
    rows = bench.bench_run(run, cfg.root, dataclasses.replace(cfg.bench, fresh_process=False))   # in-process: fast
    assert {r["status"] for r in rows} <= {"ok", "skipped", "failed"} and any(r["status"] == "ok" for r in rows)
    store = ResultStore(tmp_path / "results.db")
    store.add(rows)
    assert len(store.rows()) == len(rows)
    paths = write_report(store, tmp_path / "reports", cfg)
    md = paths["markdown"].read_text()
    assert "★" in md and rows[0]["backbone"] in md and "| onnxruntime-cpu | model.int8.u8s8.onnx | int8 |" in md
    assert "<script src=" not in paths["html"].read_text()
    assert paths["plot:accuracy_vs_latency"].stat().st_size > 10_000
    sel = select(store.rows(), max_latency_ms=1e6)
    assert sel.candidates and all(c["batch_size"] == 1 for c in sel.candidates)


def test_flags_name_each_reason():
    base = {"latency_ms_p50": 10.0, "latency_ms_p50_ci_low": 9.5, "latency_ms_p50_ci_high": 10.5, "latency_cv": 0.05}
    assert flags(base) == []
    wide = flags(base | {"latency_ms_p50_ci_high": 12.0})
    assert wide == ["p50 uncertain (95 % CI 9.5-12 ms)"]
    many = flags(base | {"top1_delta": -3.0, "latency_cv": 0.3, "parity_top1_agree": 0.9})
    assert many == ["top-1 -3.00 pt vs torch fp32", "noisy latency (CV 0.30)", "parity: top-1 agrees on 90.0% of images"]
