"""Losses: registry-wide properties, hand-computable values, SSIM/MS-SSIM against an independent reference, parser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from lab import losses
from lab.losses import CombinedLoss, get_loss, parse_loss

# Small settings so every registered loss runs on 64x64 images in a few milliseconds.
TEST_KW = {
    "msssim": {"scales": 3},
    "vgg": {"weights": None, "layers": ["relu1_2", "relu2_1"]},
    "transfer": {"loss": "l1 + 0.5*ssim"},
}


def _pair(size=64, b=2, c=3, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, c, size, size, generator=g)
    pred = (target + noise * torch.randn(b, c, size, size, generator=g)).clamp(0, 1)
    return pred, target


@pytest.mark.parametrize("name", losses.list_losses())
def test_registry_losses_zero_on_identical_positive_otherwise_and_differentiable(name):
    loss = get_loss(name, **TEST_KW.get(name, {}))
    pred, target = _pair()
    floor = loss.eps if name == "charbonnier" else 0.0
    assert float(loss(target, target)) == pytest.approx(floor, abs=1e-5)
    pred.requires_grad_(True)
    value = loss(pred, target)
    assert value.ndim == 0
    assert float(value.detach()) > floor + 1e-4
    value.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0
    loss.reduction = "none"
    per = loss(pred.detach(), target)
    assert per.shape == (2,)
    assert float(per.mean()) == pytest.approx(float(value), rel=1e-5)


def test_pixel_losses_hand_values():
    zero, half = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert float(get_loss("l1")(zero, half)) == pytest.approx(0.5)
    assert float(get_loss("mse")(zero, half)) == pytest.approx(0.25)
    assert float(get_loss("charbonnier", eps=0.1)(zero, half)) == pytest.approx(math.sqrt(0.25 + 0.01))
    with pytest.raises(ValueError, match="eps"):
        get_loss("charbonnier", eps=0)


def test_edge_loss_of_a_step_edge():
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0  # columns 0-3 black, 4-7 white
    flat = torch.zeros_like(step)
    # Sobel x (unnormalised) answers 4 at the two valid-output columns beside the edge, Sobel y 0: 2*6*4 / (2*36).
    assert float(get_loss("edge", op="sobel")(flat, step)) == pytest.approx(2 / 3)
    # The Laplacian answers +1 and -1 on those columns: 2*6 / 36.
    assert float(get_loss("edge", op="laplacian")(flat, step)) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="sobel"):
        get_loss("edge", op="canny")


def test_fft_loss_of_constant_images():
    h, w, c = 8, 6, 0.3
    a, b = torch.zeros(1, 1, h, w), torch.full((1, 1, h, w), c)
    n_coef = h * (w // 2 + 1)  # rfft2 coefficients; only the DC one, c*sqrt(HW) (orthonormal), differs
    dc = c * math.sqrt(h * w)
    assert float(get_loss("fft", mode="amplitude")(a, b)) == pytest.approx(dc / n_coef, rel=1e-5)
    assert float(get_loss("fft", mode="complex")(a, b)) == pytest.approx(dc / (2 * n_coef), rel=1e-5)
    # Amplitude ignores a circular shift (phase); the complex mode does not.
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(1))
    shifted = torch.roll(x, 2, dims=-1)
    assert float(get_loss("fft", mode="amplitude")(x, shifted)) < 1e-5
    assert float(get_loss("fft", mode="complex")(x, shifted)) > 1e-2
    with pytest.raises(ValueError, match="amplitude"):
        get_loss("fft", mode="phase")


# ---------------------------------------------------------------- an independent SSIM / MS-SSIM in NumPy


def _np_gauss2d(sigma, size):
    r = np.arange(size) - (size - 1) / 2
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return k / k.sum()


def _np_maps(x, y, sigma, size):
    k = _np_gauss2d(sigma, size)
    f = lambda a: convolve2d(a, k, mode="valid")  # noqa: E731  (symmetric kernel: convolution == correlation)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    return (2 * mx * my + c1) / (mx**2 + my**2 + c1), (2 * cxy + c2) / (vx + vy + c2)


def _np_msssim(x, y, weights=(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)):
    out = 1.0
    for j, w in enumerate(weights):
        if j:
            h, wd = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean((1, 3))
            y = y[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean((1, 3))
        lum, cs = _np_maps(x, y, 1.5, 11)
        out *= (cs.mean() if j < len(weights) - 1 else (lum * cs).mean()) ** w
    return out


def _np_multi_sigma(x, y, sigmas):
    maps = [_np_maps(x, y, s, 2 * math.ceil(3 * s) + 1) for s in sigmas]
    n = min(m[1].shape[0] for m in maps)
    crop = lambda a: a[(a.shape[0] - n) // 2:(a.shape[0] - n) // 2 + n, (a.shape[1] - n) // 2:(a.shape[1] - n) // 2 + n]  # noqa: E731,E501
    out = crop(maps[-1][0])
    for _, cs in maps:
        out = out * crop(cs)
    return out.mean()


def _per_image_ref(fn, pred, target):
    p, t = pred.double().numpy(), target.double().numpy()
    return np.array([np.mean([fn(p[b, c], t[b, c]) for c in range(p.shape[1])]) for b in range(p.shape[0])])


def test_ssim_loss_matches_numpy_reference():
    pred, target = _pair(size=40, noise=0.2, seed=3)
    ref = _per_image_ref(lambda x, y: np.prod(_np_maps(x, y, 1.5, 11), axis=0).mean(), pred, target)
    loss = get_loss("ssim", reduction="none")
    np.testing.assert_allclose(1 - loss(pred, target).numpy(), ref, atol=1e-4)


def test_msssim_standard_five_scales_matches_numpy_reference():
    pred, target = _pair(size=176, noise=0.15, seed=4)  # 176 = 11 * 2**4: the smallest valid 5-scale size
    ref = _per_image_ref(_np_msssim, pred, target)
    ours = losses.MSSSIMLoss().msssim(pred, target)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)
    assert 0.2 < ref.min()
    assert ref.max() < 0.99


@pytest.mark.parametrize("sigmas", [[0.5, 1.5, 4.0], [1.5, 4.0, 10.0]])
def test_msssim_multi_sigma_matches_numpy_reference(sigmas):
    pred, target = _pair(size=64, noise=0.15, seed=5)
    ref = _per_image_ref(lambda x, y: _np_multi_sigma(x, y, sigmas), pred, target)
    ours = losses.MSSSIMLoss(sigmas=sigmas).msssim(pred, target)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)


def test_msssim_sigma_sets_differ_and_small_images_explain_the_fix():
    pred, target = _pair(size=64, noise=0.15, seed=6)
    a = losses.MSSSIMLoss(sigmas=[0.5, 1.5, 4.0])(pred, target)
    b = losses.MSSSIMLoss(sigmas=[1.5, 4.0, 10.0])(pred, target)
    assert abs(float(a) - float(b)) > 1e-3
    with pytest.raises(ValueError, match="padding='reflect'"):
        losses.MSSSIMLoss(scales=5)(pred, target)  # 64 px cannot hold 5 scales of an 11x11 valid window
    auto = losses.MSSSIMLoss()
    assert torch.isfinite(auto(pred, target)), "64 px holds 3 levels of 11 px"
    assert auto.last_scales == 3, "64 px holds 3 levels of 11 px"
    big = _pair(size=176, noise=0.15, seed=4)
    assert float(losses.MSSSIMLoss()(*big)) == pytest.approx(float(losses.MSSSIMLoss(scales=5)(*big)), abs=1e-7)
    assert torch.isfinite(losses.MSSSIMLoss(padding="reflect")(*_pair(size=96)))
    with pytest.raises(ValueError, match="weights"):
        losses.MSSSIMLoss(scales=3, weights=[0.5, 0.5])


def test_l1_msssim_is_the_alpha_mix():
    pred, target = _pair(size=64, noise=0.1, seed=7)
    mix = losses.L1MSSSIMLoss(alpha=0.84)
    ms = losses.MSSSIMLoss(sigmas=losses.ZHAO_SIGMAS)(pred, target)
    only_ms = losses.L1MSSSIMLoss(alpha=1.0)(pred, target)
    only_l1 = losses.L1MSSSIMLoss(alpha=0.0)(pred, target)
    assert float(only_ms) == pytest.approx(float(ms), rel=1e-6)
    # The Gaussian-weighted L1 over the cropped centre is close to the plain mean |error| for i.i.d. noise.
    assert float(only_l1) == pytest.approx(float((pred - target).abs().mean()), rel=0.1)
    assert float(mix(pred, target)) == pytest.approx(0.84 * float(ms) + 0.16 * float(only_l1), rel=1e-6)


# ---------------------------------------------------------------- VGG


def test_vgg_layer_names_follow_torchvision_indices():
    import torchvision

    with torch.device("meta"):
        tv = torchvision.models.vgg19(weights=None).features
    ours = losses.vgg19_features(len(tv))
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in tv.state_dict().items()]
    names = losses.vgg19_layer_names()
    assert len(names) == len(tv)
    assert names[names.index("conv5_4")] == "conv5_4"
    assert isinstance(tv[names.index("relu5_4")], torch.nn.ReLU)
    assert isinstance(tv[names.index("pool3")],
                                                                                  torch.nn.MaxPool2d)


def test_vgg_never_downloads_and_loads_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    with pytest.raises(FileNotFoundError) as e:
        losses.VGGLoss(layers=["relu1_1"])
    assert str(expected) in str(e.value)
    assert "weights=None" in str(e.value)
    src = losses.VGGLoss(layers=["relu2_1"], weights=None, seed=1)
    sd = {f"features.{k}": v for k, v in src.features.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file carries the classifier too
    expected.parent.mkdir(parents=True)
    torch.save(sd, expected)
    loaded = losses.VGGLoss(layers=["relu1_2"])
    assert torch.equal(loaded.features[2].weight, src.features[2].weight)
    via_path = losses.VGGLoss(layers=["relu1_1"], weights_path=str(expected))
    assert torch.equal(via_path.features[0].bias, src.features[0].bias)
    with pytest.raises(ValueError, match="relu5_4"):
        losses.VGGLoss(layers=["relu9_9"], weights=None)


def test_vgg_seeded_init_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = losses.VGGLoss(layers=["relu1_1"], weights=None, seed=3)
    b = losses.VGGLoss(layers=["relu1_1"], weights=None, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    gray = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float(a(gray, gray.flip(-1))) > 0  # 1-channel inputs are repeated to RGB


# ---------------------------------------------------------------- colour transfer


def test_transfer_loss_takes_the_loss_in_srgb():
    lin0, lin_half = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    srgb_half = 1.055 * 0.5 ** (1 / 2.4) - 0.055  # IEC 61966-2-1 encoding of linear 0.5
    assert float(losses.TransferLoss("l1", space="srgb", source="linear")(lin0, lin_half)) == pytest.approx(
        srgb_half, abs=1e-4)
    assert float(losses.TransferLoss("l1", space="linear", source="linear")(lin0, lin_half)) == pytest.approx(0.5)
    back = losses.TransferLoss("l1", space="linear", source="srgb")(lin0, torch.full((1, 3, 4, 4), srgb_half))
    assert float(back) == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="srgb"):
        losses.TransferLoss("l1", space="xyz")


# ---------------------------------------------------------------- spec parser


def test_parse_loss_builds_weighted_sum_and_records_parts():
    pred, target = _pair(size=64, seed=8)
    combo = parse_loss("l1 + 0.1*msssim(scales=3) + edge*2 + 1e-3 * fft(mode='complex') + l1/4")
    assert isinstance(combo, CombinedLoss)
    assert combo.part_names == ["l1", "msssim", "edge", "fft", "l1_2"]
    assert combo.weights == {"l1": 1.0, "msssim": 0.1, "edge": 2.0, "fft": 1e-3, "l1_2": 0.25}
    total = combo(pred, target)
    parts = {"l1": get_loss("l1"), "msssim": get_loss("msssim", scales=3), "edge": get_loss("edge"),
             "fft": get_loss("fft", mode="complex"), "l1_2": get_loss("l1")}
    values = {k: float(m(pred, target)) for k, m in parts.items()}
    assert combo.last_parts == pytest.approx(values, rel=1e-5)
    assert float(total) == pytest.approx(sum(combo.weights[k] * v for k, v in values.items()), rel=1e-5)
    sig = parse_loss("msssim(sigmas=[0.5, 1.5, 4.0])").parts["msssim"]
    assert sig.sigmas == (0.5, 1.5, 4.0)
    assert parse_loss("vgg(weights=None, layers=['relu1_1'])").parts["vgg"].layers == ["relu1_1"]


@pytest.mark.parametrize("spec, match", [
    ("l1 + foo", "unknown loss 'foo'"),
    ("l1 +", "syntax"),
    ("__import__('os').system('true')", "known losses"),
    ("msssim(sigmas=open('x'))", "literals"),
    ("-1*l1", "negative"),
    ("l1 * mse", "number"),
    ("msssim(bogus=1)", "bogus"),
    ("edge(op='canny')", "sobel"),
    ("", "empty"),
])
def test_parse_loss_rejects_bad_specs_with_the_known_names(spec, match):
    with pytest.raises(ValueError, match=match) as e:
        parse_loss(spec)
    assert repr(spec) in str(e.value) or spec == ""


def test_get_loss_unknown_name_lists_names():
    with pytest.raises(KeyError, match="charbonnier"):
        get_loss("l3")
