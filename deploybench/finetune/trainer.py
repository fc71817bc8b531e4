"""The seed-study protocol: AdamW, switch to SGD on a val plateau, early stopping, best on val top-1.

Resumable: every epoch writes last.pt (model, optimizer, counters, history, RNG); a killed run continues at
the next epoch with the same optimizer. meta.json is written last and marks the run complete.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from ..errors import DeployBenchError
from ..io import write_json, write_text
from ..records import RunMeta, RunSpec, StageResult
from . import checkpoint as ck
from .heads import freeze_all_but_head, freeze_batchnorm_stats


def finetune_run(run: RunSpec, root: Path, *, progress: bool = True) -> StageResult:
    """Fine-tune one run into checkpoints/<run_id>/; skipped when already complete, failed with the reason."""
    t0 = time.perf_counter()
    ckpt_dir = run.ckpt_dir(root)

    def result(status: str, reason: str = "") -> StageResult:
        return StageResult(run.run_id, "finetune", status, reason, time.perf_counter() - t0)

    try:
        if is_complete(ckpt_dir):
            return result("skipped", "already complete")
        Trainer(run, ckpt_dir, progress).fit()
    except DeployBenchError as e:
        return result("failed", str(e))
    except Exception as e:  # one run's failure must not stop a sweep; the caller reports it
        return result("failed", f"{type(e).__name__}: {e}")
    return result("done")


def is_complete(ckpt_dir: Path) -> bool:
    """meta.json says complete and best.pt loads."""
    try:
        RunMeta.read(ckpt_dir)
    except DeployBenchError:
        return False
    return ck.try_load(ckpt_dir / "best.pt") is not None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """One run's training state; fit() trains (or resumes) to the end and writes meta.json."""

    def __init__(self, run: RunSpec, ckpt_dir: Path, progress: bool):
        from ..backbones import create_backbone, get_backbone
        from ..backbones.registry import architecture, normalization
        from ..data import get_dataset, make_transform

        self.run, self.dir, self.progress, self.tc = run, Path(ckpt_dir), progress, run.train
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.amp = self.tc.amp and self.device.type == "cuda"
        seed_everything(run.seed)
        ds, info = run.dataset, get_backbone(run.backbone.name)
        self.weights = info.default_weights if run.backbone.weights is None else run.backbone.weights
        self.mean, self.std = normalization(info.name, self.weights)
        self.arch, self.augment = architecture(info.name, self.weights), ds.augment or self.tc.augment
        train_tf = make_transform(ds.image_size, self.mean, self.std, train=True, augment=self.augment)
        eval_tf = make_transform(ds.image_size, self.mean, self.std, train=False)
        self.train_ds = get_dataset(ds, "train", fraction=run.fraction, transform=train_tf)
        self.val_ds = get_dataset(ds, "val", transform=eval_tf)
        self.classes = list(self.train_ds.classes)
        if len(self.train_ds) == 0 or len(self.val_ds) == 0:
            raise DeployBenchError(f"dataset '{ds.name}': empty train or val split (check path/max_train/fraction)")
        self.model = create_backbone(run.backbone.name, len(self.classes), weights=self.weights,
                                     image_size=ds.image_size).to(self.device)
        if self.tc.mode == "linear_probe":
            self.params = freeze_all_but_head(self.model)
        else:
            self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.criterion = nn.CrossEntropyLoss(label_smoothing=self.tc.label_smoothing)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        loader = dict(batch_size=self.tc.batch_size, num_workers=self.tc.num_workers, drop_last=False,
                      persistent_workers=self.tc.num_workers > 0, pin_memory=self.device.type == "cuda")
        self.order = torch.Generator()   # reseeded per epoch: the data order depends only on (seed, epoch)
        self.train_loader = DataLoader(self.train_ds, sampler=RandomSampler(self.train_ds, generator=self.order),
                                       generator=self.order, **loader)
        self.val_loader = DataLoader(self.val_ds, shuffle=False, **loader)
        # counters (overwritten on resume)
        self.epoch, self.best_top1, self.best_epoch, self.since_best = 0, -1.0, 0, 0
        self.opt_name, self.history, self.finished, self.train_seconds = "adamw", [], False, 0.0
        self.optimizer = self._make_optimizer("adamw")

    # -- optimizer / data ---------------------------------------------------------------------------------
    def _make_optimizer(self, name: str) -> torch.optim.Optimizer:
        if name == "adamw":
            return torch.optim.AdamW(self.params, lr=self.tc.lr, weight_decay=self.tc.weight_decay)
        return torch.optim.SGD(self.params, lr=self.tc.sgd_lr, momentum=self.tc.sgd_momentum)

    # -- epochs -------------------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        self.model.train()
        if self.tc.mode == "linear_probe":
            freeze_batchnorm_stats(self.model)
        self.order.manual_seed(self.run.seed * 100_003 + epoch)
        loader = self.train_loader
        steps = min(len(loader), self.tc.max_steps_per_epoch or len(loader))
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(total=steps, desc=f"{self.run.run_id} epoch {epoch}", disable=not self.progress, leave=False)
        for step, (x, y) in enumerate(loader):
            if step >= steps:
                break
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                logits = self.model(x)
                loss = self.criterion(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", top1=f"{correct / seen:.3f}")
        bar.close()
        return loss_sum / max(seen, 1), correct / max(seen, 1)

    @torch.no_grad()
    def _evaluate(self) -> tuple[float, float]:
        self.model.eval()
        loss_sum, correct, seen = 0.0, 0, 0
        for x, y in self.val_loader:
            x, y = x.to(self.device), y.to(self.device)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                logits = self.model(x)
            loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        return loss_sum / seen, correct / seen

    def _step_protocol(self, val_top1: float) -> None:
        """Best on val top-1; AdamW -> SGD after plateau_patience flat epochs; stop after early_stopping_patience."""
        if val_top1 > self.best_top1:
            self.best_top1, self.best_epoch, self.since_best = val_top1, self.epoch, 0
        else:
            self.since_best += 1
            if self.opt_name == "adamw" and self.since_best >= self.tc.plateau_patience:
                self.opt_name, self.since_best = "sgd", 0
                self.optimizer = self._make_optimizer("sgd")
            elif self.opt_name == "sgd" and self.since_best >= self.tc.early_stopping_patience:
                self.finished = True
        if self.epoch >= self.tc.epochs:
            self.finished = True

    # -- state --------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "optimizer_name": self.opt_name, "epoch": self.epoch, "best_val_top1": self.best_top1,
                "best_epoch": self.best_epoch, "since_best": self.since_best, "finished": self.finished,
                "history": self.history, "train_seconds": self.train_seconds, "scaler": self.scaler.state_dict(),
                "rng": ck.rng_state()}

    def _resume(self) -> bool:
        """Continue from last.pt when it loads; repairs best.pt / metrics.jsonl after a kill between writes."""
        state = ck.try_load(self.dir / "last.pt")
        if state is None:
            return False
        best = ck.try_load(self.dir / "best.pt")
        best_ok = best is not None and best.get("epoch") == state["best_epoch"]
        if not best_ok and state["best_epoch"] != state["epoch"]:
            return False   # the best model is lost and cannot be recovered from last.pt: start over
        self.model.load_state_dict(state["model"])
        self.opt_name = state["optimizer_name"]
        self.optimizer = self._make_optimizer(self.opt_name)
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"] and self.amp:   # empty when last.pt was written without AMP (e.g. on CPU)
            self.scaler.load_state_dict(state["scaler"])
        for k in ("epoch", "best_epoch", "since_best", "finished", "history", "train_seconds"):
            setattr(self, k, state[k])
        self.best_top1 = state["best_val_top1"]
        ck.set_rng_state(state["rng"])
        if not best_ok:   # killed between last.pt and best.pt: the best model is last.pt's
            ck.save(self.dir / "best.pt", self._best_state())
        write_text(self.dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in self.history))
        self._log(f"resumed after epoch {self.epoch} (optimizer {self.opt_name}, best val top-1 "
                  f"{self.best_top1:.4f} at epoch {self.best_epoch})")
        return True

    def _best_state(self) -> dict:
        return {"model": self.model.state_dict(), "epoch": self.epoch, "val_top1": self.best_top1}

    def _log(self, line: str) -> None:
        with open(self.dir / "log.txt", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    # -- main loop ----------------------------------------------------------------------------------------
    def fit(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / RunMeta.FILE).unlink(missing_ok=True)   # a stale one (bad best.pt) must not mark this complete
        if not self._resume():
            (self.dir / "metrics.jsonl").unlink(missing_ok=True)
            self._log(f"start {self.run.run_id}: {len(self.train_ds)} train / {len(self.val_ds)} val images, "
                      f"mode {self.tc.mode}, device {self.device}")
        while not self.finished:
            self.epoch += 1
            t0 = time.perf_counter()
            opt_name, lr = self.opt_name, self.optimizer.param_groups[0]["lr"]
            train_loss, train_top1 = self._train_epoch(self.epoch)
            val_loss, val_top1 = self._evaluate()
            seconds = time.perf_counter() - t0
            self.train_seconds += seconds
            self._step_protocol(val_top1)
            improved = self.best_epoch == self.epoch
            row = {"epoch": self.epoch, "optimizer": opt_name, "lr": lr, "train_loss": train_loss,
                   "train_top1": train_top1, "val_loss": val_loss, "val_top1": val_top1, "seconds": seconds}
            self.history.append(row)
            ck.save(self.dir / "last.pt", self._state())
            if improved:
                ck.save(self.dir / "best.pt", self._best_state())
            with open(self.dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            self._log(f"epoch {self.epoch} {opt_name} lr={lr:g} train_loss={train_loss:.4f} "
                      f"train_top1={train_top1:.4f} val_loss={val_loss:.4f} val_top1={val_top1:.4f} "
                      f"{seconds:.1f}s{' *best' if improved else ''}"
                      f"{' -> sgd' if opt_name != self.opt_name else ''}")
        write_json(self.dir / RunMeta.FILE, self._meta().to_json())
        self._log(f"complete after {self.epoch} epochs: best val top-1 {self.best_top1:.4f} at epoch "
                  f"{self.best_epoch}")

    def _gmacs(self, model: nn.Module) -> float | None:
        """GMACs at the run's image size; None (logged) where the FLOP counter cannot trace the model."""
        from ..backbones import count_gmacs

        try:
            return count_gmacs(model, self.run.dataset.image_size)
        except Exception as e:
            self._log(f"gmacs not counted: {type(e).__name__}: {e}")
            return None

    def _meta(self) -> RunMeta:
        import timm

        run, ds = self.run, self.run.dataset
        model = self.model.to("cpu").eval()
        return RunMeta(
            run_id=run.run_id, backbone=run.backbone.name, image_size=ds.image_size, mean=self.mean, std=self.std,
            num_classes=len(self.classes), arch=self.arch, dataset=ds.name, domain=ds.domain,
            fraction=run.fraction, seed=run.seed, pretrained=self.weights != "none",
            params_m=sum(p.numel() for p in model.parameters()) / 1e6, gmacs=self._gmacs(model),
            extra={"weights": self.weights, "augment": self.augment, "mode": self.tc.mode, "classes": self.classes,
                   "best_epoch": self.best_epoch, "best_val_top1": self.best_top1, "epochs_run": self.epoch,
                   "train_images": len(self.train_ds), "val_images": len(self.val_ds),
                   "train_seconds": self.train_seconds, "dataset_config": dataclasses.asdict(ds),
                   "versions": {"torch": torch.__version__, "timm": timm.__version__}})

