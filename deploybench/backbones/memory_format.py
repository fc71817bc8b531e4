"""Pick the faster tensor memory format (channels_last or contiguous NCHW) for one model on this device, measured.

channels_last lets oneDNN (CPU) and cuDNN run convolutions without layout reorders; whether that pays depends on
the model, the image size and the device, so it is timed per model, not assumed: a few passes in each format,
interleaved, on a real batch, restoring weights, BatchNorm statistics, gradients and RNG state. The torch runtime
uses it for inference (outputs match NCHW to fp32 noise). Training stays NCHW: on the quickstart's lite0,
channels_last trained 2x faster but to 10 points lower val top-1 (BatchNorm gradients differ between the layouts
on this CPU with torch 2.14); benchmarks/finetune_speed.py measures both.
"""
from __future__ import annotations

import copy
import time
from typing import Optional

import torch
from torch import nn

FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def _time(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor], fmt: torch.memory_format) -> float:
    model.to(memory_format=fmt)
    xf = x.contiguous(memory_format=fmt)
    t0 = time.perf_counter()
    if y is None:
        with torch.inference_mode():
            model(xf)
    else:
        nn.functional.cross_entropy(model(xf), y).backward()
    return time.perf_counter() - t0


def pick_memory_format(model: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor] = None,
                       rounds: int = 3) -> str:
    """'channels_last' or 'contiguous', whichever ran `model` on batch `x` faster (training step when labels
    `y` are given, else inference); the model is left in the chosen format. Median of `rounds` interleaved pairs
    after one warm-up pass of each."""
    if x.dim() != 4:
        return "contiguous"
    training = model.training
    state = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    times: dict[str, list[float]] = {name: [] for name in FORMATS}
    try:
        for i in range(rounds + 1):
            for name, fmt in (FORMATS.items() if i % 2 else reversed(FORMATS.items())):
                t = _time(model, x, y, fmt)
                if i:
                    times[name].append(t)
    finally:
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        model.train(training)
        torch.set_rng_state(rng)
    best = min(times, key=lambda n: sorted(times[n])[len(times[n]) // 2])
    model.to(memory_format=FORMATS[best])
    return best
