"""Rankings that survive scrutiny: one definition of "the same configuration" (only seeds pooled) in report, select
and Pareto; paired latency ratios from interleaved rounds; run ids from what determines the model; device label per
runtime kind. Rows come from a real ResultStore; latencies from a machine whose speed swings 30 % between rounds."""
from __future__ import annotations

import dataclasses
import json
import re
import zlib

import numpy as np
import pytest

from deploybench.bench.device import kind_fingerprint, kind_name
from deploybench.bench.stats import pool, ratio_ci
from deploybench.config import BackboneConfig, DatasetConfig, TrainConfig
from deploybench.records import COLUMNS, RunSpec
from deploybench.report.aggregate import configs, order_text, paired_ratio, same_config, seed_mean_rows, setup
from deploybench.report.markdown import render_markdown
from deploybench.report.select import select
from deploybench.store import ResultStore

SPEED = (1.0, 1.3, 0.95, 1.25, 1.05)   # machine speed per round: it drifts 30 % between rounds
PRE, SCRATCH = "efficientnet_lite0-fashion-mnist-f1-s0-1a2b3c4d", "efficientnet_lite0-fashion-mnist-f1-s0-5e6f7a8b"
CONFIGS = {"torch": ("best.pt", "pytorch", "fp32", 3.0), "onnxruntime-cpu": ("model.fp32.onnx", "onnx", "fp32", 2.0),
           "onnxruntime-cpu/int8": ("model.int8.onnx", "onnx", "int8", 1.7), "openvino": ("model.fp32.xml", "openvino",
                                                                                           "fp32", 2.6)}


def call_rows(call: str, run_id: str, pretrained: bool, threads: int, runtimes, seed: int = 0, top1: float = 88.0,
              created: str = "2026-11-22T06:00:00+00:00") -> list[dict]:
    """The rows one bench call writes: every configuration measured in SPEED's rounds (round-robin), 40 samples
    per execution, pooled like bench.stage._fill (stats.pool; per-execution medians kept)."""
    rng = np.random.default_rng(zlib.crc32(f"{call} {run_id}".encode()))
    rows = []
    for key in runtimes:
        art, fmt, prec, ms = CONFIGS[key]
        ms *= 1.1 if threads == 3 else 1.0    # 3 threads on 2 cores: a little slower
        execs = [ms * s * (1 + 0.01 * rng.standard_normal(40)) for s in SPEED]
        sm = pool(execs)
        rows.append(dict.fromkeys(COLUMNS) | dict(
            run_id=run_id, backbone="efficientnet_lite0", dataset="fashion-mnist", domain="natural", fraction=1.0,
            seed=seed, pretrained=pretrained, artifact=art, format=fmt, runtime=key.split("/")[0], precision=prec,
            device="AMD EPYC 7B13", device_fingerprint="cpu-a1b2c3d4", batch_size=1, threads=threads,
            top1=top1 - (0.4 if prec == "int8" else 0.0), latency_ms_p50=sm.p50, latency_ms_p50_ci_low=sm.ci_low,
            latency_ms_p50_ci_high=sm.ci_high, latency_cv=sm.cv, latency_executions=len(execs), status="ok",
            size_mb=4.7, bench_call=call, latency_ms_execution_p50s=[float(np.median(e)) for e in execs],
            created_at=created, image_size=56))
    return rows


def scenario_rows() -> list[dict]:
    """Thread counts 2 and 3 of the same rows, a random-init twin of the pretrained run, and rows from a later
    `bench --runtime openvino --threads 1` call."""
    three = ("torch", "onnxruntime-cpu", "onnxruntime-cpu/int8")
    return (call_rows("c1", PRE, True, 2, three) + call_rows("c2", SCRATCH, False, 2, three, top1=72.0)
            + call_rows("c3", PRE, True, 3, three) + call_rows("c4", SCRATCH, False, 3, three, top1=72.0)
            + call_rows("c5", PRE, True, 1, ("openvino",), created="2026-11-22T07:00:00+00:00"))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("rank") / "results.db")
    store.add(scenario_rows())
    return store.rows()


