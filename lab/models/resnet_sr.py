"""A super-resolution net built from torchvision's ResNet-18 stages (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385), no pretrained weights.

Design choice: SR networks keep the LR resolution through the body and upsample once at the end (EDSR, RCAN), so
- the stem (7x7 stride-2 conv + max-pool, a 4x reduction) is replaced by a 3x3 stride-1 conv + norm + ReLU;
- `layer1 .. layer{num_stage}` of `torchvision.models.resnet18(weights=None)` are reused as they are (BasicBlocks:
  conv-norm-ReLU-conv-norm + skip, ReLU), except that the stride of the first block of layer2..4 (its 3x3 conv
  and its 1x1 projection shortcut) is set to 1: channels still widen 64 -> 128 -> 256 -> 512 but no downsampling
  happens, so no matching upsampling path (and none of its checkerboard risk) is needed;
- a 3x3 conv maps the last stage back to 64 channels, a long skip adds the stem features, then the chosen
  upsampler and a 3x3 conv to `out_ch`.
`norm` ('batch' as in ResNet, 'instance' or 'none' as EDSR recommends for SR) is passed to torchvision as its
`norm_layer`. Default `num_stage=2` (about 0.9 M params at x2, EDSR-baseline sized); `num_stage=4` uses the whole
11 M-parameter ResNet-18 body at LR resolution.
"""

from __future__ import annotations

import torch
from torch import nn

from lab.models.blocks import NORMS, conv, make_norm, make_upsampler
from lab.models.registry import register_model

STAGE_CH = (64, 128, 256, 512)


class ResNetSR(nn.Module):
    """ResNet-18 stages at LR resolution + long skip + upsampler; see the module docstring.

    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, scale: int = 2, in_ch: int = 3, out_ch: int = 3, num_stage: int = 2, num_block: int = 2,
                 norm: str = "batch", upsampler: str = "pixelshuffle"):
        super().__init__()
        from torchvision.models import resnet18

        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; accepted: {', '.join(NORMS)}")
        if num_stage not in (1, 2, 3, 4):
            raise ValueError(f"num_stage={num_stage!r}: ResNet-18 has stages 1 to 4")
        if num_block not in (1, 2):
            raise ValueError(f"num_block={num_block!r}: ResNet-18 stages have 2 blocks; use 1 or 2 of them")
        self.scale, self.in_ch, self.out_ch = scale, in_ch, out_ch
        feat = STAGE_CH[0]
        net = resnet18(weights=None, num_classes=1, norm_layer=lambda ch: make_norm(norm, ch))
        stages = []
        for i in range(num_stage):
            layer = getattr(net, f"layer{i + 1}")
            first = layer[0]
            first.conv1.stride = (1, 1)
            if first.downsample is not None:
                first.downsample[0].stride = (1, 1)
            stages.append(nn.Sequential(*list(layer)[:num_block]))
        self.head = nn.Sequential(conv(in_ch, feat, bias=norm == "none"), make_norm(norm, feat), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*stages, conv(STAGE_CH[num_stage - 1], feat))
        self.tail = nn.Sequential(make_upsampler(upsampler, scale, feat), conv(feat, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(x + self.body(x))


@register_model
def resnet18_sr(scale: int = 2, **kw) -> ResNetSR:
    """SR net on torchvision ResNet-18 layer1..2 at stride 1 (He et al., CVPR 2016); see lab.models.resnet_sr."""
    return ResNetSR(scale=scale, **kw)
