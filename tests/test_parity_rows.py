"""Per-row parity, delta vs the run's torch fp32 reference, accuracy_images, precision and compute_precision: each
measured through the row's own runtime and artifact, never copied from another row or from export.json."""
from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from deploybench.bench import bench_model, bench_run, reference
from deploybench.bench.accuracy import evaluate, parity_stats
from deploybench.errors import DeployBenchError
from deploybench.records import ACC_DROP_PT, Artifact
from deploybench.runtimes import get_runner
from deploybench.store import KEY, ResultStore

BS = 8
SHIFTED = "model.shifted.onnx"


def _shifted_onnx(src, dst) -> None:
    """A copy of the fp32 ONNX whose class-0 logit is raised by 1000: a real artifact with a known, large error."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    out = m.graph.output[0].name
    producer = next(n for n in m.graph.node if out in n.output)
    producer.output[list(producer.output).index(out)] = "pre_shift"
    classes = m.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    bump = np.zeros((1, classes), np.float32)
    bump[0, 0] = 1000.0
    m.graph.initializer.append(numpy_helper.from_array(bump, "shift"))
    m.graph.node.append(helper.make_node("Add", ["pre_shift", "shift"], [out]))
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))


@pytest.fixture(scope="module")
def work(exported_run, tmp_path_factory):
    """A copy of the exported run (no reference.npz yet) with one more fp32 ONNX artifact, SHIFTED, whose
    export.json entry claims the fp32 file's export-time parity (what a copying bench would put in its rows)."""
    cfg, run = exported_run
    root = tmp_path_factory.mktemp("parity")
    shutil.copytree(run.ckpt_dir(cfg.root), run.ckpt_dir(root), ignore=shutil.ignore_patterns(reference.FILE))
    eng = run.engine_dir(root)
    shutil.copytree(run.engine_dir(cfg.root), eng)
    _shifted_onnx(eng / "model.fp32.onnx", eng / SHIFTED)
    exp = json.loads((eng / "export.json").read_text())
    fp32 = next(a for a in exp["artifacts"] if a["file"] == "model.fp32.onnx")
    exp["artifacts"].append(fp32 | {"file": SHIFTED})
    (eng / "export.json").write_text(json.dumps(exp))
    bcfg = dataclasses.replace(cfg.bench, latency=dataclasses.replace(cfg.bench.latency, executions=1))
    return cfg, run, root, bcfg, exp


@pytest.fixture(scope="module")
def first(work):
    """Bench call 1: torch and onnxruntime-cpu."""
    cfg, run, root, bcfg, _ = work
    assert not (run.ckpt_dir(root) / reference.FILE).exists()
    return bench_run(run, root, bcfg, runtimes=["torch", "onnxruntime-cpu"], batch_sizes=[BS])


@pytest.fixture(scope="module")
def later(work, first):
    """Bench call 2 on the run already benched: only openvino. Returns (rows, reference mtime before the call)."""
    cfg, run, root, bcfg, _ = work
    mtime = (run.ckpt_dir(root) / reference.FILE).stat().st_mtime_ns
    rows = bench_run(run, root, bcfg, runtimes=["openvino"], batch_sizes=[BS],
                     existing={tuple(r[k] for k in KEY) for r in first})
    return rows, mtime


@pytest.fixture(scope="module")
def images(work):
    """The bench's accuracy images and labels (the same stratified cap of the test split)."""
    from deploybench.data import load_array

    cfg, run, root, bcfg, _ = work
    meta = json.loads((run.ckpt_dir(root) / "meta.json").read_text())
    x, y = load_array(run.dataset, "test", image_size=meta["image_size"], mean=meta["mean"], std=meta["std"],
                      limit=bcfg.accuracy_images)
    return meta, x, y


def _ok(rows):
    return {(r["runtime"], r["artifact"]): r for r in rows if r["status"] == "ok"}


