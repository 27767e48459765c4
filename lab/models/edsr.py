"""EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017).

https://arxiv.org/abs/1707.02921 - residual blocks without batch norm, residual scaling, global skip,
PixelShuffle tail. Inputs are RGB in [0, 1]; the DIV2K RGB mean is subtracted and added back as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import conv, make_upsampler
from lab.models.registry import register_model

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class ResBlock(nn.Module):
    """conv-ReLU-conv with the residual scaled by `res_scale` (0.1 in the 256-feature EDSR)."""

    def __init__(self, num_feat: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(conv(num_feat, num_feat), nn.ReLU(inplace=True), conv(num_feat, num_feat))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """EDSR: head conv, `num_block` residual blocks + conv with a long skip, upsampler, tail conv.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 res_scale: float = 1.0, upsampler: str = "pixelshuffle", rgb_mean: tuple | None = DIV2K_RGB_MEAN):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        mean = rgb_mean if (rgb_mean is not None and in_ch == 3 and out_ch == 3) else (0.0,) * in_ch
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.head = conv(in_ch, num_feat)
        self.body = nn.Sequential(*[ResBlock(num_feat, res_scale) for _ in range(num_block)], conv(num_feat, num_feat))
        self.tail = nn.Sequential(make_upsampler(upsampler, scale, num_feat), conv(num_feat, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x - self.mean)
        x = x + self.body(x)
        return self.tail(x) + self.mean


@register_model
def edsr_baseline(scale: int = 2, **kw) -> EDSR:
    """EDSR baseline: 16 residual blocks, 64 features, no residual scaling (about 1.37 M params at x2)."""
    return EDSR(scale=scale, **{"num_feat": 64, "num_block": 16, "res_scale": 1.0, **kw})


@register_model
def edsr(scale: int = 2, **kw) -> EDSR:
    """EDSR full: 32 residual blocks, 256 features, residual scaling 0.1 (about 40.7 M params at x2)."""
    return EDSR(scale=scale, **{"num_feat": 256, "num_block": 32, "res_scale": 0.1, **kw})
