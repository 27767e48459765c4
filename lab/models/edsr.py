"""EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017).

https://arxiv.org/abs/1707.02921 - residual blocks without batch norm, residual scaling, global skip,
PixelShuffle tail. Inputs are RGB in [0, 1]; the DIV2K RGB mean is subtracted and added back as in the paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lab.models.blocks import conv, make_upsampler, mean_buffer
from lab.models.registry import register_model

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
SKIPS = ("none", "bicubic")
TAILS = ("upsampler", "direct")


class ResBlock(nn.Module):
    """conv-ReLU-conv (k x k) with the residual scaled by `res_scale` (0.1 in the 256-feature EDSR)."""

    def __init__(self, num_feat: int, res_scale: float = 1.0, k: int = 3):
        super().__init__()
        self.body = nn.Sequential(conv(num_feat, num_feat, k), nn.ReLU(inplace=True), conv(num_feat, num_feat, k))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """EDSR: head conv, `num_block` residual blocks + conv with a long skip, upsampler, tail conv.

    `skip="bicubic"` adds the bicubically upscaled input to the output, so the network learns only the residual
    detail (as VDSR does): with few training steps it starts at bicubic quality instead of at noise. The paper's
    EDSR has no such skip (`skip="none"`, the default). `tail="direct"` replaces the paper's tail (feature
    upsampler + conv at HR) by one conv to out_ch * scale^2 channels + PixelShuffle (ESPCN's and IMDN's tail):
    for a narrow network the feature upsampler is a third of the compute.
    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 res_scale: float = 1.0, upsampler: str = "pixelshuffle", rgb_mean: tuple | None = DIV2K_RGB_MEAN,
                 skip: str = "none", tail: str = "upsampler"):
        super().__init__()
        if skip not in SKIPS:
            raise ValueError(f"skip={skip!r}: expected one of {SKIPS}")
        if tail not in TAILS:
            raise ValueError(f"tail={tail!r}: expected one of {TAILS}")
        if tail == "direct" and upsampler != "pixelshuffle":
            raise ValueError(f"tail='direct' is a conv + PixelShuffle; upsampler={upsampler!r} needs tail='upsampler'")
        if skip == "bicubic" and in_ch != out_ch:
            raise ValueError(f"skip='bicubic' adds the upscaled input to the output: needs in_ch == out_ch, got "
                             f"{in_ch} -> {out_ch}")
        self.scale, self.in_ch, self.out_ch, self.skip = scale, in_ch, out_ch, skip
        self.register_buffer("mean", mean_buffer(rgb_mean, in_ch, out_ch), persistent=False)
        self.head = conv(in_ch, num_feat)
        self.body = nn.Sequential(*[ResBlock(num_feat, res_scale) for _ in range(num_block)], conv(num_feat, num_feat))
        self.tail = nn.Sequential(conv(num_feat, out_ch * scale * scale), nn.PixelShuffle(scale)) if tail == "direct" \
            else nn.Sequential(make_upsampler(upsampler, scale, num_feat), conv(num_feat, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.mean if self.skip == "none" else F.interpolate(x, scale_factor=self.scale, mode="bicubic",
                                                                   align_corners=False)
        f = self.head(x - self.mean)
        f = f + self.body(f)
        return self.tail(f) + base


@register_model
def edsr_baseline(scale: int = 2, **kw) -> EDSR:
    """EDSR baseline: 16 residual blocks, 64 features, no residual scaling (about 1.37 M params at x2)."""
    return EDSR(scale=scale, **{"num_feat": 64, "num_block": 16, "res_scale": 1.0, **kw})


@register_model
def edsr(scale: int = 2, **kw) -> EDSR:
    """EDSR full: 32 residual blocks, 256 features, residual scaling 0.1 (about 40.7 M params at x2)."""
    return EDSR(scale=scale, **{"num_feat": 256, "num_block": 32, "res_scale": 0.1, **kw})


class MDSR(nn.Module):
    """MDSR (Lim et al., CVPRW 2017, same paper as EDSR): one network for several scales.

    A shared head conv; per scale a pre-processing module of two residual blocks with 5x5 kernels; a shared body
    of `num_block` residual blocks + conv with a long skip; per scale an upsampler; a shared tail conv.
    `forward` uses `self.scale` (settable to any of `scales`: `model.scale = 3`).
    Published: 80 blocks, 64 features, scales 2/3/4, about 8.0 M params.
    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 80,
                 scales: tuple[int, ...] = (2, 3, 4), res_scale: float = 1.0, upsampler: str = "pixelshuffle",
                 rgb_mean: tuple | None = DIV2K_RGB_MEAN):
        super().__init__()
        self.scales = tuple(int(s) for s in scales)
        self.in_ch, self.out_ch = in_ch, out_ch
        self.scale = scale
        self.register_buffer("mean", mean_buffer(rgb_mean, in_ch, out_ch), persistent=False)
        self.head = conv(in_ch, num_feat)
        self.pre = nn.ModuleDict({
            str(s): nn.Sequential(*[ResBlock(num_feat, k=5) for _ in range(2)]) for s in self.scales})
        self.body = nn.Sequential(*[ResBlock(num_feat, res_scale) for _ in range(num_block)], conv(num_feat, num_feat))
        self.up = nn.ModuleDict({str(s): make_upsampler(upsampler, s, num_feat) for s in self.scales})
        self.tail = conv(num_feat, out_ch)

    @property
    def scale(self) -> int:
        """The scale `forward` runs at; one of `scales`."""
        return self._scale

    @scale.setter
    def scale(self, value: int) -> None:
        if value not in self.scales:
            raise ValueError(f"MDSR scale {value!r} not built; this model has scales {self.scales}")
        self._scale = int(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = str(self.scale)
        x = self.pre[s](self.head(x - self.mean))
        x = x + self.body(x)
        return self.tail(self.up[s](x)) + self.mean


@register_model
def mdsr(scale: int = 2, **kw) -> MDSR:
    """MDSR (Lim et al., CVPRW 2017): 80 residual blocks, 64 features, x2/x3/x4 heads and tails; about 8.0 M params."""
    return MDSR(scale=scale, **kw)
