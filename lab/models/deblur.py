"""Deblurring generators (scale 1: same size in and out; scale > 1 for SR, see below), after SRN-DeblurNet and the GAN deblurring generators.

- `srn`: Tao et al., "Scale-recurrent Network for Deep Image Deblurring", CVPR 2018, https://arxiv.org/abs/1802.01770 -
  one encoder-decoder applied coarse-to-fine at 3 scales with shared weights; each scale sees its blurry input
  concatenated with the upsampled estimate of the previous scale, and a ConvLSTM at the bottleneck carries its
  state across scales (the paper's "scale-recurrent" part). The paper uses 5x5 kernels, channels 32/64/128 and
  3 residual blocks per stage, no normalisation.
- `resunet`: a residual U-Net, concatenation skips between encoder and decoder.
- `resnet_generator`: a plain residual net without encoder-decoder skips (the DeblurGAN generator of Kupyn et al.,
  CVPR 2018, https://arxiv.org/abs/1711.07064: two downsamplings, residual blocks at 1/4 size, two upsamplings).

All three share one knob vocabulary: `norm`, `act`, `se`, `bias`, `res_bias`, `channels`, `num_block`, `decoder`,
`down`, `antialias`, `skip`, `tanh`, `kernel`. `num_block` is one count for every stage, one per stage (encoder and
decoder alike), or the notation of log 000 (##76-##81, e.g. "ResBlocks: 0, 1, 2, 8, 2, 1, 0"): 2n - 1 counts along
the path, encoder stages 0..n-1 then decoder stages n-2..0, the bottleneck counted once. `decoder` orders each
decoder block of that notation: 'blocks_last' (upsampling, then its residual blocks at the finer level) or
'blocks_first' (its residual blocks at the coarser level, then upsampling; 000 ##81 switches to it). With one
count per stage the order does not change the network.

With `scale` > 1 the generators do super-resolution as log 000 ##200-##205 use them: the input is upscaled first
(MATLAB bicubic, inside `forward`, as SRCNN and VDSR here; the log does not say how its SR input was formed) and
the generator restores it at the output size, the end-to-end skip adding the upscaled image. The encoder halves the size at each stage after the first, so every model pads its input
by reflection to a multiple of `model.size_multiple` inside `forward` and crops the output back; any input size works.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lab.infer import reflect_pad
from lab.models.registry import register_model
from lab.resize import imresize_tensor

NORMS = ("instance", "batch", "none")
ACTS = ("relu", "swish", "leaky")
DOWNS = ("strided", "space_to_depth")
CELLS = ("lstm", "gru", "none")
FUSES = ("add", "concat", "none")
DECODERS = ("blocks_last", "blocks_first")


def _check_choice(name: str, value: object, accepted: Sequence[str]) -> None:
    if value not in accepted:
        raise ValueError(f"{name}={value!r} is not supported; accepted: {', '.join(map(repr, accepted))}")


def make_norm(kind: str, ch: int) -> nn.Module:
    """A normalisation layer by name: 'instance' (affine), 'batch' or 'none'."""
    _check_choice("norm", kind, NORMS)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    return nn.Identity()


def make_act(kind: str) -> nn.Module:
    """An activation by name: 'relu', 'swish' (SiLU) or 'leaky' (LeakyReLU 0.2)."""
    _check_choice("act", kind, ACTS)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "swish":
        return nn.SiLU(inplace=True)
    return nn.LeakyReLU(0.2, inplace=True)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation channel gate (Hu et al., CVPR 2018): global pool -> bottleneck MLP -> sigmoid scale.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, ch: int, reduction: int = 8):
        super().__init__()
        hidden = max(ch // reduction, 4)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, ch, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class Blur(nn.Module):
    """Fixed [1, 2, 1] x [1, 2, 1] / 16 depthwise low-pass with reflection padding (anti-aliasing, Zhang ICML 2019).

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, ch: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16.0
        self.register_buffer("kernel", k.expand(ch, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode=mode), self.kernel.to(x.dtype), groups=x.shape[1])