def _ranking_rows(md: str) -> list[str]:
    table = md.split("### Ranking: fashion-mnist (fraction 1)")[1].split("\n\n")[2]
    return table.splitlines()[2:]


def test_report_and_select_keep_configurations_apart(stored):
    assert len(stored) == 13
    md = render_markdown(stored)
    body = _ranking_rows(md)
    assert len(body) == 13                                  # nothing pooled: one seed each
    labels = [line.split(" | ")[1] for line in body]
    assert labels.count("efficientnet_lite0, 2 threads") == 3 and labels.count("efficientnet_lite0, 3 threads") == 3
    assert labels.count("efficientnet_lite0 (scratch), 2 threads") == 3 and "efficientnet_lite0" in labels  # openvino
    assert not re.search(r"\d ± \d", "\n".join(body))       # no std: no two rows were pooled
    sel = select(stored)
    assert len(sel.candidates) == 13
    assert len({same_config(c) for c in sel.candidates}) == 13
    text = sel.render()
    assert "efficientnet_lite0 (scratch), 3 threads" in text and "efficientnet_lite0, 2 threads" in text
    # the report's picks come from the same groups: scratch and pretrained never averaged
    means = seed_mean_rows(stored)
    assert sorted(round(m["top1"], 1) for m in means if m["runtime"] == "torch") == [72.0, 72.0, 88.0, 88.0]


def test_seeds_and_only_seeds_are_pooled(stored):
    other_seed = [r | dict(run_id=r["run_id"].replace("-s0-", "-s1-"), seed=1, top1=r["top1"] + 1.0, bench_call="c9")
                  for r in stored]
    cs = configs(stored + other_seed)
    assert len(cs) == 13 and all(c["seeds"] == [0, 1] for c in cs)
    assert setup(other_seed[0]) == setup(stored[0]) == "efficientnet_lite0-fashion-mnist-f1-" + stored[0][
        "run_id"].rsplit("-", 1)[1]
    # any other difference keeps rows apart: image size, accuracy images, recipe
    for field, value in (("image_size", 224), ("accuracy_images", 500), ("recipe", "u8s8-qdq")):
        assert len(configs(stored + [r | {field: value, "seed": 1} for r in other_seed])) == 26, field


def test_drift_absolute_cis_overlap_but_the_paired_ratio_is_resolved(stored):
    fp32, int8 = (next(c for c in configs(stored) if c["threads"] == 2 and c["pretrained"] and c["precision"] == p
                       and c["runtime"] == "onnxruntime-cpu") for p in ("fp32", "int8"))
    assert int8["latency_ms_p50_ci_high"] > fp32["latency_ms_p50_ci_low"]          # absolute CIs overlap
    r = paired_ratio(int8, fp32)
    assert r.rounds == 5 and r.resolved and r.low > 1.1 and r.high < 1.25 and r.ratio == pytest.approx(2 / 1.7, 0.02)
    assert r.high / r.low < fp32["latency_ms_p50_ci_high"] / fp32["latency_ms_p50_ci_low"]   # narrower
    # across bench calls there is nothing to pair: 2 vs 3 threads of the same artifact
    t3 = next(c for c in configs(stored) if c["threads"] == 3 and c["pretrained"] and c["precision"] == "int8")
    assert paired_ratio(int8, t3) is None
    md = render_markdown(stored)
    row = next(line for line in _ranking_rows(md) if "2 threads" in line and "model.fp32.onnx" in line
               and "(scratch)" not in line)
    assert re.search(r"same call: #\d+ 1\.1\d× faster \[1\.\d\d, 1\.\d\d\] \|", row), row
    assert "faster (other bench call: by p50 only, CIs overlap)" in md
    assert re.search(r"fashion-mnist: fastest \(not resolved vs efficientnet_lite0( \(scratch\))? onnxruntime-cpu int8 "
                     r"\(\d threads\): faster \(other bench call", md)
    assert re.search(r"Pareto front, fastest first: #\d+ → #\d+ \(#\d+ [^)]*\)", md)
    text = select(stored).render()
    assert re.search(r"note: #\d vs #\d: p50 ordering not resolved \(#\d faster \(other bench call: by p50 only",
                     text), text


