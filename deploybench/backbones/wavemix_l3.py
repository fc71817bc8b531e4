"""WaveMix-192/16 with level-3 blocks: the seed study's WaveMix, laid out so its authors' ImageNet checkpoint
(the `wavemix` package's `WaveMix(final_dim=192, ff_channel=192, depth=16, level=3)`) loads by name.

Block (authors' Level3Waveblock): 1x1 conv D -> D/4, Haar DWT at three levels (each level: [LL, 3 detail
subbands per channel], D/4 + 3D/4 = D channels), coarsest level first: MLP + transposed conv up to the next
level, concatenated with it, up to full resolution (D channels); the model adds the residual.
The Haar DWT is HaarDWT from wavemix.py (same filters, signs and subband order as pytorch_wavelets' db1,
zero padding); `_split` reorders its per-channel output into the authors' [LL..., details...] layout.
27.86M parameters with a 1000-class head (Table 2: 27.9M).
"""
from __future__ import annotations

import torch
from torch import nn

from .wavemix import HaarDWT, patchify_stem


def _split(y: torch.Tensor) -> torch.Tensor:
    """HaarDWT output (B, 4C, H, W), subbands interleaved per channel -> [LL of each channel, then LH/HL/HH of
    each channel] (pytorch_wavelets' yl, yh reshaped), concatenated."""
    b, c4, h, w = y.shape
    y = y.view(b, c4 // 4, 4, h, w)
    return torch.cat([y[:, :, 0], y[:, :, 1:].reshape(b, 3 * (c4 // 4), h, w)], dim=1)


def _mlp(cin: int, dim: int, mult: int, ff_channel: int, cout: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, dim * mult, 1), nn.GELU(), nn.Dropout(dropout),
                         nn.Conv2d(dim * mult, ff_channel, 1),
                         nn.ConvTranspose2d(ff_channel, cout, 4, stride=2, padding=1), nn.BatchNorm2d(cout))


class Level3Block(nn.Module):
    def __init__(self, dim: int, mult: int, ff_channel: int, dropout: float):
        super().__init__()
        half = dim // 2
        self.feedforward1 = _mlp(dim + half, dim, mult, ff_channel, dim, dropout)
        self.feedforward2 = _mlp(dim + half, dim, mult, ff_channel, half, dropout)
        self.feedforward3 = _mlp(dim, dim, mult, ff_channel, half, dropout)
        self.reduction = nn.Conv2d(dim, dim // 4, 1)
        self.dwt = HaarDWT(dim // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x1 = _split(self.dwt(self.reduction(x)))
        x2 = _split(self.dwt(x1[:, :x1.shape[1] // 4]))
        x3 = _split(self.dwt(x2[:, :x2.shape[1] // 4]))
        y = self.feedforward3(x3)[..., :x2.shape[-2], :x2.shape[-1]]
        y = self.feedforward2(torch.cat([x2, y], dim=1))[..., :x1.shape[-2], :x1.shape[-1]]
        return self.feedforward1(torch.cat([x1, y], dim=1))[..., :h, :w]


class WaveMixL3(nn.Module):
    def __init__(self, num_classes: int = 1000, depth: int = 16, mult: int = 2, ff_channel: int = 192,
                 final_dim: int = 192, dropout: float = 0.5, patch_size: int = 4):
        super().__init__()
        d = final_dim
        self.num_features = d
        self.conv = patchify_stem(d, patch_size)
        self.layers = nn.ModuleList([Level3Block(d, mult, ff_channel, dropout) for _ in range(depth)])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(d, num_classes))

    def get_classifier(self) -> nn.Module:
        return self.pool[2]

    def reset_classifier(self, num_classes: int) -> None:
        self.pool[2] = nn.Linear(self.num_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        for block in self.layers:
            x = block(x) + x
        return self.pool(x)
