"""Building blocks shared by the architectures: conv helpers, norms, activations, attention, upsamplers.

Upsamplers (`make_upsampler(kind, scale, num_feat)`, names in UPSAMPLERS) all map (B, num_feat, H, W) to
(B, num_feat, H*scale, W*scale) in x2 steps for powers of 2 and one x3 step for scale 3:
- 'pixelshuffle': conv to r^2 * C channels + PixelShuffle (Shi et al., CVPR 2016, https://arxiv.org/abs/1609.05158).
- 'pixelshuffle_blur': the same with two anti-checkerboard measures: ICNR initialisation (Aitken et al. 2017,
  https://arxiv.org/abs/1707.02937: the r^2 sub-kernels start equal, so the initial output is a nearest-neighbour
  upsampling with no checkerboard) and a fixed 3x3 binomial blur after each shuffle (the "blur" of Sugawara et al.
  2019 / fastai's PixelShuffle_ICNR; binomial [1, 2, 1] rather than a 2x2 box so it shifts nothing). The blur is
  a non-persistent buffer: it is not trained and not stored in checkpoints.
- 'deconv': transposed convolution, kernel r + 2, stride r, padding 1 (r = 2: the usual 4x4 / 2 / 1).
- 'nearest_conv': nearest-neighbour resize + 3x3 conv (resize-convolution, Odena et al. 2016, ESRGAN's upsampler).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv(in_ch: int, out_ch: int, k: int = 3, bias: bool = True, stride: int = 1, groups: int = 1,
         dilation: int = 1) -> nn.Conv2d:
    """A 'same'-padded convolution (odd `k`; padding grows with `dilation`)."""
    return nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=dilation * (k // 2), bias=bias, groups=groups,
                     dilation=dilation)


def dwsep_conv(in_ch: int, out_ch: int, k: int = 3, bias: bool = True) -> nn.Sequential:
    """Depthwise-separable convolution: a k x k depthwise conv then a 1x1 pointwise conv (MobileNet)."""
    return nn.Sequential(conv(in_ch, in_ch, k, bias=bias, groups=in_ch), conv(in_ch, out_ch, 1, bias=bias))


def mean_buffer(rgb_mean: tuple | None, in_ch: int, out_ch: int) -> torch.Tensor:
    """The mean that RGB models subtract from the input and add back (a zero unless RGB in and out).

    Shape: returns (1, 3, 1, 1) for RGB -> RGB with a mean, else (1, 1, 1, 1), which broadcasts over any channels.
    """
    if rgb_mean is not None and in_ch == 3 and out_ch == 3:
        return torch.tensor(rgb_mean, dtype=torch.float32).view(1, 3, 1, 1)
    return torch.zeros(1, 1, 1, 1)


NORMS = ("batch", "instance", "none")
ACTS = ("relu", "prelu", "leakyrelu")


def make_norm(kind: str, ch: int) -> nn.Module:
    """A normalisation layer by name from NORMS: 'batch', 'instance' (affine) or 'none' (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: {', '.join(NORMS)}")


def make_act(kind: str, ch: int = 1, negative_slope: float = 0.2) -> nn.Module:
    """An activation by name from ACTS; 'prelu' learns `ch` slopes (1 = one shared slope, as in SRGAN)."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "prelu":
        return nn.PReLU(ch)
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope, inplace=True)
    raise ValueError(f"unknown act {kind!r}; accepted: {', '.join(ACTS)}")


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention (RCAN's CA): global mean -> 1x1 down -> ReLU -> 1x1 up -> sigmoid.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        mid = max(1, num_feat // reduction)
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(num_feat, mid, 1), nn.ReLU(inplace=True),
                                conv(mid, num_feat, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


def upsample_steps(scale: int) -> list[int]:
    """The factors an upsampler applies one after another: x2 steps for powers of 2, one x3 step for 3."""
    if isinstance(scale, int) and scale > 1 and scale & (scale - 1) == 0:
        return [2] * int(math.log2(scale))
    if scale == 3:
        return [3]
    if scale == 1:
        return []
    raise ValueError(f"upsampling supports scale 1, 3 and powers of 2 (2, 4, 8); got {scale!r}")


def icnr_(weight: torch.Tensor, r: int) -> torch.Tensor:
    """ICNR init in place: every group of r^2 output channels (one PixelShuffle cell) gets the same kaiming kernel.

    Shape: weight (r^2 * C, C_in, k, k).
    """
    out_ch = weight.shape[0]
    if out_ch % (r * r):
        raise ValueError(f"ICNR needs out channels divisible by r^2 = {r * r}; got {out_ch}")
    sub = torch.empty(out_ch // (r * r), *weight.shape[1:], device=weight.device, dtype=weight.dtype)
    nn.init.kaiming_normal_(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(r * r, dim=0))
    return weight


class FixedBlur(nn.Module):
    """A fixed 3x3 binomial blur ([1, 2, 1] outer product / 16) per channel, replicate-padded; not trained.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, ch: int):
        super().__init__()
        k1 = torch.tensor([1.0, 2.0, 1.0])
        k = (k1[:, None] * k1[None, :]) / 16
        self.register_buffer("kernel", k.expand(ch, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype), groups=x.shape[1])


def _step(kind: str, r: int, num_feat: int, bias: bool = True) -> list[nn.Module]:
    if kind == "pixelshuffle":
        return [conv(num_feat, r * r * num_feat, bias=bias), nn.PixelShuffle(r)]
    if kind == "pixelshuffle_blur":
        c = conv(num_feat, r * r * num_feat)
        icnr_(c.weight, r)
        nn.init.zeros_(c.bias)
        return [c, nn.PixelShuffle(r), FixedBlur(num_feat)]
    if kind == "deconv":
        return [nn.ConvTranspose2d(num_feat, num_feat, r + 2, stride=r, padding=1)]
    if kind == "nearest_conv":
        return [nn.Upsample(scale_factor=r, mode="nearest"), conv(num_feat, num_feat, bias=bias)]
    raise ValueError(f"unknown upsampler {kind!r}; accepted: {', '.join(UPSAMPLERS)}")


UPSAMPLERS = ("pixelshuffle", "pixelshuffle_blur", "deconv", "nearest_conv")


class Upsampler(nn.Sequential):
    """`scale`x feature upsampling by one of UPSAMPLERS, in x2 steps (powers of 2) or one x3 step; see module doc.

    Shape: (B, num_feat, H, W) -> (B, num_feat, H*scale, W*scale).
    """

    def __init__(self, kind: str, scale: int, num_feat: int, act: str | None = None, bias: bool = True):
        if kind not in UPSAMPLERS:
            raise ValueError(f"unknown upsampler {kind!r}; accepted: {', '.join(UPSAMPLERS)}")
        layers: list[nn.Module] = []
        for r in upsample_steps(scale):
            layers += _step(kind, r, num_feat, bias)
            if act is not None:
                layers.append(make_act(act))
        super().__init__(*layers)
        self.kind, self.scale = kind, scale


def make_upsampler(kind: str, scale: int, num_feat: int, act: str | None = None, bias: bool = True) -> nn.Module:
    """Build an upsampler by name (see UPSAMPLERS); `act` (from ACTS) follows every step when given; `bias=False`
    drops the biases of the 'pixelshuffle' and 'nearest_conv' convs."""
    return Upsampler(kind, scale, num_feat, act=act, bias=bias)