def test_ratio_ci_estimator():
    r = ratio_ci([1.0, 2.0, 1.0, 2.0], [1.1, 2.2, 1.1, 2.2])
    assert r.ratio == pytest.approx(1.1) and r.low == pytest.approx(1.1) and r.high == pytest.approx(1.1)
    r = ratio_ci([1.0, 1.0, 1.0], [1.0, 1.2, 0.9])
    logs = np.log([1.0, 1.2, 0.9])
    half = 4.303 * logs.std(ddof=1) / np.sqrt(3)
    assert (r.low, r.high) == pytest.approx((np.exp(logs.mean() - half), np.exp(logs.mean() + half)))
    assert not r.resolved and ratio_ci([1.0], [2.0]).low is None and not ratio_ci([1.0], [2.0]).resolved
    # the row with the lower pooled p50 can still be the slower one round by round: say so
    a = {"bench_call": "c", "latency_ms_execution_p50s": "[1.1, 1.2, 1.0]", "batch_size": 1}
    b = {"bench_call": "c", "latency_ms_execution_p50s": "[1.0, 1.1, 1.05]", "batch_size": 1}
    assert order_text(a, b, "#1") == "#1 1.05× slower [0.86, 1.28], not resolved"
    assert order_text(b, a, "#2") == "#2 1.05× faster [0.86, 1.28], not resolved"
    assert paired_ratio(a, b | {"batch_size": 16}) is None and paired_ratio(a, b | {"bench_call": "d"}) is None


def _run(**over) -> RunSpec:
    ds = DatasetConfig(name="fmnist", kind="fashion-mnist", path="/data/a", image_size=56, max_train=500,
                       max_test=200)
    fields = dict(backbone=BackboneConfig("resnet18"), dataset=ds, fraction=1.0, seed=0, train=TrainConfig())
    return RunSpec(**(fields | over))


def test_run_id_from_what_determines_the_model():
    base = _run()
    ds, tc = base.dataset, base.train
    same = [_run(dataset=dataclasses.replace(ds, path="/elsewhere/b")),
            _run(dataset=dataclasses.replace(ds, max_test=None)), _run(dataset=dataclasses.replace(ds, domain="x")),
            _run(train=dataclasses.replace(tc, num_workers=8))]
    assert {r.run_id for r in same} == {base.run_id}
    changed = [_run(train=dataclasses.replace(tc, lr=3e-4)), _run(fraction=0.5),
               _run(dataset=dataclasses.replace(ds, max_train=600)),
               _run(dataset=dataclasses.replace(ds, image_size=64)), _run(backbone=BackboneConfig("resnet18", "none"))]
    assert len({r.run_id for r in changed} | {base.run_id}) == 6
    assert base.run_id.startswith("resnet18-fmnist-f1-s0-")
    seed1 = _run(seed=1)
    assert seed1.run_id == base.run_id.replace("-s0-", "-s1-")           # seeds share the setup hash
    assert setup({"run_id": seed1.run_id, "seed": 1}) == setup({"run_id": base.run_id, "seed": 0})


def test_run_id_compatibility_lookup(tmp_path):
    run = _run()
    assert run.ckpt_dir(tmp_path).name == run.run_id
    (tmp_path / "checkpoints" / run.legacy_run_id).mkdir(parents=True)    # a workdir of an older version
    (tmp_path / "checkpoints" / run.legacy_run_id / "meta.json").write_text("{}")
    assert run.legacy_run_id != run.run_id
    assert run.ckpt_dir(tmp_path).name == run.engine_dir(tmp_path).name == run.legacy_run_id
    (tmp_path / "checkpoints" / run.run_id).mkdir()                      # a log-only folder does not hide it
    assert run.ckpt_dir(tmp_path).name == run.legacy_run_id
    (tmp_path / "checkpoints" / run.run_id / "meta.json").write_text("{}")
    assert run.ckpt_dir(tmp_path).name == run.run_id


