"""Super-resolution architectures: every registered SR preset at every scale, published sizes, upsamplers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lab import models
from lab.models.blocks import ACTS, NORMS, UPSAMPLERS, FixedBlur, make_upsampler
from lab.models.profile import count_flops, fits_budget

SR_MODULES = {f"lab.models.{m}" for m in
              ("srcnn", "fsrcnn", "vdsr", "srresnet", "edsr", "rdn", "rcan", "resnet_sr", "imdn", "drln")}
SR_NAMES = [n for n in models.list_models() if models.model_entrypoint(n).__module__ in SR_MODULES]

# small settings per preset, so forward + backward at 12x12 takes milliseconds on a CPU
SMALL: dict[str, dict] = {
    "srcnn": {"num_feat": 8, "num_feat2": 4},
    "srcnn_rgb": {"num_feat": 8, "num_feat2": 4},
    "fsrcnn": {"num_feat": 8, "shrink": 4, "num_block": 2},
    "fsrcnn_rgb": {"num_feat": 8, "shrink": 4, "num_block": 2},
    "vdsr": {"num_feat": 8, "num_block": 2},
    "srresnet": {"num_feat": 8, "num_block": 2},
    "srgan_g": {"num_feat": 8, "num_block": 2},
    "edsr_baseline": {"num_feat": 8, "num_block": 2},
    "edsr": {"num_feat": 8, "num_block": 2},
    "mdsr": {"num_feat": 8, "num_block": 2},
    "rdn": {"num_feat": 8, "growth": 4, "num_block": 2, "num_layer": 2},
    "rcan": {"num_feat": 8, "num_group": 2, "num_block": 2, "reduction": 4},
    "resnet18_sr": {"num_stage": 2, "num_block": 1},
    "imdn": {"num_feat": 8, "num_block": 2, "reduction": 4},
    "imdn_rtc": {"num_block": 2},
    "imdn_dw": {"num_feat": 8, "num_block": 2, "reduction": 4},
    "drln": {"num_feat": 8, "num_block": (2, 1), "reduction": 4},
    "drln_slim": {"num_feat": 8, "num_block": (1,)},
    "fsrcnn_pre": {"num_feat": 8, "shrink": 4, "num_block": 1},
    "imdn_dw_003": {"num_feat": 8, "num_block": 2, "reduction": 4},
    "drln_slim_003": {"num_feat": 8, "num_block": (1,), "reduction": 4},
}
TAKES_UPSAMPLER = ["fsrcnn", "srresnet", "edsr_baseline", "mdsr", "rdn", "rcan", "resnet18_sr", "imdn", "imdn_rtc",
                   "imdn_dw", "drln"]


def _params(name: str, **kw) -> int:
    with torch.device("meta"):  # shapes only: building a 34 M-parameter model costs nothing
        return sum(p.numel() for p in models.create(name, **kw).parameters())


def test_registry_holds_the_sr_zoo():
    expected = {"srcnn", "srcnn_rgb", "fsrcnn", "fsrcnn_rgb", "vdsr", "srresnet", "srgan_g", "edsr_baseline", "edsr",
                "mdsr", "rdn", "rcan", "resnet18_sr", "imdn", "imdn_rtc", "imdn_dw", "drln", "drln_slim", "fsrcnn_pre", "imdn_dw_003", "drln_slim_003"}
    assert expected <= set(SR_NAMES)
    # a newly registered SR preset must come with small test settings here
    assert set(SR_NAMES) <= set(SMALL), f"add small settings for {sorted(set(SR_NAMES) - set(SMALL))}"


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", SR_NAMES)
def test_forward_backward(name, scale):
    m = models.create(name, scale=scale, **SMALL[name])
    assert m.scale == scale
    assert m.model_name == name
    g = torch.Generator().manual_seed(scale)
    x = torch.rand(2, m.in_ch, 12, 10, generator=g, requires_grad=True)
    y = m(x)
    assert y.shape == (2, m.out_ch, 12 * scale, 10 * scale)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads
    assert all(torch.isfinite(gr).all() for gr in grads)


@pytest.mark.parametrize("name", ["edsr_baseline", "mdsr", "rcan", "rdn", "drln", "srresnet", "imdn", "resnet18_sr"])
@pytest.mark.parametrize("in_ch,out_ch", [(1, 3), (3, 1), (1, 1)])
def test_channel_counts(name, in_ch, out_ch):
    m = models.create(name, scale=2, in_ch=in_ch, out_ch=out_ch, **SMALL[name])
    assert (m.in_ch, m.out_ch) == (in_ch, out_ch)
    assert m(torch.rand(1, in_ch, 6, 6)).shape == (1, out_ch, 12, 12)


def test_unknown_name_lists_names():
    with pytest.raises(KeyError, match="imdn_rtc"):
        models.create("imdn_tiny")


@pytest.mark.parametrize("name,kw,published", [
    ("fsrcnn", {"scale": 2}, 12_809),  # FSRCNN paper, d=56 s=12 m=4
    ("fsrcnn", {"scale": 4}, 12_809),  # the deconvolution has the same size at every scale
    ("srcnn", {}, 57_281),  # 9-5-5 on Y
    ("imdn", {"scale": 2}, 694_404),  # official IMDN_x2.pth
    ("imdn", {"scale": 4}, 715_176),  # official IMDN_x4.pth
    ("imdn_rtc", {"scale": 2}, 20_190),  # official model_RTC.pth
])
def test_exact_parameter_counts(name, kw, published):
    assert _params(name, **kw) == published


# Papers print rounded counts; the tolerance is half a unit of the last printed digit, i.e. the published number
# is exactly what our count rounds to.
@pytest.mark.parametrize("name,kw,published,half_unit", [
    ("vdsr", {}, 665e3, 0.5e3),  # VDSR "665K"
    ("edsr_baseline", {"scale": 2}, 1.37e6, 0.005e6),
    ("edsr_baseline", {"scale": 4}, 1.5e6, 0.05e6),  # EDSR paper table 1
    ("edsr", {"scale": 4}, 43e6, 0.5e6),  # EDSR paper table 1
    ("srresnet", {"scale": 4}, 1.55e6, 0.005e6),  # SRResNet / SRGAN generator
    ("mdsr", {}, 8.0e6, 0.05e6),  # EDSR paper: MDSR 8.0M
    ("rdn", {"scale": 2}, 22.1e6, 0.05e6),
    ("rdn", {"scale": 4}, 22.3e6, 0.05e6),
    ("rcan", {"scale": 2}, 15.4e6, 0.05e6),
    ("rcan", {"scale": 4}, 15_592e3, 0.5e3),  # "15,592K" in later papers' x4 tables
    ("drln", {"scale": 2}, 34.4e6, 0.05e6),
])
def test_published_parameter_counts(name, kw, published, half_unit):
    n = _params(name, **kw)
    assert abs(n - published) <= half_unit, f"{name} {kw}: {n:,} params vs published {published:,.0f}"


def test_drln_slim_fits_its_flops_budget():
    with torch.device("meta"):
        slim, full = models.create("drln_slim", scale=2), models.create("drln", scale=2)
    check = fits_budget(slim, (1, 3, 128, 128), max_gflops=11.0)
    assert check.ok, check
    assert check.numbers["gflops"] > 5  # a real network, not an empty one
    assert count_flops(full, (1, 3, 128, 128)) > 50 * check.numbers["gflops"] * 1e9


@pytest.mark.parametrize("kind", UPSAMPLERS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upsampler_shapes(kind, scale):
    up = make_upsampler(kind, scale, 8)
    x = torch.rand(1, 8, 5, 7, generator=torch.Generator().manual_seed(0))
    assert up(x).shape == (1, 8, 5 * scale, 7 * scale)


def test_upsampler_errors_name_the_choices():
    with pytest.raises(ValueError, match="nearest_conv"):
        make_upsampler("bilinear_magic", 2, 8)
    with pytest.raises(ValueError, match="powers of 2"):
        make_upsampler("pixelshuffle", 5, 8)


def test_icnr_starts_as_nearest_neighbour():
    up = make_upsampler("pixelshuffle_blur", 2, 4)
    conv, shuffle, blur = up[0], up[1], up[2]
    assert isinstance(blur, FixedBlur)
    y = shuffle(conv(torch.rand(1, 4, 6, 6, generator=torch.Generator().manual_seed(1))))
    cells = y.unfold(2, 2, 2).unfold(3, 2, 2)  # (1, 4, 6, 6, 2, 2): every 2x2 output cell
    assert torch.allclose(cells, cells[..., :1, :1].expand_as(cells))  # no checkerboard at init
    assert not any("kernel" in k for k in up.state_dict())  # the fixed blur is not a checkpointed weight


def test_fixed_blur_keeps_constants_and_lowers_variance():
    blur = FixedBlur(2)
    c = torch.full((1, 2, 5, 5), 0.3)
    assert torch.allclose(blur(c), c)
    x = torch.rand(1, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    assert blur(x).var() < x.var()


@pytest.mark.parametrize("kind", UPSAMPLERS)
@pytest.mark.parametrize("name", TAKES_UPSAMPLER)
def test_models_take_every_upsampler(name, kind):
    m = models.create(name, scale=2, upsampler=kind, **SMALL[name])
    y = m(torch.rand(1, m.in_ch, 8, 8, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (1, m.out_ch, 16, 16)
    assert torch.isfinite(y).all()


def test_mdsr_switches_scale():
    m = models.create("mdsr", scale=2, **SMALL["mdsr"]).eval()
    x = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    for s in (2, 3, 4):
        m.scale = s
        assert m(x).shape == (1, 3, 6 * s, 6 * s)
    with pytest.raises(ValueError, match="scales"):
        m.scale = 8
    # the body is shared: one set of body weights, one pre-processing head and tail per scale
    assert set(m.pre.keys()) == set(m.up.keys()) == {"2", "3", "4"}


def test_fsrcnn_variants():
    base = models.create("fsrcnn", scale=3)
    assert base.in_ch == 1
    assert isinstance(base.last_part, nn.ConvTranspose2d)
    assert base.last_part.kernel_size == (9, 9)
    assert base.last_part.stride == (3, 3)
    normed = models.create("fsrcnn", norm="instance", num_block=3)
    assert sum(isinstance(mod, nn.InstanceNorm2d) for mod in normed.modules()) == 3
    wide = models.create("fsrcnn", num_feat=32, shrink=5, num_block=2)
    assert wide.first_part[0].out_channels == 32
    assert wide.mid_part[0].out_channels == 5
    assert models.create("fsrcnn_rgb").first_part[0].in_channels == 3
    with pytest.raises(ValueError, match="instance"):
        models.create("fsrcnn", norm="group")


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("act", ACTS)
def test_srresnet_norm_and_act(norm, act):
    m = models.create("srresnet", scale=2, num_feat=8, num_block=2, norm=norm, act=act)
    kinds = {type(mod) for mod in m.modules()}
    norm_cls = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "none": None}[norm]
    act_cls = {"prelu": nn.PReLU, "leakyrelu": nn.LeakyReLU, "relu": nn.ReLU}[act]
    assert act_cls in kinds
    if norm_cls is None:
        assert not {nn.BatchNorm2d, nn.InstanceNorm2d} & kinds
    else:
        assert norm_cls in kinds
    assert m(torch.rand(2, 3, 6, 6)).shape == (2, 3, 12, 12)


def test_srgan_g_is_srresnet():
    assert _params("srgan_g") == _params("srresnet")
    assert type(models.create("srgan_g", num_block=1, num_feat=4)).__name__ == "SRResNet"


def test_vdsr_learns_a_residual_on_bicubic():
    from lab.resize import imresize_tensor

    m = models.create("vdsr", scale=3, num_feat=8, num_block=1)
    for p in m.body[-1].parameters():  # zero the last layer: the output is then exactly the bicubic upscale
        nn.init.zeros_(p)
    x = torch.rand(1, 1, 7, 9, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(m(x), imresize_tensor(x, scale=3))


def test_imdn_dw_is_depthwise_separable_and_lighter():
    dw = models.create("imdn_dw")
    depthwise = [c for c in dw.blocks[0].modules() if isinstance(c, nn.Conv2d) and c.groups > 1]
    assert depthwise
    assert all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    assert _params("imdn_dw") < _params("imdn") / 3


def test_resnet18_sr_reuses_torchvision_blocks_without_downsampling():
    from torchvision.models.resnet import BasicBlock

    m = models.create("resnet18_sr", scale=2, num_stage=3, norm="none")
    assert sum(isinstance(b, BasicBlock) for b in m.modules()) == 6
    assert all(c.stride == (1, 1) for c in m.modules() if isinstance(c, nn.Conv2d))
    assert not any(isinstance(c, (nn.BatchNorm2d, nn.MaxPool2d)) for c in m.modules())
    with pytest.raises(ValueError, match="stages 1 to 4"):
        models.create("resnet18_sr", num_stage=5)


def test_srresnet_norm_between_distant_layers():
    def norms(m):
        return sum(isinstance(x, (nn.InstanceNorm2d, nn.BatchNorm2d)) for x in m.modules())

    every_block = models.create("srresnet", num_block=4, num_feat=8, norm="instance")
    distant = models.create("srresnet", num_block=4, num_feat=8, norm="instance", norm_every=2)
    assert norms(every_block) == 2 * 4 + 1, "the paper: two per block and one before the long skip"
    assert norms(distant) == 2, "one after block 2, one before the long skip"
    assert distant(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="norm_every=0"):
        models.create("srresnet", norm_every=0)


def test_edsr_direct_tail_is_one_conv_and_pixelshuffle():
    """tail='direct' (ESPCN's / IMDN's tail) maps features straight to out_ch * scale^2 and shuffles: same shapes,
    fewer parameters than the paper's feature upsampler + conv; a bad combination is refused by name."""
    kw = dict(num_feat=16, num_block=2, in_ch=1, out_ch=1, skip="bicubic")
    paper, direct = models.create("edsr_baseline", scale=3, **kw), models.create("edsr_baseline", scale=3,
                                                                                   tail="direct", **kw)
    x = torch.rand(2, 1, 7, 9)
    assert paper(x).shape == direct(x).shape == (2, 1, 21, 27)
    assert [type(m) for m in direct.tail] == [torch.nn.Conv2d, torch.nn.PixelShuffle]
    assert direct.tail[0].out_channels == 9
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(direct) < n(paper)
    with pytest.raises(ValueError, match="tail='direct' is a conv"):
        models.create("edsr_baseline", tail="direct", upsampler="deconv")
    with pytest.raises(ValueError, match="expected one of"):
        models.create("edsr_baseline", tail="sideways")


