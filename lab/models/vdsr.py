"""VDSR (Kim, Lee & Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016).

https://arxiv.org/abs/1511.04587 - 20 3x3 conv layers of 64 filters with ReLU, learning the residual between the
bicubic-upscaled input and the HR image (global skip). Like SRCNN, the bicubic upscaling (MATLAB-compatible) is
done inside `forward`, so the model takes the LR image. Y channel by default, as in the paper.
Convs carry no bias (as in the widely used PyTorch port): 664,704 params, the "665K" of the literature.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import conv
from lab.models.registry import register_model
from lab.resize import imresize_tensor

ACTS = ("relu", "swish")


def _act(kind: str) -> nn.Module:
    return nn.ReLU(inplace=True) if kind == "relu" else nn.SiLU(inplace=True)


class VDSR(nn.Module):
    """Head conv + `num_block` conv-act layers + tail conv (num_block + 2 = 20 layers published), plus the input;
    `act` 'relu' (the paper) or 'swish' (SiLU).

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale); out_ch must equal in_ch (global residual).
    """

    def __init__(self, scale: int = 2, in_ch: int = 1, out_ch: int | None = None, num_feat: int = 64,
                 num_block: int = 18, bias: bool = False, act: str = "relu"):
        super().__init__()
        if out_ch not in (None, in_ch):
            raise ValueError(f"VDSR adds its input to the output, so out_ch must equal in_ch={in_ch}; got {out_ch}")
        if act not in ACTS:
            raise ValueError(f"act={act!r}; accepted: {', '.join(ACTS)} (000 ##103 trains VDSR with Swish)")
        self.scale, self.in_ch, self.out_ch = scale, in_ch, in_ch
        layers: list[nn.Module] = [conv(in_ch, num_feat, bias=bias), _act(act)]
        for _ in range(num_block):
            layers += [conv(num_feat, num_feat, bias=bias), _act(act)]
        layers.append(conv(num_feat, in_ch, bias=bias))
        self.body = nn.Sequential(*layers)
        for m in self.modules():  # He init, as in the paper
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale != 1:
            x = imresize_tensor(x, scale=self.scale)
        return x + self.body(x)


@register_model
def vdsr(scale: int = 2, in_ch: int = 1, **kw) -> VDSR:
    """VDSR, 20 layers of 64 filters on the Y channel (Kim et al., CVPR 2016): 664,704 params; `in_ch=3` for RGB."""
    return VDSR(scale=scale, in_ch=in_ch, **kw)