class ResBlock(nn.Module):
    """conv-norm-act-conv-norm (+ squeeze-excitation) with an identity skip.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, ch: int, kernel: int = 3, norm: str = "none", act: str = "relu", se: bool = False,
                 bias: bool = True):
        super().__init__()
        layers = [nn.Conv2d(ch, ch, kernel, padding=kernel // 2, bias=bias), make_norm(norm, ch), make_act(act),
                  nn.Conv2d(ch, ch, kernel, padding=kernel // 2, bias=bias), make_norm(norm, ch)]
        if se:
            layers.append(SqueezeExcite(ch))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _down(in_ch: int, out_ch: int, kernel: int, down: str, antialias: bool, bias: bool) -> nn.Sequential:
    """Halve the size: optional blur, then a stride-2 conv or PixelUnshuffle(2) + conv."""
    _check_choice("down", down, DOWNS)
    layers: list[nn.Module] = [Blur(in_ch)] if antialias else []
    if down == "strided":
        layers.append(nn.Conv2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2, bias=bias))
    else:
        layers += [nn.PixelUnshuffle(2), nn.Conv2d(4 * in_ch, out_ch, kernel, padding=kernel // 2, bias=bias)]
    return nn.Sequential(*layers)


def _up(in_ch: int, out_ch: int, antialias: bool, bias: bool) -> nn.Sequential:
    """Double the size: 4x4 stride-2 transposed conv (as SRN), then optional blur."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias)]
    if antialias:
        layers.append(Blur(out_ch))
    return nn.Sequential(*layers)


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell (Shi et al., NeurIPS 2015) as used at SRN's bottleneck; state = (h, c).

    Shape: x (B, C, h, w), state None or two (B, C, h, w) -> h (B, C, h, w), new state.
    """

    def __init__(self, ch: int, kernel: int = 3):
        super().__init__()
        self.gates = nn.Conv2d(2 * ch, 4 * ch, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h, c = state if state is not None else (torch.zeros_like(x), torch.zeros_like(x))
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvGRUCell(nn.Module):
    """Convolutional GRU cell (Ballas et al., ICLR 2016), a lighter alternative to the ConvLSTM; state = (h,).

    Shape: x (B, C, h, w), state None or one (B, C, h, w) -> h (B, C, h, w), new state.
    """

    def __init__(self, ch: int, kernel: int = 3):
        super().__init__()
        self.gates = nn.Conv2d(2 * ch, 2 * ch, kernel, padding=kernel // 2)
        self.cand = nn.Conv2d(2 * ch, ch, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        h = state[0] if state is not None else torch.zeros_like(x)
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        n = torch.tanh(self.cand(torch.cat([x, r * h], dim=1)))
        h = (1 - z) * h + z * n
        return h, (h,)


def _as_list(num_block: int | Sequence[int], n: int, decoder: str = "blocks_last") -> tuple[list[int], list[int]]:
    """(encoder, decoder) residual blocks per level from one count, n counts, or 2n - 1 counts along the path (the
    decoder's count j at level j after its upsampling, 'blocks_last', or at level j + 1 before it, 'blocks_first')."""
    blocks = [num_block] * n if isinstance(num_block, int) else [int(b) for b in num_block]
    if len(blocks) not in (n, 2 * n - 1) or any(b < 0 for b in blocks):
        raise ValueError(f"num_block={num_block!r}: expected an int >= 0, one per stage ({n} stages) or one per "
                         f"stage along the path ({2 * n - 1}: encoder 0..{n - 1}, then decoder {n - 2}..0)")
    if len(blocks) == n:
        return blocks, blocks
    dec = blocks[n:][::-1]  # decoder block j's count, j = 0..n-2
    return blocks[:n], (dec + [0] if decoder == "blocks_last" else [0] + dec)


class EncoderDecoder(nn.Module):
    """The network inside every deblurring generator: encoder stages, optional recurrent cell, mirrored decoder.

    Stage i has `num_block[i]` residual blocks in the encoder and as many in the decoder (or the path notation of
    the module doc, where `decoder` says on which side of its upsampling each decoder block's count lands);
    stages after the first halve the size (`down`) and the decoder doubles it back (transposed conv). `fuse` joins encoder features to the
    decoder at each level: 'add' (SRN), 'concat' + 1x1 conv (U-Net) or 'none' (plain residual net).
    `bias` switches the body's conv biases (redundant before a norm), `res_bias` those of the residual blocks alone
    (None: as `bias`; 000 ##64 removes them there, ##65 everywhere); the last conv always has one.
    Shape: (B, in_ch, H, W) with H, W multiples of 2**(len(channels)-1) -> (B, out_ch, H, W), plus the cell state.
    """

    def __init__(self, in_ch: int, out_ch: int, channels: Sequence[int], num_block: int | Sequence[int],
                 kernel: int, norm: str, act: str, se: bool, bias: bool, down: str, antialias: bool,
                 fuse: str, cell: str = "none", res_bias: bool | None = None, decoder: str = "blocks_last"):
        super().__init__()
        for name, value, accepted in (("norm", norm, NORMS), ("act", act, ACTS), ("down", down, DOWNS),
                                      ("fuse", fuse, FUSES), ("cell", cell, CELLS), ("decoder", decoder, DECODERS)):
            _check_choice(name, value, accepted)
        channels = [int(c) for c in channels]
        if not channels or any(c < 1 for c in channels):
            raise ValueError(f"channels={channels!r}: expected a non-empty list of positive ints, e.g. [32, 64, 128]")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel={kernel!r}: expected an odd int >= 1, e.g. 3 or 5")
        enc_blocks, dec_blocks = _as_list(num_block, len(channels), decoder)
        self.fuse = fuse
        rb = bias if res_bias is None else res_bias

        def res(ch: int, n: int) -> nn.Sequential:
            return nn.Sequential(*[ResBlock(ch, kernel, norm, act, se, rb) for _ in range(n)])

        self.head = nn.Sequential(nn.Conv2d(in_ch, channels[0], kernel, padding=kernel // 2, bias=bias),
                                  make_norm(norm, channels[0]), make_act(act))
        self.downs = nn.ModuleList(_down(channels[i - 1], channels[i], kernel, down, antialias, bias)
                                   for i in range(1, len(channels)))
        self.enc = nn.ModuleList(res(c, n) for c, n in zip(channels, enc_blocks))
        self.cell = {"lstm": ConvLSTMCell, "gru": ConvGRUCell}[cell](channels[-1]) if cell != "none" else None
        self.dec = nn.ModuleList(res(c, n) for c, n in zip(channels, dec_blocks))
        self.ups = nn.ModuleList(_up(channels[i], channels[i - 1], antialias, bias) for i in range(1, len(channels)))
        self.fusers = nn.ModuleList(nn.Conv2d(2 * channels[i], channels[i], 1, bias=bias) if fuse == "concat"
                                    else nn.Identity() for i in range(len(channels) - 1))
        self.tail = nn.Conv2d(channels[0], out_ch, kernel, padding=kernel // 2, bias=True)
        self.size_multiple = 2 ** (len(channels) - 1)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, ...] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        x = self.enc[0](self.head(x))
        feats = [x]
        for down, enc in zip(self.downs, self.enc[1:]):
            x = enc(down(x))
            feats.append(x)
        if self.cell is not None:
            x, state = self.cell(x, state)
        for i in range(len(self.dec) - 1, -1, -1):
            x = self.dec[i](x)
            if i > 0:
                x = self._join(self.ups[i - 1](x), feats[i - 1], i - 1)
        return self.tail(x), state

    def _join(self, x: torch.Tensor, skip: torch.Tensor, i: int) -> torch.Tensor:
        """The encoder's features of level `i` joined to the decoder's: 'add', 'concat' + 1x1 conv, or 'none'."""
        if self.fuse == "add":
            return x + skip
        if self.fuse == "concat":
            return self.fusers[i](torch.cat([x, skip], dim=1))
        return x


class _DeblurBase(nn.Module):
    """Shared output handling: end-to-end skip and optional tanh (see `_finish`)."""

    scale = 1

    def _check_io(self, in_ch: int, out_ch: int, skip: bool, scale: int = 1) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale={scale!r}: expected an int >= 1 (1: deblurring; > 1: SR on the upscaled input)")
        self.scale = scale
        if skip and out_ch > in_ch:
            raise ValueError(f"skip=True adds the input to the output, so out_ch ({out_ch}) must be <= in_ch "
                             f"({in_ch}); set skip=False or out_ch={in_ch}")

    def _upscale(self, x: torch.Tensor) -> torch.Tensor:
        """The input at the output size: MATLAB-bicubic upscaling when scale > 1."""
        return imresize_tensor(x, scale=self.scale) if self.scale != 1 else x

    def _finish(self, y: torch.Tensor, inp: torch.Tensor) -> torch.Tensor:
        """skip: out = inp + r (r = tanh(y) in [-1, 1] when tanh); no skip: out = y, or (tanh(y) + 1) / 2 in [0, 1]."""
        if self.skip:
            return inp[:, : self.out_ch] + (torch.tanh(y) if self.tanh else y)
        return (torch.tanh(y) + 1) / 2 if self.tanh else y


class ResUNet(_DeblurBase):
    """Residual U-Net / plain residual generator for deblurring (scale 1).

    `tanh`: without `skip` the output is (tanh + 1) / 2, in [0, 1]; with `skip` the residual is tanh, in [-1, 1],
    added to the input. Without `tanh` the output is unbounded (clamp when saving).
    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale), any H, W (padded internally to `size_multiple`).
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 3, channels: Sequence[int] = (32, 64, 128),
                 num_block: int | Sequence[int] = 2, kernel: int = 3, norm: str = "none", act: str = "relu",
                 se: bool = False, bias: bool = True, down: str = "strided", antialias: bool = False,
                 skip: bool = True, tanh: bool = False, fuse: str = "concat", scale: int = 1,
                 res_bias: bool | None = None, decoder: str = "blocks_last"):
        super().__init__()
        self._check_io(in_ch, out_ch, skip, scale)
        self.in_ch, self.out_ch, self.skip, self.tanh = in_ch, out_ch, skip, tanh
        self.net = EncoderDecoder(in_ch, out_ch, channels, num_block, kernel, norm, act, se, bias, down, antialias,
                                  fuse, res_bias=res_bias, decoder=decoder)
        self.size_multiple = self.net.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._upscale(x)
        h, w = x.shape[-2:]
        xp = reflect_pad(x, self.size_multiple)
        y, _ = self.net(xp)
        return self._finish(y, xp)[..., :h, :w]


class SRNDeblur(_DeblurBase):
    """SRN-DeblurNet: one shared encoder-decoder run coarse-to-fine over `num_scales` scales (factor 1/2 each).

    At each scale the input is [blurry image at that scale, previous estimate upsampled (bilinear)], the coarsest
    scale using its own blurry image as the estimate (as the paper). The recurrent cell's state (ConvLSTM by default)
    is upsampled to the next scale. `forward` returns the finest output; `forward_all` returns every scale, coarse
    to fine, for multi-scale losses (scale k is 1/2**k of the input, sized ceil(H / 2**k) x ceil(W / 2**k); make
    targets the same way: F.interpolate(..., mode='bilinear', antialias=True)). `tanh` and `skip` work as in
    ResUNet, per scale. With in_ch != out_ch the coarsest scale's previous estimate is zeros. `fuse` joins the
    encoder's features to the decoder's: 'add' (the paper), 'concat' (000 ##202 "skip: add => concat").
    Shape: (B, in_ch, H, W) -> (B, out_ch, H*scale, W*scale).
    """

    def __init__(self, in_ch: int = 3, out_ch: int = 3, channels: Sequence[int] = (32, 64, 128),
                 num_block: int | Sequence[int] = 3, kernel: int = 5, norm: str = "none", act: str = "relu",
                 se: bool = False, bias: bool = True, down: str = "strided", antialias: bool = False,
                 skip: bool = False, tanh: bool = False, num_scales: int = 3, cell: str = "lstm",
                 fuse: str = "add", scale: int = 1, res_bias: bool | None = None, decoder: str = "blocks_last"):
        super().__init__()
        self._check_io(in_ch, out_ch, skip, scale)
        if num_scales < 1:
            raise ValueError(f"num_scales={num_scales!r}: expected an int >= 1 (the paper uses 3)")
        self.in_ch, self.out_ch, self.skip, self.tanh, self.num_scales = in_ch, out_ch, skip, tanh, num_scales
        self.net = EncoderDecoder(in_ch + out_ch, out_ch, channels, num_block, kernel, norm, act, se, bias, down,
                                  antialias, fuse, cell, res_bias=res_bias, decoder=decoder)
        self.size_multiple = self.net.size_multiple * 2 ** (num_scales - 1)

    def forward_all(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs at every scale, coarsest first; the last one is full size.

        Shape: (B, in_ch, H, W) -> list of (B, out_ch, ceil(H' / 2**k), ceil(W' / 2**k)), k = num_scales-1 .. 0,
        H' = H * scale, W' = W * scale.
        """
        x = self._upscale(x)
        h, w = x.shape[-2:]
        xp = reflect_pad(x, self.size_multiple)
        hp, wp = xp.shape[-2:]
        pyramid = [xp] + [F.interpolate(xp, size=(hp >> k, wp >> k), mode="bilinear", align_corners=False,
                                        antialias=True) for k in range(1, self.num_scales)]
        outs: list[torch.Tensor] = []
        est, state = None, None
        for k in range(self.num_scales - 1, -1, -1):
            inp = pyramid[k]
            size = inp.shape[-2:]
            if est is None:  # the paper feeds the blurry image itself as the coarsest "previous estimate"
                prev = inp if self.in_ch == self.out_ch else inp.new_zeros(inp.shape[0], self.out_ch, *size)
            else:
                prev = F.interpolate(est, size=size, mode="bilinear", align_corners=False)
            if state is not None:
                bottleneck = (size[0] // self.net.size_multiple, size[1] // self.net.size_multiple)
                state = tuple(F.interpolate(s, size=bottleneck, mode="bilinear", align_corners=False) for s in state)
            y, state = self.net(torch.cat([inp, prev], dim=1), state)
            est = self._finish(y, inp)
            outs.append(est[..., : -(-h // 2**k), : -(-w // 2**k)])
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[-1]


@register_model
def srn(in_ch: int = 3, out_ch: int = 3, scale: int = 1, **kw) -> SRNDeblur:
    """SRN-DeblurNet (Tao et al. 2018): 3 scales, 32/64/128, 3 res blocks per stage, 5x5, ConvLSTM (8.06 M)."""
    return SRNDeblur(in_ch=in_ch, out_ch=out_ch, scale=scale, **kw)


@register_model
def resunet(in_ch: int = 3, out_ch: int = 3, scale: int = 1, **kw) -> ResUNet:
    """Residual U-Net: 32/64/128, 2 res blocks per stage and side, concat skips, input skip (1.82 M)."""
    return ResUNet(in_ch=in_ch, out_ch=out_ch, scale=scale, **kw)


@register_model
def resnet_generator(in_ch: int = 3, out_ch: int = 3, scale: int = 1, **kw) -> ResUNet:
    """Plain residual generator (DeblurGAN-like): 64/128/256, 2x4 res blocks at 1/4 size, tanh skip (10.5 M)."""
    kw = {"channels": (64, 128, 256), "num_block": (0, 0, 4), "norm": "instance", "tanh": True, "skip": True,
          "fuse": "none", **kw}
    return ResUNet(in_ch=in_ch, out_ch=out_ch, scale=scale, **kw)
