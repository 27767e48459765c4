"""Inference: tiled == untiled, padding, self-ensemble, Y-channel models, post-processing ops, argument checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab.infer import POST_OPS, autocontrast, bayer_dither, ensemble_x8, infer, postprocess
from lab.vocab import UnknownName


class ConvNet(nn.Module):
    """Three 3x3 convs (receptive field 7, radius 3 LR pixels), optional x2 PixelShuffle tail (radius 4 then)."""

    def __init__(self, scale: int = 1, in_ch: int = 3):
        super().__init__()
        self.scale, self.in_ch, self.out_ch = scale, in_ch, in_ch
        self.body = nn.Sequential(nn.Conv2d(in_ch, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(8, in_ch * scale * scale, 3, padding=1))
        self.up = nn.PixelShuffle(scale) if scale > 1 else nn.Identity()

    def forward(self, x):
        return self.up(self.body(x))


class NeedsMultiple(nn.Module):
    """Identity through PixelUnshuffle(4) -> PixelShuffle(4): fails unless H and W are multiples of 4."""

    in_ch = 3

    def __init__(self):
        super().__init__()
        self.down, self.up = nn.PixelUnshuffle(4), nn.PixelShuffle(4)
        self.sizes: list[tuple[int, int]] = []

    def forward(self, x):
        self.sizes.append(tuple(x.shape[-2:]))
        return self.up(self.down(x))


@pytest.fixture
def image():
    return torch.rand(2, 3, 45, 70, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("scale", [1, 2])
def test_tiled_equals_untiled(image, scale):
    torch.manual_seed(0)
    model = ConvNet(scale)
    whole = infer(model, image)
    assert whole.shape == (2, 3, 45 * scale, 70 * scale)
    tiled = infer(model, image, tile=24, tile_overlap=4)
    assert (tiled - whole).abs().max() < 1e-5
    rect = infer(model, image, tile=(20, 32), tile_overlap=5)
    assert (rect - whole).abs().max() < 1e-5
    assert (infer(model, image, tile=24) - whole).abs().max() < 1e-5, "the default overlap: the receptive field"


def test_receptive_field_of_a_conv_stack_is_its_structural_radius():
    from lab.infer import receptive_field

    torch.manual_seed(0)
    assert receptive_field(ConvNet(1)) == 4, "three 3x3 convs: radius 3, plus one pixel of margin"
    assert receptive_field(ConvNet(2)) == 4, "a PixelShuffle tail adds nothing in LR pixels"


@pytest.mark.parametrize("name, kw", [("edsr_baseline", {}), ("rcan", {"num_group": 2, "num_block": 4})])
def test_tiled_equals_untiled_on_a_deep_model_at_the_default_overlap(name, kw):
    """A 16-block EDSR (structural radius 35 LR px) and an RCAN with channel attention (global pooling: every
    pixel matters a little): tiles at the default overlap give the untiled output to 1e-4, and after 8-bit
    rounding the only pixels that differ are float-rounding ties (a value within 1e-3 of a .5 step, where the
    convolution's summation order, which depends on the tile size, decides)."""
    from lab.images import tensor_to_uint8
    from lab.infer import receptive_field
    from lab.models import create

    torch.manual_seed(0)
    model = create(name, scale=2, **kw).eval()
    img = torch.rand(1, 3, 150, 170, generator=torch.Generator().manual_seed(1))
    r = receptive_field(model)
    whole = infer(model, img)
    tiles = infer(model, img, tile=2 * r + 30)
    assert (tiles - whole).abs().max() <= 1e-4
    differ = tensor_to_uint8(tiles.clamp(0, 1)[0]) != tensor_to_uint8(whole.clamp(0, 1)[0])
    levels = whole.clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    if name == "rcan":  # the tiles' own channel statistics move values by ~1e-5: rare one-level flips at ties
        a, b = (tensor_to_uint8(t.clamp(0, 1)[0]).astype(int) for t in (tiles, whole))
        assert differ.mean() < 1e-3
        assert abs(a - b).max() <= 1
    else:
        assert differ.mean() < 1e-4
        assert (abs(levels[differ] % 1 - 0.5) < 1e-3).all()
    short = infer(model, img, tile=2 * r + 30, tile_overlap=2)
    assert (short - whole).abs().max() > 1e-3, "with too little context the seams show: the test can fail"


def test_tiles_without_overlap_show_seams(image):
    torch.manual_seed(0)
    model = ConvNet(1)
    assert (infer(model, image, tile=24, tile_overlap=0) - infer(model, image)).abs().max() > 1e-3


def test_tiles_stream_to_the_model(image):
    model = NeedsMultiple()
    out = infer(model, image, tile=16, tile_overlap=4, pad_to=4, progress=True)
    assert torch.allclose(out, image)
    assert max(h for h, _ in model.sizes) <= 16
    assert max(w for _, w in model.sizes) <= 16


def test_pad_to_restores_shape(image):
    model = NeedsMultiple()
    with pytest.raises(RuntimeError):
        infer(model, image)  # 45 x 70 is not a multiple of 4
    out = infer(model, image, pad_to=4)
    assert out.shape == image.shape
    assert torch.equal(out, image)
    torch.manual_seed(0)
    net = ConvNet(2)
    assert infer(net, image, pad_to=8).shape == (2, 3, 90, 140)


def test_self_ensemble_of_equivariant_model_is_plain_output(image):
    torch.manual_seed(0)
    pointwise = nn.Sequential(nn.Conv2d(3, 6, 1), nn.ReLU(), nn.Conv2d(6, 3, 1))  # commutes with flips and rot90
    assert torch.allclose(infer(pointwise, image, self_ensemble=True), infer(pointwise, image), atol=1e-6)
    spatial = ConvNet(2)  # a random 3x3 net is not equivariant: the ensemble must change its output
    ens = infer(spatial, image, self_ensemble=True)
    assert ens.shape == (2, 3, 90, 140)
    assert (ens - infer(spatial, image)).abs().max() > 1e-4


def test_ensemble_x8_inverts_each_transform():
    x = torch.rand(1, 3, 5, 7)
    assert torch.allclose(ensemble_x8(lambda t: t * 2, x), x * 2)


def test_model_mode_and_amp(image):
    torch.manual_seed(0)
    model = ConvNet(1).train()
    ref = infer(model, image)
    assert model.training
    bf16 = infer(model, image, amp="bf16")
    assert bf16.dtype == torch.float32
    assert (bf16 - ref).abs().max() < 5e-2


def test_y_channel_model(image):
    torch.manual_seed(0)
    model = ConvNet(2, in_ch=1)
    out = infer(model, image)
    assert out.shape == (2, 3, 90, 140)
    assert (infer(model, image, tile=24, tile_overlap=4) - out).abs().max() < 1e-5


@pytest.mark.parametrize("op", POST_OPS)
def test_post_ops_keep_shape_dtype_range(image, op):
    out = postprocess(image * 1.2 - 0.1, [op])
    assert out.shape == image.shape
    assert out.dtype == torch.float32
    assert out.min() >= 0
    assert out.max() <= 1


def test_dither_keeps_local_means_on_the_8bit_grid():
    ramp = torch.linspace(0.2, 0.2 + 2 / 255, 64).expand(1, 3, 64, 64).contiguous()  # a shallow gradient: bands
    d = bayer_dither(ramp)
    assert torch.allclose(d * 255, (d * 255).round(), atol=1e-4)
    block = nn.functional.avg_pool2d
    dither_err = (block(d, 8) - block(ramp, 8)).abs().max()
    round_err = (block((ramp * 255).round() / 255, 8) - block(ramp, 8)).abs().max()
    assert dither_err < round_err / 2


def test_autocontrast_stretches():
    x = 0.4 + 0.2 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = autocontrast(x, low=0.0, high=100.0)
    assert y.min() == 0
    assert y.max() == 1
    assert torch.allclose(y, (x - x.min()) / (x.max() - x.min()), atol=1e-6)


def test_nlm_denoises_and_takes_kwargs():
    g = torch.Generator().manual_seed(2)
    noisy = (0.5 + 0.05 * torch.randn(1, 3, 48, 48, generator=g)).clamp(0, 1)
    out = postprocess(noisy, [("nlm", {"h": 10, "h_color": 10})])
    assert out.std() < noisy.std() / 2


def test_infer_applies_post_and_validates(image):
    model = nn.Identity()
    out = infer(model, image, post=("autocontrast", "dither"))
    assert out.shape == image.shape
    assert out.min() >= 0
    assert out.max() <= 1
    with pytest.raises(ValueError, match="accepted"):
        infer(model, image, post=("sharpen",))
    with pytest.raises(UnknownName, match="unknown amp precision 'int8'; known amp precisions: fp32, bf16, fp16"):
        infer(model, image, amp="int8")
    with pytest.raises(ValueError, match="pad_to"):
        infer(model, image, pad_to=0)
    with pytest.raises(ValueError, match="overlap"):
        infer(model, image, tile=16, tile_overlap=16)
