"""RCAN (Zhang et al., "Image Super-Resolution Using Very Deep Residual Channel Attention Networks", ECCV 2018).

https://arxiv.org/abs/1807.02758 - residual in residual: `num_group` residual groups, each of `num_block` residual
channel attention blocks (conv-ReLU-conv-CA + skip) and a conv, with a short skip; a conv and a long skip over the
groups; sub-pixel upsampling and a 3x3 tail. CA: global average pooling, 1x1 down by `reduction`, ReLU, 1x1 up,
sigmoid. Published: 10 groups x 20 blocks, 64 features, reduction 16: about 15.4 M params at x2.
The DIV2K RGB mean is subtracted and added back, as in the paper's code.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import ChannelAttention, conv, make_upsampler, mean_buffer
from lab.models.edsr import DIV2K_RGB_MEAN
from lab.models.registry import register_model


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(ReLU(conv(x)))).

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(conv(num_feat, num_feat), nn.ReLU(inplace=True), conv(num_feat, num_feat),
                                  ChannelAttention(num_feat, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """`num_block` RCABs + conv, with a short skip.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, num_block: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(*[RCAB(num_feat, reduction) for _ in range(num_block)], conv(num_feat, num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCAN(nn.Module):
    """RCAN; see the module docstring.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_group: int = 10,
                 num_block: int = 20, reduction: int = 16, upsampler: str = "pixelshuffle",
                 rgb_mean: tuple | None = DIV2K_RGB_MEAN):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        self.register_buffer("mean", mean_buffer(rgb_mean, in_ch, out_ch), persistent=False)
        self.head = conv(in_ch, num_feat)
        self.body = nn.Sequential(*[ResidualGroup(num_feat, num_block, reduction) for _ in range(num_group)],
                                  conv(num_feat, num_feat))
        self.tail = nn.Sequential(make_upsampler(upsampler, scale, num_feat), conv(num_feat, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x - self.mean)
        return self.tail(x + self.body(x)) + self.mean


@register_model
def rcan(scale: int = 2, **kw) -> RCAN:
    """RCAN (Zhang et al., ECCV 2018): 10 residual groups x 20 RCABs, 64 features, reduction 16; about 15.4 M at x2."""
    return RCAN(scale=scale, **kw)
