"""WaveMix (Jeevan & Sethi, 2022) implemented here: the `wavemix` PyPI package breaks under numpy 2.

Architecture (level-1 WaveMix blocks, the paper's design):
  stem ("patchify"): conv3x3 3->D/4, conv3x3 D/4->D/2, conv PxP stride P (D/2->D), GELU, BatchNorm
  block x depth:     1x1 conv D->D/4, 2D Haar DWT level 1 (-> 4 subbands x D/4 = D channels at half
                     resolution), MLP (1x1 conv D->mult*D, GELU, dropout, 1x1 conv mult*D->ff),
                     transposed conv 4x4 stride 2 (ff->D, back to full resolution), BatchNorm, + residual
  head:              global average pool, linear D->num_classes

Registry configuration `wavemix`: D (final_dim) = ff_channel = 288, mult = 2, depth = 16, patch 4, dropout 0.5
-> 27.95M parameters with a 1000-class head (the seed study's table lists WaveMix at 27.9M);
28.7 GMACs at 224 px (level-1 blocks mix at 1/8 resolution: heavy at 224, ~2.3 GMACs at 64 px).

The Haar DWT is a fixed stride-2 grouped convolution (four orthonormal 2x2 filters LL, LH, HL, HH per channel),
so the model exports to ONNX as plain Conv nodes. Its output interleaves the subbands per channel; the
reference implementation concatenates [LL, highs] instead, a fixed channel permutation that the following
1x1 convolution absorbs, so both define the same function class.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_HAAR = torch.tensor([[[1.0, 1.0], [1.0, 1.0]],       # LL
                      [[1.0, 1.0], [-1.0, -1.0]],     # LH (horizontal detail)
                      [[1.0, -1.0], [1.0, -1.0]],     # HL (vertical detail)
                      [[1.0, -1.0], [-1.0, 1.0]]]) / 2.0   # HH (diagonal detail)


class HaarDWT(nn.Module):
    """Level-1 2D Haar DWT: (B, C, H, W) -> (B, 4C, ceil(H/2), ceil(W/2)); odd sizes are zero-padded."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("weight", _HAAR.unsqueeze(1).repeat(channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2))
        return F.conv2d(x, self.weight, stride=2, groups=self.channels)


class WaveBlock(nn.Module):
    """One level-1 WaveMix block (token mixing by the wavelet transform, MLP over the subbands)."""

    def __init__(self, dim: int, mult: int, ff_channel: int, dropout: float):
        super().__init__()
        self.reduction = nn.Conv2d(dim, dim // 4, 1)
        self.dwt = HaarDWT(dim // 4)
        self.feedforward = nn.Sequential(
            nn.Conv2d(dim, dim * mult, 1), nn.GELU(), nn.Dropout(dropout),
            nn.Conv2d(dim * mult, ff_channel, 1),
            nn.ConvTranspose2d(ff_channel, dim, 4, stride=2, padding=1),
            nn.BatchNorm2d(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.feedforward(self.dwt(self.reduction(x)))
        return y[..., :h, :w] + x


def patchify_stem(d: int, patch_size: int) -> nn.Sequential:
    """conv3x3 3->D/4, conv3x3 D/4->D/2, conv PxP stride P (D/2->D), GELU, BatchNorm."""
    return nn.Sequential(nn.Conv2d(3, d // 4, 3, 1, 1), nn.Conv2d(d // 4, d // 2, 3, 1, 1),
                         nn.Conv2d(d // 2, d, patch_size, patch_size), nn.GELU(), nn.BatchNorm2d(d))


class WaveMix(nn.Module):
    def __init__(self, num_classes: int = 1000, depth: int = 16, mult: int = 2, ff_channel: int = 288,
                 final_dim: int = 288, dropout: float = 0.5, patch_size: int = 4):
        super().__init__()
        d = final_dim
        self.num_features = d
        self.stem = patchify_stem(d, patch_size)
        self.blocks = nn.Sequential(*[WaveBlock(d, mult, ff_channel, dropout) for _ in range(depth)])
        self.head = nn.Linear(d, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))
