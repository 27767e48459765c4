"""Discriminators for adversarial restoration losses; every one outputs logits (no sigmoid).

- `disc_simple`: a small strided conv stack, global average pool, one linear logit per image.
- `disc_vgg`: the SRGAN discriminator (Ledig et al., CVPR 2017, https://arxiv.org/abs/1609.04802, fig. 4): 8 3x3
  convs 64-64-128-128-256-256-512-512 (x `num_feat` / 64), stride 2 on every second, BN, LeakyReLU 0.2, dense 1024,
  dense 1. An adaptive average pool to `pool_size` x `pool_size` before the dense layers lets it take any input size
  >= 16; with 96x96 inputs and `pool_size=6` it is exactly the paper's network (the pool is then the identity).
- `disc_patch`: the pix2pix PatchGAN (Isola et al., CVPR 2017, https://arxiv.org/abs/1611.07004): with
  `num_layers=3`, 4x4 convs C64-C128-C256-C512 and a 1-channel conv, each output logit sees a 70x70 input patch.

Image-level discriminators return (B,) logits, the shape fastai's GANLearner losses expect; the PatchGAN returns a
(B, 1, h, w) map of logits. Conditional variants: `cond_ch > 0` makes `forward(x, cond)` concatenate a condition
image (e.g. the LR input) to `x`; a condition of another size is resized to `x` with bicubic interpolation first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from lab.models.registry import register_model

DISC_NORMS = ("batch", "instance", "none", "spectral")


def _conv_norm_act(in_ch: int, out_ch: int, k: int, stride: int, padding: int, norm: str,
                   act: bool = True) -> list[nn.Module]:
    """conv + norm + LeakyReLU(0.2); 'spectral' wraps the conv in spectral normalisation instead of a norm layer."""
    if norm not in DISC_NORMS:
        raise ValueError(f"norm={norm!r} is not supported; accepted: {', '.join(map(repr, DISC_NORMS))}")
    c = nn.Conv2d(in_ch, out_ch, k, stride=stride, padding=padding, bias=norm in ("none", "spectral"))
    layers: list[nn.Module] = [spectral_norm(c) if norm == "spectral" else c]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(out_ch))
    elif norm == "instance":
        layers.append(nn.InstanceNorm2d(out_ch, affine=True))
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class _Discriminator(nn.Module):
    """Shared input handling: checks the channels and joins the condition image when `cond_ch > 0`."""

    def __init__(self, in_ch: int, cond_ch: int, num_feat: int):
        super().__init__()
        if in_ch < 1 or cond_ch < 0 or num_feat < 1:
            raise ValueError(f"in_ch={in_ch}, cond_ch={cond_ch}, num_feat={num_feat}: expected in_ch >= 1, "
                             "cond_ch >= 0, num_feat >= 1")
        self.in_ch, self.cond_ch, self.num_feat = in_ch, cond_ch, num_feat

    def _join(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"expected input (B, {self.in_ch}, H, W), got {tuple(x.shape)}")
        if self.cond_ch == 0:
            if cond is not None:
                raise ValueError("this discriminator is unconditional (cond_ch=0) but got `cond`; "
                                 "build it with cond_ch=<channels of the condition>")
            return x
        if cond is None:
            raise ValueError(f"this discriminator is conditional (cond_ch={self.cond_ch}): call it as d(x, cond)")
        if cond.ndim != 4 or cond.shape[1] != self.cond_ch or cond.shape[0] != x.shape[0]:
            raise ValueError(f"expected cond (B={x.shape[0]}, {self.cond_ch}, h, w), got {tuple(cond.shape)}")
        if cond.shape[-2:] != x.shape[-2:]:
            cond = F.interpolate(cond, size=x.shape[-2:], mode="bicubic", align_corners=False)
        return torch.cat([x, cond.to(x.dtype)], dim=1)


class SimpleDiscriminator(_Discriminator):
    """conv3x3 + LeakyReLU, then `num_layers` 4x4 stride-2 conv-norm-LeakyReLU (channels doubling, capped at
    8 * num_feat), global average pool, linear -> one logit per image.

    Shape: (B, in_ch, H, W) [+ cond (B, cond_ch, h, w)] -> (B,).
    """

    def __init__(self, in_ch: int = 3, num_feat: int = 64, num_layers: int = 3, norm: str = "batch",
                 cond_ch: int = 0):
        super().__init__(in_ch, cond_ch, num_feat)
        if num_layers < 0:
            raise ValueError(f"num_layers={num_layers!r}: expected an int >= 0")
        layers = _conv_norm_act(in_ch + cond_ch, num_feat, 3, 1, 1, "spectral" if norm == "spectral" else "none")
        ch = num_feat
        for _ in range(num_layers):
            nxt = min(2 * ch, 8 * num_feat)
            layers += _conv_norm_act(ch, nxt, 4, 2, 1, norm)
            ch = nxt
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(self._join(x, cond))).flatten()


class VGGDiscriminator(_Discriminator):
    """The SRGAN discriminator with an adaptive pool before the dense layers (see the module docstring).

    Shape: (B, in_ch, H >= 16, W >= 16) [+ cond (B, cond_ch, h, w)] -> (B,).
    """

    def __init__(self, in_ch: int = 3, num_feat: int = 64, norm: str = "batch", cond_ch: int = 0,
                 pool_size: int = 4, dense: int = 1024):
        super().__init__(in_ch, cond_ch, num_feat)
        if pool_size < 1 or dense < 1:
            raise ValueError(f"pool_size={pool_size!r}, dense={dense!r}: expected ints >= 1")
        mults = (1, 1, 2, 2, 4, 4, 8, 8)
        layers = _conv_norm_act(in_ch + cond_ch, num_feat, 3, 1, 1, "spectral" if norm == "spectral" else "none")
        for i in range(1, len(mults)):
            layers += _conv_norm_act(num_feat * mults[i - 1], num_feat * mults[i], 3, 1 + i % 2, 1, norm)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(pool_size), nn.Flatten(),
                                  nn.Linear(8 * num_feat * pool_size * pool_size, dense),
                                  nn.LeakyReLU(0.2, inplace=True), nn.Linear(dense, 1))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(self._join(x, cond))).flatten()


class PatchDiscriminator(_Discriminator):
    """PatchGAN: `num_layers` 4x4 stride-2 convs (the first without norm), one 4x4 stride-1 conv-norm, a 4x4 conv to
    one channel; receptive field 70 px for num_layers=3 (34 for 2, 142 for 4).

    Shape: (B, in_ch, H, W) [+ cond] -> (B, 1, H / 2**num_layers - 2, W / 2**num_layers - 2) for H, W multiples
    of 2**num_layers (H >= 2**(num_layers+1)).
    """

    def __init__(self, in_ch: int = 3, num_feat: int = 64, num_layers: int = 3, norm: str = "batch",
                 cond_ch: int = 0):
        super().__init__(in_ch, cond_ch, num_feat)
        if num_layers < 1:
            raise ValueError(f"num_layers={num_layers!r}: expected an int >= 1 (pix2pix's 70x70 PatchGAN uses 3)")
        layers = _conv_norm_act(in_ch + cond_ch, num_feat, 4, 2, 1, "spectral" if norm == "spectral" else "none")
        ch = num_feat
        for n in range(1, num_layers + 1):
            nxt = num_feat * min(2**n, 8)
            layers += _conv_norm_act(ch, nxt, 4, 2 if n < num_layers else 1, 1, norm)
            ch = nxt
        last = nn.Conv2d(ch, 1, 4, stride=1, padding=1)
        layers.append(spectral_norm(last) if norm == "spectral" else last)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.features(self._join(x, cond))


@register_model
def disc_simple(in_ch: int = 3, **kw) -> SimpleDiscriminator:
    """Small image-level discriminator: 64 features, 3 stride-2 stages, BN; (B,) logits."""
    return SimpleDiscriminator(in_ch=in_ch, **kw)


@register_model
def disc_vgg(in_ch: int = 3, **kw) -> VGGDiscriminator:
    """SRGAN's VGG-style discriminator (8 convs 64->512, BN, LeakyReLU 0.2, dense 1024); (B,) logits."""
    return VGGDiscriminator(in_ch=in_ch, **kw)


@register_model
def disc_patch(in_ch: int = 3, **kw) -> PatchDiscriminator:
    """pix2pix 70x70 PatchGAN (BN); (B, 1, h, w) logits; `cond_ch=3` for the conditional version."""
    return PatchDiscriminator(in_ch=in_ch, **kw)
