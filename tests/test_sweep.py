"""Sweeps, for real: tiny random-init backbones on 32 px Fashion-MNIST through finetune, export and bench,
on the local executor (in-process and spawned workers) and on a local Ray instance."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import tiny_config_dict
from deploybench.config import from_dict, load_config
from deploybench.store import ResultStore
from deploybench.sweep.plan import plan
from deploybench.sweep.runner import run_pipeline

TINY = [{"name": "mobilenetv3_small", "weights": "none"}, {"name": "resnet18", "weights": "none"}]


def sweep_cfg(workdir, **over):
    """2 backbones x 2 seeds x 2 fractions, 1 epoch on 200 images, fp32 ONNX, torch + ORT at batch 1."""
    d = tiny_config_dict(workdir, backbones=TINY, seeds=[0, 1], fractions=[0.5, 1.0])
    d["datasets"][0].update(max_train=200, max_val=50, max_test=100)
    d["train"].update(epochs=1)
    d["bench"].update(batch_sizes=[1], accuracy_images=50, fresh_process=False)   # bench tests cover fresh ones
    d["bench"]["latency"].update(warmup_iters=1, min_iters=5, min_duration_s=0.02, max_duration_s=0.1)
    d.update(over)
    return from_dict(d, "sweep-test.yaml")


def row_keys(store: ResultStore) -> set:
    return {(r["run_id"], r["artifact"], r["runtime"], r["batch_size"], r["seed"], r["fraction"], r["status"])
            for r in store.rows()}


@pytest.fixture(scope="module")
def swept(tmp_path_factory, fmnist_available):
    """(cfg, first summary) of the full local sweep."""
    cfg = sweep_cfg(tmp_path_factory.mktemp("sweep"))
    return cfg, run_pipeline(cfg, executor="local", workers=1, progress=False)


def test_local_sweep_runs_everything(swept):
    cfg, summary = swept
    runs = plan(cfg)
    assert len(runs) == 8
    assert summary.counts() == {s: {"done": 8, "skipped": 0, "failed": 0} for s in ("finetune", "export", "bench")}, \
        str(summary)
    store = ResultStore(cfg.root / "reports" / "results.db")
    rows = store.rows()
    assert summary.rows_written == len(rows) == 8 * 2      # torch + onnxruntime-cpu, batch 1
    by_id = {r.run_id: r for r in runs}
    assert {r["run_id"] for r in rows} == set(by_id)
    for row in rows:                                        # rows carry seed/fraction for aggregation
        assert (row["seed"], row["fraction"]) == (by_id[row["run_id"]].seed, by_id[row["run_id"]].fraction)
        assert row["status"] == "ok", row["status_reason"]
    for run in runs:
        log = (run.ckpt_dir(cfg.root) / "sweep.log").read_text()
        assert "finetune done" in log and "bench done" in log
    text = str(summary)
    assert "8 runs" in text and "finetune" in text and len(text.splitlines()) < 25


def test_rerun_skips_everything(swept):
    cfg, _ = swept
    again = run_pipeline(cfg, progress=False)
    assert again.counts() == {s: {"done": 0, "skipped": 8, "failed": 0} for s in ("finetune", "export", "bench")}
    assert again.rows_written == 0 and again.ok


def test_killed_run_is_redone_alone(swept):
    """A sweep killed while training run 3: no meta.json, no engines, nothing in the store for it."""
    cfg, _ = swept
    victim = plan(cfg)[3]
    ckpt = victim.ckpt_dir(cfg.root)
    for name in ("meta.json", "best.pt", "last.pt"):
        (ckpt / name).unlink()
    shutil.rmtree(victim.engine_dir(cfg.root))
    db = cfg.root / "reports" / "results.db"
    with sqlite3.connect(db) as con:
        con.execute("DELETE FROM results WHERE run_id = ?", (victim.run_id,))
    summary = run_pipeline(cfg, progress=False)
    for stage, c in summary.counts().items():
        assert c == {"done": 1, "skipped": 7, "failed": 0}, (stage, str(summary))
    assert {r.run_id for r in summary.results if r.status == "done"} == {victim.run_id}
    assert summary.rows_written == 2 and len(ResultStore(db).rows()) == 16


def test_broken_backbone_fails_alone_with_workers(swept):
    """An unknown backbone fails at finetune, its later stages are skipped, the others are unaffected."""
    cfg, _ = swept
    broken = sweep_cfg(cfg.root, backbones=TINY[:1] + [{"name": "no_such_backbone", "weights": "none"}],
                       seeds=[0], fractions=[1.0])
    summary = run_pipeline(broken, workers=2, progress=False)
    bad = [r for r in summary.results if r.run_id.startswith("no_such_backbone")]
    good = [r for r in summary.results if r.run_id.startswith("mobilenetv3_small")]
    assert [(r.stage, r.status) for r in good] == [("finetune", "skipped"), ("export", "skipped"),
                                                    ("bench", "skipped")]
    assert [(r.stage, r.status) for r in bad] == [("finetune", "failed"), ("export", "skipped"),
                                                   ("bench", "skipped")]
    assert "no_such_backbone" in bad[0].reason
    assert bad[1].reason == bad[2].reason == "finetune failed"
    assert not summary.ok and "no_such_backbone" in str(summary)


def test_ray_sweep_matches_local(swept, tmp_path):
    """Same config on a local Ray instance: identical run ids and result rows. Ray re-uses 7 of the local
    checkpoints, fine-tunes and exports the 8th in a task, and benchmarks all 8 anew in Ray tasks."""
    ray = pytest.importorskip("ray")
    cfg, _ = swept
    ray_cfg = sweep_cfg(tmp_path)
    runs = plan(ray_cfg)
    assert [r.run_id for r in runs] == [r.run_id for r in plan(cfg)]
    for sub in ("checkpoints", "engines"):
        shutil.copytree(cfg.root / sub, tmp_path / sub)
    shutil.rmtree(runs[0].ckpt_dir(tmp_path))
    shutil.rmtree(runs[0].engine_dir(tmp_path))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        summary = run_pipeline(ray_cfg, executor="ray", progress=False)
    finally:
        ray.shutdown()
    counts = summary.counts()
    assert counts["finetune"] == counts["export"] == {"done": 1, "skipped": 7, "failed": 0}, str(summary)
    assert counts["bench"] == {"done": 8, "skipped": 0, "failed": 0}, str(summary)
    assert "finetune done" in (runs[0].ckpt_dir(tmp_path) / "sweep.log").read_text()   # written by the task
    local_rows = row_keys(ResultStore(cfg.root / "reports" / "results.db"))
    assert row_keys(ResultStore(tmp_path / "reports" / "results.db")) == local_rows


def test_paper_config_loads():
    from deploybench.backbones import list_backbones

    cfg = load_config(Path(__file__).resolve().parent.parent / "configs" / "paper.yaml")
    assert {b.name for b in cfg.backbones} <= set(list_backbones())
    assert len(cfg.backbones) == 11 and len(cfg.datasets) == 20
    assert len({d.domain for d in cfg.datasets}) == 7
    assert cfg.fractions == [0.01, 0.1, 1.0] and cfg.seeds == [0, 1, 2]
    assert cfg.sweep.executor == "ray" and len(plan(cfg)) == 11 * 20 * 3 * 3
