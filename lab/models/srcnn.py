"""SRCNN (Dong et al., "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016).

https://arxiv.org/abs/1501.00092 - the 9-5-5 network with 64 and 32 filters. SRCNN works on a bicubic-upscaled
image; here that upscaling (MATLAB-compatible bicubic) is done inside `forward`, so every lab model takes the
LR image and returns the SR image. 'same' padding keeps the output at full size.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.registry import register_model
from lab.resize import imresize_tensor


class SRCNN(nn.Module):
    """Patch extraction (k1) -> non-linear mapping (k2) -> reconstruction (k3), ReLU between.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 1, out_ch: int | None = None, num_feat: int = 64,
                 num_feat2: int = 32, kernels: tuple[int, int, int] = (9, 5, 5)):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch or in_ch
        k1, k2, k3 = kernels
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, num_feat, k1, padding=k1 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(num_feat, num_feat2, k2, padding=k2 // 2), nn.ReLU(inplace=True),
            nn.Conv2d(num_feat2, self.out_ch, k3, padding=k3 // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale != 1:
            x = imresize_tensor(x, scale=self.scale)
        return self.body(x)


@register_model
def srcnn(scale: int = 2, in_ch: int = 1, **kw) -> SRCNN:
    """SRCNN 9-5-5 on the Y channel (57,281 params), as in the paper; `in_ch=3` for the RGB variant."""
    return SRCNN(scale=scale, in_ch=in_ch, **kw)


@register_model
def srcnn_rgb(scale: int = 2, **kw) -> SRCNN:
    """SRCNN 9-5-5 on RGB (the paper's colour experiment)."""
    return SRCNN(scale=scale, in_ch=3, **kw)
