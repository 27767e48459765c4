"""IMDN (Hui, Gao, Yang & Wang, "Lightweight Image Super-Resolution with Information Multi-distillation Network",
ACM MM 2019) and its ultra-light real-time variant IMDN-RTC (AIM 2019 constrained SR challenge).

https://arxiv.org/abs/1909.11856 - information multi-distillation blocks (IMDBs): a 3x3 conv, then three times
"split off `distill_rate` of the channels (kept), refine the rest with a 3x3 conv"; the four kept parts are
concatenated, reweighted by contrast-aware channel attention (CCA: per-channel standard deviation + mean, then a
1x1 squeeze-excite), fused by a 1x1 conv and added to the block input. LeakyReLU(0.05) after the first three convs.
IMDN: 3x3 head, 6 IMDBs, 1x1 fusion of all block outputs + LeakyReLU, 3x3 conv, long skip, then one conv to
out_ch * scale^2 + PixelShuffle(scale). 64 features: 694,404 params at x2.
IMDN-RTC: 12 features, 5 IMDBs without CCA (`attention=False`), a 1x1 conv closing a long skip over the blocks,
the same tail; 20,190 params at x2. Module names differ from the official code; lab.models.load_pretrained maps them.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import conv, dwsep_conv, make_upsampler
from lab.models.registry import register_model

CONVS = ("standard", "dwsep")


def _conv3(in_ch: int, out_ch: int, kind: str) -> nn.Module:
    if kind == "standard":
        return conv(in_ch, out_ch, 3)
    if kind == "dwsep":
        return dwsep_conv(in_ch, out_ch, 3)
    raise ValueError(f"unknown conv kind {kind!r}; accepted: {', '.join(CONVS)}")


def channel_std(x: torch.Tensor) -> torch.Tensor:
    """Per-channel standard deviation over the spatial dims (population, as IMDN's contrast).

    Shape: (B, C, H, W) -> (B, C, 1, 1).
    """
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()


class ContrastChannelAttention(nn.Module):
    """Contrast-aware channel attention: sigmoid(1x1 up(ReLU(1x1 down(std + mean)))) scales the channels.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        mid = max(1, num_feat // reduction)
        self.fc = nn.Sequential(conv(num_feat, mid, 1), nn.ReLU(inplace=True), conv(mid, num_feat, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(channel_std(x) + x.mean(dim=(2, 3), keepdim=True))


class IMDB(nn.Module):
    """Information multi-distillation block; `attention=False` is the RTC ("speed") block, `conv_kind='dwsep'` replaces
    the 3x3 convs by depthwise + pointwise.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int = 64, distill_rate: float = 0.25, attention: bool = True,
                 conv_kind: str = "standard", negative_slope: float = 0.05, reduction: int = 16):
        super().__init__()
        self.dc = int(num_feat * distill_rate)
        self.rc = num_feat - self.dc
        if self.dc < 1:
            raise ValueError(f"num_feat={num_feat} x distill_rate={distill_rate} keeps no channel; raise either")
        self.c1 = _conv3(num_feat, num_feat, conv_kind)
        self.c2 = _conv3(self.rc, num_feat, conv_kind)
        self.c3 = _conv3(self.rc, num_feat, conv_kind)
        self.c4 = _conv3(self.rc, self.dc, conv_kind)
        self.act = nn.LeakyReLU(negative_slope, inplace=True)
        self.c5 = conv(4 * self.dc, num_feat, 1)
        self.cca = ContrastChannelAttention(4 * self.dc, reduction) if attention else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = []
        h = x
        for c in (self.c1, self.c2, self.c3):
            d, h = torch.split(self.act(c(h)), (self.dc, self.rc), dim=1)
            kept.append(d)
        kept.append(self.c4(h))
        return x + self.c5(self.cca(torch.cat(kept, dim=1)))


def _tail(upsampler: str, scale: int, num_feat: int, out_ch: int) -> nn.Sequential:
    """IMDN's tail: 'pixelshuffle' is the paper's single conv to out_ch * scale^2 + PixelShuffle(scale)."""
    if upsampler == "pixelshuffle":
        return nn.Sequential(conv(num_feat, out_ch * scale * scale), nn.PixelShuffle(scale))
    return nn.Sequential(make_upsampler(upsampler, scale, num_feat), conv(num_feat, out_ch))


class IMDN(nn.Module):
    """IMDN; see the module docstring. `conv_kind='dwsep'` makes the depthwise-separable variant (blocks + LR conv);
    `lr_conv` sets the LR conv's kind apart ('standard' with dwsep blocks is log 003's IMDModule_dw network, whose
    text replaces the convs inside the modules only).

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 6,
                 distill_rate: float = 0.25, reduction: int = 16, conv_kind: str = "standard",
                 upsampler: str = "pixelshuffle", lr_conv: str | None = None):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        self.head = conv(in_ch, num_feat)
        self.blocks = nn.ModuleList(IMDB(num_feat, distill_rate, True, conv_kind, reduction=reduction)
                                    for _ in range(num_block))
        self.fuse = nn.Sequential(conv(num_block * num_feat, num_feat, 1), nn.LeakyReLU(0.05, inplace=True))
        self.lr_conv = _conv3(num_feat, num_feat, lr_conv or conv_kind)
        self.tail = _tail(upsampler, scale, num_feat, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        outs, h = [], f
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        return self.tail(f + self.lr_conv(self.fuse(torch.cat(outs, dim=1))))


class IMDNRTC(nn.Module):
    """IMDN-RTC: head conv, `num_block` IMDBs without attention + 1x1 conv under a long skip, PixelShuffle tail.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 12, num_block: int = 5,
                 distill_rate: float = 0.25, upsampler: str = "pixelshuffle"):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        self.head = conv(in_ch, num_feat)
        self.body = nn.Sequential(*[IMDB(num_feat, distill_rate, attention=False) for _ in range(num_block)],
                                  conv(num_feat, num_feat, 1))
        self.tail = _tail(upsampler, scale, num_feat, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.head(x)
        return self.tail(f + self.body(f))


@register_model
def imdn(scale: int = 2, **kw) -> IMDN:
    """IMDN (Hui et al., ACM MM 2019): 6 IMDBs, 64 features, distillation rate 0.25; 694,404 params at x2."""
    return IMDN(scale=scale, **kw)


@register_model
def imdn_rtc(scale: int = 2, **kw) -> IMDNRTC:
    """IMDN-RTC (Hui et al., official code, AIM 2019 real-time track): 12 features, 5 blocks; 20,190 params at x2."""
    return IMDNRTC(scale=scale, **kw)


@register_model
def imdn_dw(scale: int = 2, **kw) -> IMDN:
    """IMDN (Hui et al., ACM MM 2019) with depthwise-separable 3x3 convs in the blocks and the LR conv."""
    return IMDN(scale=scale, **{"conv_kind": "dwsep", **kw})


@register_model
def imdn_dw_003(scale: int = 3, **kw) -> IMDN:
    """Log 003's depthwise IMDN ("1st嘗試使用depthwise convolution"): 40 features, 6 modules with depthwise-separable
    3x3 convs and CCA, the LR conv a standard 3x3; 80,379 params at x3 (the log: 81,345, see tests/test_logs.py)."""
    return IMDN(scale=scale, **{"num_feat": 40, "num_block": 6, "conv_kind": "dwsep", "lr_conv": "standard", **kw})
