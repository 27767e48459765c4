"""Building blocks shared by the architectures: conv helpers, residual blocks, upsamplers."""

from __future__ import annotations

import math

from torch import nn


def conv(in_ch: int, out_ch: int, k: int = 3, bias: bool = True, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A 'same'-padded convolution."""
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=k // 2, bias=bias, groups=groups)


UPSAMPLERS = ("pixelshuffle",)


class PixelShuffleUpsampler(nn.Sequential):
    """Sub-pixel upsampling (Shi et al., 2016): conv to r^2 * C channels + PixelShuffle, x2 steps for 2^n, one x3 step."""

    def __init__(self, scale: int, num_feat: int):
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0 and scale > 1:
            for _ in range(int(math.log2(scale))):
                layers += [conv(num_feat, 4 * num_feat), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv(num_feat, 9 * num_feat), nn.PixelShuffle(3)]
        elif scale != 1:
            raise ValueError(f"PixelShuffle upsampling supports scale 1, 3 and powers of 2; got {scale}")
        super().__init__(*layers)


def make_upsampler(kind: str, scale: int, num_feat: int) -> nn.Module:
    """Build an upsampler by name; see UPSAMPLERS for the accepted names."""
    if kind == "pixelshuffle":
        return PixelShuffleUpsampler(scale, num_feat)
    raise ValueError(f"unknown upsampler {kind!r}; accepted: {', '.join(UPSAMPLERS)}")
