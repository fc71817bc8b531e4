"""Transforms on uint8 CHW tensors (what both dataset kinds yield) -> normalized float32 3-channel tensors.

Eval: float -> bilinear antialiased resize to image_size x image_size (aspect ratio not kept) -> 3 channels
-> normalize. `EvalTransform` also takes NCHW batches, so `load_array` computes exactly what the eval
transform computes per image. Train with augment "trivialaugment": RandomResizedCrop(scale 0.35-1) +
horizontal flip + TrivialAugmentWide on uint8, then the eval steps; augment "none" uses the eval transform.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ..errors import DeployBenchError

AUGMENTS = ("trivialaugment", "none")


class To3Channels(torch.nn.Module):
    """Grayscale (1 channel) -> 3 identical channels; other inputs unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) if x.shape[-3] == 1 else x


class EvalTransform(torch.nn.Module):
    """uint8 (C,H,W) or (N,C,H,W) -> float32 normalized (3, S, S) / (N, 3, S, S)."""

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.size = int(image_size)
        std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.register_buffer("scale", 1.0 / std_t)                   # (x - mean) / std as one fused op
        self.register_buffer("shift", -torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) / std_t)

    def forward(self, x: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`out` (float32, N x 3 x S x S) receives the batch result without an extra copy."""
        single = x.dim() == 3
        x = x.unsqueeze(0) if single else x
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=True)
        if x.shape[1] not in (1, 3):
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        y = torch.addcmul(self.shift, x, self.scale, out=out)   # broadcasts 1 channel to 3
        return y[0] if single else y


def make_transform(image_size: int, mean: Sequence[float], std: Sequence[float], *, train: bool,
                   augment: str = "trivialaugment") -> torch.nn.Module:
    if augment not in AUGMENTS:
        raise DeployBenchError(f"train.augment: {augment!r} is not one of {', '.join(AUGMENTS)}")
    final = EvalTransform(image_size, mean, std)
    if not train or augment == "none":
        return final
    return v2.Compose([To3Channels(), v2.RandomResizedCrop(image_size, scale=(0.35, 1.0), antialias=True),
                       v2.RandomHorizontalFlip(), v2.TrivialAugmentWide(), final])
