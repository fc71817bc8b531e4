"""Fine-tune img/s: deploybench's Trainer vs a bare PyTorch loop on the same model, data and batch size.

    python benchmarks/finetune_speed.py [--backbone efficientnet_lite0] [--image-size 56] [--rounds 3]

Bare loops (contiguous NCHW and channels_last) train on pre-transformed tensors: the floor of what the model
costs. The Trainer trains one epoch of real Fashion-MNIST through its DataLoader and transforms, in NCHW:
channels_last trained the quickstart's lite0 2x faster here but to 66.8 % val top-1 instead of 76.8 % (same
seed, same data, reproducible; BatchNorm gradients differ between the two layouts on this CPU), so the Trainer
does not use it. Interleaved rounds (bare NCHW, bare channels_last, Trainer), median img/s per variant, ratio vs
the faster bare loop. Prints a table; needs the Fashion-MNIST data (make install).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

from deploybench.backbones import create_backbone
from deploybench.config import BackboneConfig, DatasetConfig, TrainConfig
from deploybench.finetune.trainer import Trainer
from deploybench.records import RunSpec


def bare(model: torch.nn.Module, batches: list, fmt: torch.memory_format) -> float:
    """img/s of AdamW training steps over `batches` in memory format `fmt`."""
    model.train().to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n, t0 = 0, time.perf_counter()
    for x, y in batches:
        loss = torch.nn.functional.cross_entropy(model(x.contiguous(memory_format=fmt)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - t0)


def trainer_ips(trainer: Trainer) -> float:
    trainer.model.train()
    t0 = time.perf_counter()
    trainer._train_epoch(1)
    return len(trainer.train_ds) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--weights", default="pypi")
    ap.add_argument("--image-size", type=int, default=56)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds = DatasetConfig(name="fashion-mnist", kind="fashion-mnist", image_size=a.image_size, max_train=a.images,
                       max_val=a.batch_size)
    run = RunSpec(BackboneConfig(a.backbone, a.weights), ds, 1.0, 0,
                  TrainConfig(batch_size=a.batch_size, augment="none", epochs=1))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(run, Path(tmp), progress=False)
        items = [trainer.train_ds[i] for i in range(len(trainer.train_ds))]
        batches = [(torch.stack([x for x, _ in items[i:i + a.batch_size]]),
                    torch.tensor([y for _, y in items[i:i + a.batch_size]]))
                   for i in range(0, len(items), a.batch_size)]
        model = create_backbone(a.backbone, 10, weights=a.weights, image_size=a.image_size)
        ips: dict[str, list[float]] = {"bare NCHW": [], "bare channels_last": [], "deploybench Trainer": []}
        for _ in range(a.rounds):
            ips["bare NCHW"].append(bare(model, batches, torch.contiguous_format))
            ips["bare channels_last"].append(bare(model, batches, torch.channels_last))
            ips["deploybench Trainer"].append(trainer_ips(trainer))
    med = {k: statistics.median(v) for k, v in ips.items()}
    floor = max(med["bare NCHW"], med["bare channels_last"])
    print(f"{a.backbone} at {a.image_size} px, batch {a.batch_size}, {a.threads} threads, {len(items)} images, "
          f"{a.rounds} interleaved rounds")
    print(tabulate([[k, f"{v:.0f}", f"{v / floor:.2f}"] for k, v in med.items()],
                   headers=["variant", "img/s (median)", "vs best bare"]))


if __name__ == "__main__":
    main()
