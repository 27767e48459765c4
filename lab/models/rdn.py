"""RDN (Zhang et al., "Residual Dense Network for Image Super-Resolution", CVPR 2018).

https://arxiv.org/abs/1802.08797 - two shallow convs; D residual dense blocks (RDBs), each of C densely connected
3x3 conv-ReLU layers of growth rate G, a 1x1 local feature fusion back to G0 and a local residual; global feature
fusion (1x1 over the concatenated RDB outputs, then 3x3) with a global residual to the first shallow features;
sub-pixel upsampling and a 3x3 conv to the output. Published: D=16, C=8, G=64, G0=64, about 22.1 M params at x2.
Names here: G0 = `num_feat`, D = `num_block`, C = `num_layer`, G = `growth`.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import conv, make_upsampler
from lab.models.registry import register_model


class RDB(nn.Module):
    """Residual dense block: C conv-ReLU layers each seeing all previous features, 1x1 fusion, local residual.

    Shape: (B, num_feat, H, W) -> (B, num_feat, H, W).
    """

    def __init__(self, num_feat: int = 64, growth: int = 64, num_layer: int = 8):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(conv(num_feat + i * growth, growth), nn.ReLU(inplace=True)) for i in range(num_layer))
        self.fuse = conv(num_feat + num_layer * growth, num_feat, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = x
        for layer in self.layers:
            feats = torch.cat([feats, layer(feats)], dim=1)
        return x + self.fuse(feats)


class RDN(nn.Module):
    """RDN; see the module docstring for the structure and names.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 num_layer: int = 8, growth: int = 64, upsampler: str = "pixelshuffle"):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        self.sfe1 = conv(in_ch, num_feat)
        self.sfe2 = conv(num_feat, num_feat)
        self.blocks = nn.ModuleList(RDB(num_feat, growth, num_layer) for _ in range(num_block))
        self.gff = nn.Sequential(conv(num_block * num_feat, num_feat, 1), conv(num_feat, num_feat))
        self.tail = nn.Sequential(make_upsampler(upsampler, scale, num_feat), conv(num_feat, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.sfe1(x)
        h = self.sfe2(f1)
        outs = []
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        return self.tail(f1 + self.gff(torch.cat(outs, dim=1)))


@register_model
def rdn(scale: int = 2, **kw) -> RDN:
    """RDN (Zhang et al., CVPR 2018), configuration D=16, C=8, G=G0=64: about 22.1 M params at x2."""
    return RDN(scale=scale, **kw)
