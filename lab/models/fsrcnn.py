"""FSRCNN (Dong, Loy & Tang, "Accelerating the Super-Resolution Convolutional Neural Network", ECCV 2016).

https://arxiv.org/abs/1608.00367 - works on the LR image directly: feature extraction (5x5, d filters), shrinking
(1x1 to s), m mapping layers (3x3, s filters), expanding (1x1 back to d), and a 9x9 transposed convolution with
stride `scale` as the upsampling tail; PReLU (one slope per channel) after every conv but the last.
Published setting FSRCNN(d=56, s=12, m=4) on the Y channel: 12,809 parameters at any scale.

Here d, s, m are `num_feat`, `shrink`, `num_block`, and the mapping convs' kernel is `map_kernel` (3 published).
`pre_upsample=True` is the variant of log 002: the input is upscaled first (MATLAB bicubic, inside `forward`, as
SRCNN) and the 9x9 deconvolution keeps the size (no stride); the parameter count does not change. The module layout (`first_part`, `mid_part`, `last_part`)
follows the common PyTorch port so its checkpoints load key for key (lab.models.load_pretrained).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lab.models.blocks import NORMS, conv, make_norm, make_upsampler
from lab.models.registry import register_model
from lab.resize import imresize_tensor


class FSRCNN(nn.Module):
    """FSRCNN; `norm` ('none' | 'instance' | 'batch') goes after each mapping conv, before its PReLU.

    `upsampler='deconv'` is the paper's tail: one 9x9 transposed conv straight to `out_ch` (stride `scale`,
    padding 4, output padding scale - 1, so the output is exactly scale x the input). Any other kind from
    lab.models.blocks.UPSAMPLERS upsamples the d features and a 3x3 conv maps them to `out_ch`.
    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 1, out_ch: int | None = None, num_feat: int = 56,
                 shrink: int = 12, num_block: int = 4, norm: str = "none", upsampler: str = "deconv",
                 map_kernel: int = 3, pre_upsample: bool = False):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; accepted: {', '.join(NORMS)}")
        if not isinstance(map_kernel, int) or map_kernel < 1 or map_kernel % 2 == 0:
            raise ValueError(f"map_kernel={map_kernel!r}: expected an odd int >= 1 (3 published, 1 in log 002's "
                             "instance-norm variant)")
        if pre_upsample and upsampler != "deconv":
            raise ValueError(f"pre_upsample=True keeps the size in the tail, so upsampler must be 'deconv', got "
                             f"{upsampler!r}")
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch or in_ch
        self.pre_upsample = pre_upsample
        d, s = num_feat, shrink
        self.first_part = nn.Sequential(conv(in_ch, d, 5), nn.PReLU(d))
        mid: list[nn.Module] = [conv(d, s, 1), nn.PReLU(s)]
        for _ in range(num_block):
            mid += [conv(s, s, map_kernel)] + ([make_norm(norm, s)] if norm != "none" else []) + [nn.PReLU(s)]
        mid += [conv(s, d, 1), nn.PReLU(d)]
        self.mid_part = nn.Sequential(*mid)
        if upsampler == "deconv":
            stride = 1 if pre_upsample else scale
            self.last_part = nn.ConvTranspose2d(d, self.out_ch, 9, stride=stride, padding=4,
                                                output_padding=stride - 1)
        else:
            self.last_part = nn.Sequential(make_upsampler(upsampler, scale, d), conv(d, self.out_ch))
        self._init_weights()

    def _init_weights(self) -> None:
        # the paper's init: He-normal on the convs (fan-out), a narrow N(0, 0.001) on the deconvolution
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.out_channels * m.weight[0][0].numel())))
                nn.init.zeros_(m.bias)
        if isinstance(self.last_part, nn.ConvTranspose2d):
            nn.init.normal_(self.last_part.weight, 0.0, 0.001)
            nn.init.zeros_(self.last_part.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_upsample and self.scale != 1:
            x = imresize_tensor(x, scale=self.scale)
        return self.last_part(self.mid_part(self.first_part(x)))


@register_model
def fsrcnn(scale: int = 2, in_ch: int = 1, **kw) -> FSRCNN:
    """FSRCNN(56, 12, 4) on the Y channel (Dong et al., ECCV 2016): 12,809 params; `in_ch=3` for RGB."""
    return FSRCNN(scale=scale, in_ch=in_ch, **kw)


@register_model
def fsrcnn_rgb(scale: int = 2, **kw) -> FSRCNN:
    """FSRCNN(56, 12, 4) on RGB (Dong et al., ECCV 2016, architecture unchanged, 3 channels in and out)."""
    return FSRCNN(scale=scale, in_ch=3, **kw)


@register_model
def fsrcnn_pre(scale: int = 2, in_ch: int = 1, **kw) -> FSRCNN:
    """FSRCNN(56, 12, 4) on a bicubic-upscaled Y input, the deconvolution without stride (log 002's variant):
    12,809 params, every layer at the HR size."""
    return FSRCNN(scale=scale, in_ch=in_ch, pre_upsample=True, **kw)