def test_knobs_the_logs_use():
    """000 ##103 (VDSR with Swish), 002 (FSRCNN's mapping kernel and the pre-upsampled variant), 003 (DRLMs of two
    units, a standard LR conv beside depthwise-separable modules)."""
    swish = models.create("vdsr", num_feat=4, num_block=1, act="swish")
    assert any(isinstance(m, nn.SiLU) for m in swish.modules())
    with pytest.raises(ValueError, match="swish"):
        models.create("vdsr", act="gelu")
    one = models.create("fsrcnn", map_kernel=1)
    assert all(c.kernel_size == (1, 1) for c in one.mid_part if isinstance(c, nn.Conv2d))
    with pytest.raises(ValueError, match="map_kernel"):
        models.create("fsrcnn", map_kernel=2)
    with pytest.raises(ValueError, match="deconv"):
        models.create("fsrcnn", pre_upsample=True, upsampler="pixelshuffle")
    pre = models.create("fsrcnn_pre", scale=3)
    assert _params("fsrcnn_pre") == _params("fsrcnn")
    assert pre(torch.rand(1, 1, 5, 4)).shape == (1, 1, 15, 12)
    two = models.create("drln", num_feat=8, num_block=(1,), units=2, reduction=4)
    assert len(two.body[0].blocks[0].units) == 2
    assert two.body[0].blocks[0].compress[0].in_channels == 4 * 8
    with pytest.raises(ValueError, match="units"):
        models.create("drln", units=4)
    dw = models.create("imdn_dw_003")
    assert isinstance(dw.lr_conv, nn.Conv2d)
    assert dw.lr_conv.groups == 1
    assert dw(torch.rand(1, 3, 6, 5)).shape == (1, 3, 18, 15)


def test_edsr_bicubic_skip_is_optional_and_checked():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 12)
    plain = models.create("edsr_baseline", scale=2, in_ch=1, out_ch=1, num_block=1, num_feat=8)
    skip = models.create("edsr_baseline", scale=2, in_ch=1, out_ch=1, num_block=1, num_feat=8, skip="bicubic")
    skip.load_state_dict(plain.state_dict())
    up = torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.allclose(skip(x) - plain(x), up - plain.mean, atol=1e-6)
    assert models.create("edsr_baseline").skip == "none", "the paper's EDSR has no bicubic skip"
    with pytest.raises(ValueError, match="skip"):
        models.create("edsr_baseline", skip="nearest")
