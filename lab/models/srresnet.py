"""SRResNet / the SRGAN generator (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017).

https://arxiv.org/abs/1609.04802 - 9x9 conv + PReLU head; 16 residual blocks (conv-BN-PReLU-conv-BN + skip);
conv-BN and a long skip; x2 sub-pixel steps (conv to 256 channels, PixelShuffle, PReLU); 9x9 conv tail.
64 features, about 1.55 M params at x4. PReLU has one shared slope, as in the usual ports.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import ACTS, NORMS, conv, make_act, make_norm, make_upsampler
from lab.models.registry import register_model


class SRResBlock(nn.Module):
    """conv - norm - act - conv - norm, plus the input.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_feat: int, norm: str = "batch", act: str = "prelu", bias: bool | None = None):
        super().__init__()
        bias = norm == "none" if bias is None else bias  # a bias right before a norm is redundant
        self.body = nn.Sequential(conv(num_feat, num_feat, bias=bias), make_norm(norm, num_feat), make_act(act),
                                  conv(num_feat, num_feat, bias=bias), make_norm(norm, num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet; `norm` from ('batch' | 'instance' | 'none'), `act` from ('prelu' | 'leakyrelu' | 'relu').

    `norm_every` places the norm layers: 1 (the paper) puts two in every residual block; k > 1 normalises only
    between distant layers: the blocks carry none, one norm follows every k-th block (not the last), and the
    body's closing conv keeps its norm before the long skip. `block_norm=False` is log 002's variant: no norm in
    the blocks, the one after the body's closing conv kept.
    Biases: the convs right before a norm have none, the others have one, unless `block_bias` (the residual blocks'
    convs) or `body_bias` (the body's closing conv) say otherwise; `up_bias=False` drops the upsampling convs'
    biases. Log 002's SRResNet: block convs without, the closing conv with, upsampling convs without.
    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 4, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 norm: str = "batch", act: str = "prelu", upsampler: str = "pixelshuffle", norm_every: int = 1,
                 block_norm: bool = True, body_bias: bool | None = None, up_bias: bool = True,
                 block_bias: bool | None = None):
        super().__init__()
        if norm not in NORMS or act not in ACTS:
            raise ValueError(f"norm={norm!r}, act={act!r}; accepted norms: {', '.join(NORMS)}; acts: {', '.join(ACTS)}")
        if isinstance(norm_every, bool) or not isinstance(norm_every, int) or norm_every < 1:
            raise ValueError(f"norm_every={norm_every!r}: expected an int >= 1 (1: a norm in every block, as the "
                             "paper; k > 1: one norm after every k-th block)")
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        self.head = nn.Sequential(conv(in_ch, num_feat, 9), make_act(act))
        bias = norm == "none" if body_bias is None else body_bias
        blocks: list[nn.Module] = []
        for i in range(num_block):
            blocks.append(SRResBlock(num_feat, norm if norm_every == 1 and block_norm else "none", act, block_bias))
            if norm_every > 1 and (i + 1) % norm_every == 0 and i + 1 < num_block:
                blocks.append(make_norm(norm, num_feat))
        self.body = nn.Sequential(*blocks, conv(num_feat, num_feat, bias=bias), make_norm(norm, num_feat))
        self.tail = nn.Sequential(make_upsampler(upsampler, scale, num_feat, act=act, bias=up_bias), conv(num_feat, out_ch, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(x + self.body(x))


@register_model
def srresnet(scale: int = 4, **kw) -> SRResNet:
    """SRResNet (Ledig et al., CVPR 2017): 16 residual blocks, 64 features, BN, PReLU; about 1.55 M params at x4."""
    return SRResNet(scale=scale, **kw)


@register_model
def srgan_g(scale: int = 4, **kw) -> SRResNet:
    """The SRGAN generator (Ledig et al., CVPR 2017): the SRResNet architecture, trained with adversarial loss."""
    return SRResNet(scale=scale, **kw)