def test_reference_file_is_torch_fp32_on_the_bench_images(work, first, images):
    cfg, run, root, bcfg, _ = work
    meta, x, y = images
    ref = reference.load(run.ckpt_dir(root) / reference.FILE)
    assert ref["images"] == len(y) == bcfg.accuracy_images and ref["logits"].dtype == np.float32
    assert ref["logits"].shape == (len(y), meta["num_classes"]) and np.array_equal(ref["labels"], y)
    with get_runner("torch")(Artifact(str(run.ckpt_dir(root) / "best.pt"), "pytorch", "fp32"), meta) as r:
        own = evaluate(r, x, y, 16)
    assert ref["top1"] == pytest.approx(own.top1) and np.allclose(ref["logits"], own.logits, rtol=1e-4, atol=1e-5)


def test_every_row_measured_through_its_own_runtime_and_artifact(work, first, later, images):
    """Each ok row's top-1, parity, accuracy_images, precision and compute_precision equal what this test gets by
    running that row's artifact through that row's runtime itself; a value copied from another row would not."""
    cfg, run, root, bcfg, exp = work
    meta, x, y = images
    ref = reference.load(run.ckpt_dir(root) / reference.FILE)
    held = {a["file"]: a["precision"] for a in exp["artifacts"]} | {"best.pt": "fp32"}
    rows = first + later[0]
    assert {r["status"] for r in rows} == {"ok"} and {r["runtime"] for r in rows} == {"torch", "onnxruntime-cpu", "openvino"}
    for r in rows:
        fmt = r["format"]
        path = run.ckpt_dir(root) / "best.pt" if fmt == "pytorch" else run.engine_dir(root) / r["artifact"]
        with get_runner(r["runtime"])(Artifact(str(path), fmt, r["precision"], run.run_id), meta) as rn:
            own = evaluate(rn, x, y, BS)
            compute = getattr(rn, "compute_precision", None)
        stats = parity_stats(own.logits, ref["logits"], y)
        where = f"{r['runtime']} {r['artifact']}"
        assert r["precision"] == held[r["artifact"]], where
        assert r["compute_precision"] == compute, where
        assert r["accuracy_images"] == len(y), where
        assert r["top1"] == pytest.approx(own.top1, abs=100 / len(y) + 1e-9), where
        assert r["parity_top1_agree"] == pytest.approx(stats["top1_agree"], abs=1 / len(y) + 1e-9), where
        assert r["parity_max_rel_err"] == pytest.approx(stats["max_rel_err"], rel=0.2, abs=5e-5), where
        assert r["parity_median_rel_err"] == pytest.approx(stats["median_rel_err"], rel=0.2, abs=5e-5), where
        assert r["top1_delta_vs_torch_fp32"] == pytest.approx(r["top1"] - ref["top1"], abs=1e-3), where
        assert r["top1_delta_se"] == pytest.approx(stats["top1_delta_se"], abs=100 / len(y)), where
        flagged = r["top1_delta_vs_torch_fp32"] < -ACC_DROP_PT
        assert (r["accuracy_flag"] is not None) == flagged, where


def test_rows_of_one_run_differ_where_their_artifacts_do(work, first, later):
    """Not torch's accuracy, not export.json's parity: the shifted file's rows show their own (large) error."""
    cfg, run, root, bcfg, exp = work
    ok = _ok(first + later[0])
    torch_row = ok[("torch", "best.pt")]
    assert torch_row["top1_delta_vs_torch_fp32"] == 0 and torch_row["parity_max_rel_err"] < 1e-4
    assert torch_row["parity_top1_agree"] == 1.0 and torch_row["top1_delta_se"] == 0
    fp32 = ok[("onnxruntime-cpu", "model.fp32.onnx")]
    (int8,) = [r for (rt, _), r in ok.items() if rt == "onnxruntime-cpu" and r["precision"] == "int8"]
    assert fp32["parity_max_rel_err"] < 5e-4 < int8["parity_max_rel_err"]     # fp32 noise: 2e-5..1.2e-4 seen
    assert int8["parity_max_rel_err"] > 10 * fp32["parity_max_rel_err"]
    claimed = next(a for a in exp["artifacts"] if a["file"] == SHIFTED)["parity"]
    assert claimed["max_rel_err"] < 1e-3                        # what export.json says about the file
    assert ("onnxruntime-cpu", SHIFTED) in ok
    for rt in [rt for rt in ("onnxruntime-cpu", "openvino") if (rt, SHIFTED) in ok]:   # openvino may run IR only
        s = ok[(rt, SHIFTED)]
        assert s["parity_max_rel_err"] > 1 and s["parity_top1_agree"] < 0.5, rt
        assert s["top1"] < torch_row["top1"] - 20 and s["accuracy_flag"] == f"drop>{ACC_DROP_PT:g}pt", rt


