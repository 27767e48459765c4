"""DRLN (Anwar & Barnes, "Densely Residual Laplacian Super-Resolution", TPAMI 2020).

https://arxiv.org/abs/1906.12021 - cascading groups of dense residual Laplacian modules (DRLMs). A DRLM stacks
three residual units on densely concatenated features (widths C, 2C, 4C: conv-ReLU-conv + skip, ReLU), compresses
the 8C concatenation with a 1x1 conv + ReLU, and applies Laplacian attention: global average pooling, three 3x3
convs with dilations 3, 5 and 7 (each C -> C / reduction, ReLU), concatenated, a 3x3 conv back to C and a
sigmoid that scales the channels. Inside a group, after each DRLM the running concatenation is fused by a 3x3
conv + ReLU (a dense connection across modules); each group ends with a medium skip, the body with a long skip
to the head features; the upsampler has ReLU after each conv (as in the official code); a 3x3 tail conv.
Published: 20 DRLMs in 6 groups of 3, 3, 3, 3, 4, 4, 64 features, reduction 16: about 34.4 M params at x2.

`num_block` is the tuple of DRLMs per group. Two simplifications of the official code, neither changes the
parameter count: each group's concatenation starts from the group's input (the official code starts it from the
previous group's last fused output, and feeds the fifth module with the group input instead of the fourth's
output). Note: on the pooled 1x1 map only the centre taps of the dilated attention convs see data (zero padding),
as in the original.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lab.models.blocks import conv, make_upsampler, mean_buffer
from lab.models.edsr import DIV2K_RGB_MEAN
from lab.models.registry import register_model


class LaplacianAttention(nn.Module):
    """Channel attention from three dilated (3, 5, 7) convs of the pooled features; see the module docstring.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, reduction: int = 16, dilations: Sequence[int] = (3, 5, 7)):
        super().__init__()
        mid = max(1, num_feat // reduction)
        self.branches = nn.ModuleList(nn.Sequential(conv(num_feat, mid, 3, dilation=d), nn.ReLU(inplace=True))
                                      for d in dilations)
        self.fuse = nn.Sequential(conv(mid * len(dilations), num_feat, 3), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.adaptive_avg_pool2d(x, 1)
        return x * self.fuse(torch.cat([b(y) for b in self.branches], dim=1))


class _ResUnit(nn.Module):
    """conv-ReLU-conv + skip, then ReLU (DRLN's residual unit)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(conv(ch, ch), nn.ReLU(inplace=True), conv(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class DRLM(nn.Module):
    """Dense residual Laplacian module: densely connected residual units (C, 2C, 4C), 1x1 compression, attention.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, reduction: int = 16, units: int = 3):
        super().__init__()
        if units not in (1, 2, 3):
            raise ValueError(f"units={units!r}: expected 1, 2 or 3 residual units per DRLM (3 published; log 003's "
                             "first slim DRLN keeps 2)")
        self.units = nn.ModuleList(_ResUnit(num_feat * w) for w in (1, 2, 4)[:units])
        self.compress = nn.Sequential(conv(2**units * num_feat, num_feat, 1), nn.ReLU(inplace=True))
        self.attention = LaplacianAttention(num_feat, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = torch.cat([x, unit(x)], dim=1)
        return self.attention(self.compress(x))


class CascadingGroup(nn.Module):
    """DRLMs with dense fusion convs between them and a medium skip.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, num_block: int, reduction: int = 16, units: int = 3):
        super().__init__()
        self.blocks = nn.ModuleList(DRLM(num_feat, reduction, units) for _ in range(num_block))
        self.fuses = nn.ModuleList(nn.Sequential(conv((i + 2) * num_feat, num_feat), nn.ReLU(inplace=True))
                                   for i in range(num_block))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cat, h = x, x
        for block, fuse in zip(self.blocks, self.fuses):
            cat = torch.cat([cat, block(h)], dim=1)
            h = fuse(cat)
        return x + h


class DRLN(nn.Module):
    """DRLN; `num_block` = DRLMs per cascading group, `units` residual units per DRLM (3 published). See the
    module docstring.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64,
                 num_block: Sequence[int] = (3, 3, 3, 3, 4, 4), reduction: int = 16,
                 upsampler: str = "pixelshuffle", rgb_mean: tuple | None = DIV2K_RGB_MEAN, units: int = 3):
        super().__init__()
        if isinstance(num_block, int):
            num_block = (num_block,)
        if not num_block or any(int(n) < 1 for n in num_block):
            raise ValueError(f"num_block={num_block!r}: expected a sequence of DRLMs per group, each >= 1")
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        self.register_buffer("mean", mean_buffer(rgb_mean, in_ch, out_ch), persistent=False)
        self.head = conv(in_ch, num_feat)
        self.body = nn.Sequential(*[CascadingGroup(num_feat, int(n), reduction, units) for n in num_block])
        self.tail = nn.Sequential(make_upsampler(upsampler, scale, num_feat, act="relu"), conv(num_feat, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x - self.mean)
        return self.tail(x + self.body(x)) + self.mean


@register_model
def drln(scale: int = 2, **kw) -> DRLN:
    """DRLN (Anwar & Barnes, TPAMI 2020): 20 DRLMs in groups (3, 3, 3, 3, 4, 4), 64 features; about 34.4 M at x2."""
    return DRLN(scale=scale, **kw)


@register_model
def drln_slim(scale: int = 2, **kw) -> DRLN:
    """Slim DRLN (Anwar & Barnes, TPAMI 2020) for an 11 GFLOPs budget at a 128 x 128 LR input at x2: 16 features,
    one group of 3 DRLMs, reduction 4.

    338,567 params at x2; 10.77 GFLOPs (FlopCounterMode, a multiply-add = 2 FLOPs) for a 1x3x128x128 LR input at x2.
    Not log 003's measure (one 256 x 256 LR input at x3), where it costs 44.9 G; 003's own slim DRLN is
    `drln_slim_003`.
    """
    return DRLN(scale=scale, **{"num_feat": 16, "num_block": (3,), "reduction": 4, **kw})


@register_model
def drln_slim_003(scale: int = 3, **kw) -> DRLN:
    """Log 003's first slim DRLN ("1st嘗試"): 12 features, 4 DRLMs of 2 residual units (the third removed), in two
    groups of 2, reduction 16; 82,575 params at x3 (the log's 82,599 counts the official code's two mean-shift
    1x1 convs, 24 frozen params, which the lab does with a buffer)."""
    return DRLN(scale=scale, **{"num_feat": 12, "num_block": (2, 2), "units": 2, "reduction": 16, **kw})