def test_legacy_run_id_is_the_0_1_hash():
    """The id 0.1 gave the quickstart's lite0 run (its checkpoints/ folder name), from 0.1's config fields."""
    import dataclasses

    from deploybench.config import load_config
    from deploybench.sweep.plan import plan

    cfg = load_config("configs/quickstart.yaml")
    cfg.datasets[0] = dataclasses.replace(cfg.datasets[0], max_test=1000)     # 0.1's quickstart: 1,000 test images
    cfg.train = dataclasses.replace(cfg.train, lr=0.001)                       # and AdamW at 1e-3
    assert plan(cfg)[0].legacy_run_id == \
        "efficientnet_lite0-fashion-mnist-f1-s0-b6927a52"


def test_device_label_per_runtime_kind():
    gpu_box = {"cpu": "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.0GHz", "isa": ["avx512f"], "machine": "x86_64",
               "gpu": "NVIDIA H100 80GB HBM3", "driver": "560.35"}
    cpu_box = {k: v for k, v in gpu_box.items() if k not in ("gpu", "driver")}
    assert kind_name(gpu_box, "gpu") == "NVIDIA H100 80GB HBM3"
    assert kind_name(gpu_box, "cpu") == kind_name(cpu_box, "gpu") == "Intel Xeon Platinum 8480+"
    fps = {kind_fingerprint(gpu_box, kind_name(gpu_box, k), k) for k in ("cpu", "gpu")}
    assert len(fps) == 2
    # CPU rows of the GPU box and of the same CPU without a GPU: same fingerprint (same processor computed)
    assert kind_fingerprint(gpu_box, "x", "cpu") == kind_fingerprint(cpu_box, "x", "cpu") == \
        kind_fingerprint(cpu_box, "x", "gpu")
    assert kind_fingerprint(gpu_box, "x", "gpu") != kind_fingerprint(gpu_box | {"driver": "570"}, "x", "gpu")


def test_real_bench_rows_pair_and_label(tmp_path, exported_run):
    """The bench stage stores one call id per call, each execution's p50 in round order, and the CPU's name on
    CPU-runtime rows."""
    from deploybench.bench import bench_run
    from deploybench.bench.device import device_name, fingerprint

    cfg, run = exported_run
    lat = dataclasses.replace(cfg.bench.latency, executions=3, min_duration_s=0.05, max_duration_s=0.3)
    bcfg = dataclasses.replace(cfg.bench, fresh_process=False, latency=lat)
    rows = [r for r in bench_run(run, cfg.root, bcfg, runtimes=["onnxruntime-cpu"], batch_sizes=[1])
            if r["status"] == "ok"]
    assert len(rows) >= 2 and len({r["bench_call"] for r in rows}) == 1
    for r in rows:
        assert len(r["latency_ms_execution_p50s"]) == 3 and r["latency_executions"] == 3
        assert min(r["latency_ms_execution_p50s"]) <= r["latency_ms_p50"] <= max(r["latency_ms_execution_p50s"])
        assert (r["device"], r["device_fingerprint"]) == (device_name(kind="cpu"), fingerprint(kind="cpu"))
    store = ResultStore(tmp_path / "results.db")
    store.add(rows)
    back = store.rows()
    assert json.loads(back[0]["latency_ms_execution_p50s"]) == next(
        r for r in rows if r["artifact"] == back[0]["artifact"])["latency_ms_execution_p50s"]
    r = paired_ratio(back[0], back[1])
    assert r is not None and r.rounds == 3
    again = bench_run(run, cfg.root, bcfg, runtimes=["onnxruntime-cpu"], batch_sizes=[1], existing=store.keys())
    assert again == []                                    # resume by configuration key