def test_openvino_rows_of_the_fp32_file_match_torch(later):
    """Issue 12's done-when, OpenVINO rows of the fp32 file at fp32 noise, measured through OpenVINO. The bound is
    1e-4 on the quickstart; this 2-epoch 32-px model has small logits (max |logit| down to ~1.3), where the fp32
    export's own noise reached 1.2e-4 on ORT in one of three trainings, so the test allows 5e-4."""
    ok = _ok(later[0])
    fp32 = [r for (rt, a), r in ok.items() if rt == "openvino" and a in ("model.fp32.onnx", "model.fp32.xml")]
    assert fp32
    assert all(r["parity_max_rel_err"] <= 5e-4 and r["parity_top1_agree"] == 1.0 for r in fp32)


def test_later_call_on_other_runtimes_reuses_the_reference(work, first, later):
    """`bench --runtime openvino` after a call that benched torch: delta, flag and accuracy_images on every row,
    from the stored reference (not recomputed), though no torch row was measured in this call."""
    cfg, run, root, bcfg, _ = work
    rows, mtime = later
    assert rows and {r["runtime"] for r in rows} == {"openvino"}
    assert (run.ckpt_dir(root) / reference.FILE).stat().st_mtime_ns == mtime
    torch_top1 = _ok(first)[("torch", "best.pt")]["top1"]
    for r in rows:
        assert r["accuracy_images"] == bcfg.accuracy_images
        assert r["top1_delta_vs_torch_fp32"] == pytest.approx(r["top1"] - torch_top1, abs=1e-3)
        assert r["accuracy_flag"] == (f"drop>{ACC_DROP_PT:g}pt" if r["top1_delta_vs_torch_fp32"] < -ACC_DROP_PT
                                      else None)


def test_paired_standard_error_of_the_top1_delta():
    """top1_delta_se is the paired standard error: only images exactly one of the two gets right move it."""
    labels = np.array([0, 1, 2, 3])
    ref = np.eye(4)[[1, 1, 2, 0]]          # reference right on images 1 and 2
    a = np.eye(4)[[0, 1, 0, 0]]            # artifact right on images 0 and 1: d = [1, 0, -1, 0]
    s = parity_stats(a, ref, labels)
    assert s["top1_delta"] == 0 and s["top1_delta_se"] == pytest.approx(np.sqrt(2 / 3) / 2 * 100)
    assert parity_stats(ref, ref, labels)["top1_delta_se"] == 0
    assert parity_stats(a, ref)["top1_delta_se"] is None


def test_new_columns_round_trip_the_store(first, tmp_path):
    store = ResultStore(tmp_path / "results.db")
    store.add(first)
    back = {(r["runtime"], r["artifact"]): r for r in store.rows()}
    for r in first:
        b = back[(r["runtime"], r["artifact"])]
        assert b["accuracy_images"] == r["accuracy_images"] and isinstance(b["accuracy_images"], int)
        assert b["compute_precision"] == r["compute_precision"]


def test_reference_recomputed_only_for_another_image_set(exported_run, images, tmp_path):
    cfg, run = exported_run
    meta, x, y = images
    shutil.copytree(run.ckpt_dir(cfg.root), run.ckpt_dir(tmp_path), ignore=shutil.ignore_patterns(reference.FILE))
    ref, secs = reference.ensure(run.ckpt_dir(tmp_path), meta, x[:40], y[:40])
    assert secs is not None and ref["images"] == 40 and ref["logits"].shape[0] == 40
    again, secs = reference.ensure(run.ckpt_dir(tmp_path), meta, x[:40], y[:40])
    assert secs is None and np.array_equal(again["logits"], ref["logits"])
    other, secs = reference.ensure(run.ckpt_dir(tmp_path), meta, x[40:80], y[40:80])   # same N, other images
    assert secs is not None and not np.array_equal(other["logits"], ref["logits"])
    (run.ckpt_dir(tmp_path) / reference.FILE).write_bytes(b"not a zip")             # corrupt: recomputed
    fixed, secs = reference.ensure(run.ckpt_dir(tmp_path), meta, x[40:80], y[40:80])
    assert secs is not None and np.array_equal(fixed["logits"], other["logits"])


def test_missing_checkpoint_is_a_one_line_error(images, tmp_path):
    meta, x, y = images
    with pytest.raises(DeployBenchError, match=r"best.pt: checkpoint not found.*copy checkpoints/r1/"):
        reference.ensure(tmp_path / "checkpoints" / "r1", meta, x[:4], y[:4])


def test_bring_your_own_onnx_with_labels_has_no_reference(exported_run, tmp_path):
    """bench_model with labelled data measures top-1 but invents neither parity nor delta (no torch model)."""
    from PIL import Image

    cfg, run = exported_run
    rng = np.random.default_rng(0)
    for c in range(10):                                      # one folder per class of the model
        (tmp_path / "data" / "test" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
                tmp_path / "data" / "test" / f"c{c}" / f"{i}.png")
    bcfg = dataclasses.replace(cfg.bench, latency=dataclasses.replace(cfg.bench.latency, executions=1))
    rows = bench_model(run.engine_dir(cfg.root) / "model.fp32.onnx", input_size=(3, 32, 32), data_dir=tmp_path / "data",
                       cfg=bcfg, runtimes=["onnxruntime-cpu"], batch_sizes=[2], root=tmp_path)
    (r,) = rows
    assert r["status"] == "ok" and r["top1"] is not None and r["accuracy_images"] == 20
    assert r["parity_max_rel_err"] is None and r["parity_top1_agree"] is None and r["parity_median_rel_err"] is None
    assert r["top1_delta_vs_torch_fp32"] is None and r["accuracy_flag"] is None


def test_ort_worker_measures_parity_without_importing_torch(exported_run, images, tmp_path):
    """The worker's accuracy pass compares its own logits with the reference file, in a process free of torch."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    cfg, run = exported_run
    meta, x, y = images
    art = Artifact(str(run.engine_dir(cfg.root) / "model.fp32.onnx"), "onnx", "fp32", run.run_id)
    with get_runner("torch")(Artifact(str(run.ckpt_dir(cfg.root) / "best.pt"), "pytorch", "fp32"), meta) as rn:
        ref = evaluate(rn, x[:20], y[:20], 4).logits
    shifted = ref.copy()
    shifted[:, 0] += 1.0                                 # a reference the ONNX model does not match
    for name, arr in (("x", x[:20]), ("y", y[:20]), ("ref", shifted)):
        np.save(tmp_path / f"{name}.npy", arr)
    spec = {"artifact": dataclasses.asdict(art), "meta": meta, "runtime": "onnxruntime-cpu", "threads": 1,
            "batch_size": 4, "latency": dataclasses.asdict(cfg.bench.latency), "inputs": str(tmp_path / "x.npy"),
            "accuracy": {"x": str(tmp_path / "x.npy"), "y": str(tmp_path / "y.npy"),
                         "reference": str(tmp_path / "ref.npy")}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    code = ("import json, sys\nfrom deploybench.bench.worker import Session, Spec\n"
            "with Session(Spec.from_json(json.load(open(sys.argv[1])))) as s:\n    out = s.execute()\n"
            "print(json.dumps({'parity': out.parity, 'torch': 'torch' in sys.modules}))")
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "spec.json")], capture_output=True, text=True,
                         env=env, cwd=repo, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    expect = parity_stats(ref, shifted)
    assert got["torch"] is False and got["parity"]["images"] == 20
    assert got["parity"]["max_rel_err"] == pytest.approx(expect["max_rel_err"], rel=1e-3)
