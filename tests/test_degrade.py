"""Degradations: per-op properties, kernels, seed and params replay, every preset, errors, noise bank, mixup."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lab import degrade as D
from lab import kernels as K
from lab import mixup
from lab.noise_bank import NoiseBank, extract_noise_patches


def _photo(size=96, seed=0):
    """A crop of a real photo (skimage's astronaut) as a (1, 3, size, size) float tensor."""
    import skimage.data as skd

    img = skd.astronaut()[140:140 + size, 180:180 + size]
    return torch.from_numpy(img.transpose(2, 0, 1).copy()).float().div(255)[None]


def _highfreq(x):
    """Energy of the discrete Laplacian: high spatial frequencies."""
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return float(lap.pow(2).mean())


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    """A kernel-bank folder (.npy and .png kernels) and a noise bank file made from a synthetic noisy image."""
    root = tmp_path_factory.mktemp("banks")
    kdir = root / "kernels"
    kdir.mkdir()
    np.save(kdir / "a.npy", K.gaussian_kernel(9, 1.5, 0.7, 30) * 7.0)  # not normalised on disk
    np.save(kdir / "b.npy", K.disk_kernel(2.0))
    import cv2

    g = K.gaussian_kernel(7, 1.0)
    cv2.imwrite(str(kdir / "c.png"), (g / g.max() * 255).astype(np.uint8))
    rng = np.random.default_rng(0)
    flat = np.full((96, 96, 3), 0.5) + rng.normal(0, 0.03, (96, 96, 3))
    path = extract_noise_patches(flat.astype(np.float32), 16).save(root / "noise.npz")
    return {"kernel_bank": str(kdir), "noise_bank": str(path)}


# ------------------------------------------------------------------------------------------------ kernels

KERNEL_SPECS = [
    {"type": "gaussian", "size": 21, "sigma_x": 2.0},
    {"type": "gaussian", "size": 15, "sigma_x": 3.0, "sigma_y": 0.8, "angle": 45},
    {"type": "generalized", "size": 21, "sigma_x": 2.0, "sigma_y": 1.0, "angle": 10, "beta": 0.5},
    {"type": "plateau", "size": 21, "sigma_x": 2.0, "sigma_y": 2.0, "angle": 0, "beta": 2.0},
    {"type": "motion_line", "length": 11, "angle": 30},
    {"type": "motion_trajectory", "length": 13, "seed": 4, "jitter": 0.4},
    {"type": "disk", "radius": 3.5},
    {"type": "sinc", "size": 21, "omega": math.pi / 4},
]


@pytest.mark.parametrize("spec", KERNEL_SPECS, ids=lambda s: s["type"])
def test_kernels_sum_to_one_and_are_odd_squares(spec):
    k = K.make_kernel(spec)
    assert k.dtype == np.float32
    assert k.ndim == 2
    assert k.shape[0] == k.shape[1]
    assert k.shape[0] % 2 == 1
    assert abs(float(k.sum()) - 1) < 1e-5
    c = k.shape[0] // 2
    assert k[c, c] > 0 or spec["type"].startswith("motion")  # centred


def test_kernel_shapes_follow_their_parameters():
    aniso = K.gaussian_kernel(21, 4.0, 1.0, angle=0)
    assert aniso[10, :].sum() > 2 * aniso[:, 10].sum()  # wide along x when angle = 0
    rot = K.gaussian_kernel(21, 4.0, 1.0, angle=90)
    assert np.allclose(rot, aniso.T, atol=1e-6)
    line = K.motion_line_kernel(9, 0)
    assert (line > 1e-3).any(axis=1).sum() == 1  # one row: a horizontal streak
    assert abs(line.sum(axis=0)[line.shape[1] // 2] - 1 / 9) < 0.05  # spread evenly along its length
    assert K.sinc_kernel(21, math.pi / 4).min() < 0  # the sinc rings (negative lobes)
    assert not np.array_equal(K.motion_trajectory_kernel(13, 1), K.motion_trajectory_kernel(13, 2))


def test_kernel_bank_loads_normalised_and_errors(banks, tmp_path):
    bank = K.load_kernel_bank(banks["kernel_bank"])
    assert len(bank) == 3
    assert all(abs(float(k.sum()) - 1) < 1e-5 for k in bank)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .npy or .png"):
        K.load_kernel_bank(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        K.load_kernel_bank(tmp_path / "missing")
    with pytest.raises(ValueError, match="kernel_bank"):
        D.Pipeline([D.Stage("s", [[D.Step("k", "kernel_bank", {"path": ""})]])], scale=1)


# ------------------------------------------------------------------------------------------- op properties

BLURS = {"gaussian_blur": {"sigma": 2.0}, "motion_blur": {"length": 9.0}, "defocus_blur": {"radius": 3.0},
         "sinc": {"omega": math.pi / 4, "size": 15}, "blur": {"sigma": 2.0, "sinc_prob": 0.0}}


@pytest.mark.parametrize("name", list(BLURS))
def test_blur_lowers_high_frequency_energy_and_keeps_mean(name):
    x = _photo(64)
    y = D.get_op(name)(x, np.random.default_rng(0), **BLURS[name])
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert _highfreq(y) < 0.5 * _highfreq(x)
    assert abs(float(y.mean() - x.mean())) < 0.01  # kernels sum to 1


def test_per_image_kernels_in_one_call():
    x = _photo(48).repeat(2, 1, 1, 1)
    ks = np.stack([K.gaussian_kernel(9, 0.3), K.gaussian_kernel(9, 2.5)])
    y = D.blur(x, ks)
    assert torch.allclose(y[0:1], D.blur(x[:1], ks[0]), atol=1e-6)
    assert _highfreq(y[1:]) < 0.5 * _highfreq(y[:1])


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_has_requested_std(gray):
    x = torch.full((2, 3, 64, 64), 0.5)
    y = D.add_gaussian_noise(x, 0.05, gray=gray, seed=3)
    assert abs(float((y - x).std()) / 0.05 - 1) < 0.05
    same = torch.equal(y[:, 0], y[:, 1])
    assert same == gray
    sig = D.get_op("gaussian_noise").sample_params(np.random.default_rng(0), sigma_255=(10, 10))["sigma"]
    assert sig == pytest.approx(10 / 255)


def test_poisson_noise_grows_with_intensity_and_scale():
    dark, bright = torch.full((1, 3, 64, 64), 0.1), torch.full((1, 3, 64, 64), 0.8)
    sd = lambda x, s: float((D.add_poisson_noise(x, s, seed=1) - x).std())  # noqa: E731
    assert sd(bright, 1.0) > 2 * sd(dark, 1.0)
    assert sd(bright, 2.0) == pytest.approx(2 * sd(bright, 1.0), rel=0.05)
    assert abs(sd(bright, 1.0) - math.sqrt(0.8 / D.POISSON_PEAK)) < 0.2 * math.sqrt(0.8 / D.POISSON_PEAK)


def test_speckle_and_salt_pepper():
    x = torch.full((1, 3, 64, 64), 0.5)
    assert float((D.add_speckle_noise(x, 0.1, seed=0) - x).std()) == pytest.approx(0.05, rel=0.1)
    y = D.add_salt_pepper(x, 0.1, 0.5, seed=0)
    changed = (y != x).any(dim=1).float().mean()
    assert float(changed) == pytest.approx(0.1, abs=0.02)
    assert set(torch.unique(y).tolist()) == {0.0, 0.5, 1.0}


def test_jpeg_error_shrinks_as_quality_rises():
    x = _photo(96)
    errs = [float((D.jpeg(x, q) - x).abs().mean()) for q in (10, 30, 60, 95)]
    assert errs == sorted(errs, reverse=True)
    assert errs[0] > 2 * errs[-1]
    assert torch.equal(D.jpeg(x, 50) * 255, (D.jpeg(x, 50) * 255).round())  # an 8-bit decode


def test_webp_or_clear_error():
    x = _photo(64)
    if D.webp_available():
        assert float((D.webp(x, 10) - x).abs().mean()) > float((D.webp(x, 90) - x).abs().mean())
    else:
        with pytest.raises(ValueError, match="WebP"):
            D.webp(x, 50)


@pytest.mark.parametrize("mode", D.RESIZE_MODES)
@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.7, 1.5])
def test_resample_shapes(mode, scale):
    x = _photo(48)
    y = D.resize(x, scale=scale, mode=mode)
    assert y.shape[-2:] == (math.ceil(48 * scale - 1e-9),) * 2
    assert float(y.min()) >= 0
    assert float(y.max()) <= 1
    assert D.resize(x, size=(20, 31), mode=mode).shape == (1, 3, 20, 31)


def test_bicubic_preset_is_matlab_imresize_and_vectorised():
    from lab.resize import imresize_tensor

    x = torch.rand(4, 3, 36, 36, generator=torch.Generator().manual_seed(0))
    for s in (2, 3, 4):
        pipe = D.build("bicubic", scale=s)
        assert pipe.sample(np.random.default_rng(0)) == pipe.sample(np.random.default_rng(1))  # nothing random
        assert torch.equal(pipe(x, np.random.default_rng(0)), imresize_tensor(x, scale=1 / s).clamp(0, 1))
    odd = D.build("bicubic", scale=2)(torch.rand(1, 3, 37, 41), np.random.default_rng(0))
    assert odd.shape == (1, 3, 18, 20)  # HR cropped to a multiple of the scale first


def test_random_resize_up_down_keep():
    op = D.get_op("random_resize")
    kinds = set()
    for i in range(40):
        p = op.sample_params(np.random.default_rng(i))
        kinds.add("up" if p["factor"] > 1 else "down" if p["factor"] < 1 else "keep")
        y = op.apply(torch.rand(1, 3, 40, 40), p)
        assert y.shape[-1] == max(1, round(40 * p["factor"]))
    assert kinds == {"up", "down", "keep"}


def test_contrast_gamma_brightness_are_monotonic():
    ramp = torch.linspace(0.1, 0.9, 64).view(1, 1, 1, 64).repeat(1, 3, 8, 1)
    hi, lo = D.adjust_contrast(ramp, 1.5), D.adjust_contrast(ramp, 0.5)
    assert float(hi.std()) > float(ramp.std()) > float(lo.std())
    assert float(lo.mean()) == pytest.approx(float(ramp.mean()), abs=1e-5)  # around the mean
    for y in (hi, lo, D.adjust_gamma(ramp, 2.0), D.adjust_gamma(ramp, 0.5), D.adjust_brightness(ramp, 0.05)):
        assert (y[..., 1:] >= y[..., :-1]).all()  # order of values kept
    assert (D.adjust_gamma(ramp, 2.0) <= ramp).all()
    assert (D.adjust_gamma(ramp, 0.5) >= ramp).all()
    assert float(D.adjust_contrast(ramp, 2.0, center="mid")[..., 32].mean()) == pytest.approx(
        float(ramp[..., 32].mean() - 0.5) * 2 + 0.5, abs=1e-5)


def test_unsharp_mask_sharpens_and_threshold_spares_small_detail():
    x = _photo(64)
    assert _highfreq(D.unsharp_mask(x, 1.0, 1.0)) > 1.5 * _highfreq(x)
    assert torch.equal(D.unsharp_mask(x, 1.0, 1.0, threshold=1.0), x)


def test_linear_light_ops_round_trip():
    x = _photo(32)
    lin = D.get_op("srgb_to_linear").apply(x, {})
    assert (lin <= x + 1e-6).all()
    assert torch.allclose(D.get_op("linear_to_srgb").apply(lin, {}), x, atol=1e-5)


# ---------------------------------------------------------------------------------------- replay and presets

def _preset_kw(name, banks):
    scale = 1 if D.PRESETS[name].native_scale == 1 else 2
    return scale, {r: banks[r] for r in D.PRESETS[name].required}


@pytest.mark.parametrize("name", D.list_presets())
def test_every_preset_builds_and_runs(name, banks):
    scale, kw = _preset_kw(name, banks)
    pipe = D.build(name, scale=scale, **kw)
    hr = _photo(96).repeat(2, 1, 1, 1)
    lr = pipe(hr, np.random.default_rng(0))
    assert lr.shape == (2, 3, 96 // scale, 96 // scale)
    assert lr.dtype == torch.float32
    assert float(lr.min()) >= 0
    assert float(lr.max()) <= 1
    cfg = json.loads(json.dumps(pipe.config()))
    assert cfg["preset"] == name
    assert cfg["scale"] == scale
    assert D.build(cfg, scale=scale).config() == cfg  # a recorded config rebuilds the same pipeline
    assert set(D.preset_overrides(name)) >= set(D.PRESETS[name].aliases)


@pytest.mark.parametrize("name", ["second_order", "realsr", "deblur_motion", "noisy_bicubic"])
def test_seed_and_params_replay_byte_identical(name, banks):
    scale, kw = _preset_kw(name, banks)
    pipe = D.build(name, scale=scale, **kw)
    hr = _photo(96)
    a = pipe(hr, np.random.default_rng(7))
    b = pipe(hr, np.random.default_rng(7))
    assert torch.equal(a, b)
    params = pipe.sample(np.random.default_rng(7))
    replay = json.loads(json.dumps(params))
    assert torch.equal(pipe.apply(hr, replay), a)
    assert torch.equal(D.build(json.loads(json.dumps(pipe.config())), scale=scale).apply(hr, replay), a)
    assert not torch.equal(pipe(hr, np.random.default_rng(8)), a)


def test_ops_replay_from_params(banks):
    x = _photo(48)
    for name in ("blur", "motion_blur", "noise", "salt_pepper", "jpeg", "contrast", "sharpen", "bank_noise"):
        op = D.get_op(name)
        ranges = {"path": banks["noise_bank"]} if name == "bank_noise" else {}
        p = json.loads(json.dumps(op.sample_params(np.random.default_rng(1), **ranges)))
        assert p == op.sample_params(np.random.default_rng(1), **ranges)
        assert torch.equal(op.apply(x, p), op.apply(x, p))


def test_second_order_shuffles_final_stage_and_records_order():
    pipe = D.build("second_order", scale=2)
    orders = {tuple(pipe.sample(np.random.default_rng(i))["stages"][2]["order"]) for i in range(12)}
    assert orders == {(0, 1), (1, 0)}
    fixed = D.build("second_order", scale=2, final_shuffle=False)
    assert {tuple(fixed.sample(np.random.default_rng(i))["stages"][2]["order"]) for i in range(6)} == {(0, 1)}


def test_batch_of_params_equals_one_by_one():
    pipe = D.build("second_order", scale=2)
    hr = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    ps = pipe.sample_batch(np.random.default_rng(0), 3)
    whole = pipe.apply(hr, ps)
    assert torch.equal(whole, torch.cat([pipe.apply(hr[i:i + 1], p) for i, p in enumerate(ps)]))


def test_overrides_reach_the_sampler():
    pipe = D.build("blur_bicubic", scale=4, blur_sigma=(2.5, 2.5))
    assert pipe.sample(np.random.default_rng(0))["stages"][0]["steps"]["blur"]["kernel"]["sigma_x"] == 2.5
    q = D.build({"preset": "jpeg", "quality": (40, 40)}).sample(np.random.default_rng(0))
    assert q["stages"][0]["steps"]["jpeg"]["quality"] == 40
    n = D.build("denoise_gaussian", scale=1, sigma=(0.1, 0.1)).sample(np.random.default_rng(0))
    assert n["stages"][0]["steps"]["noise"]["sigma"] == pytest.approx(0.1)
    off = D.build("second_order", scale=2, second_prob=0.0).sample(np.random.default_rng(0))
    assert off["stages"][1]["apply"] is False
    assert all(v is None for v in off["stages"][1]["steps"].values())


def test_custom_pipeline_from_steps():
    pipe = D.build({"steps": [["gaussian_blur", {"sigma": 1.0}], ["downscale", {"mode": "area"}],
                              ["jpeg", {"quality": 80}, 0.5]]}, scale=3)
    assert pipe(_photo(48), np.random.default_rng(0)).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="downscale"):
        D.build({"steps": [["gaussian_blur", {"sigma": 1.0}]]}, scale=2)(_photo(48), np.random.default_rng(0))


def test_hr_ops_make_a_new_target():
    pipe = D.build("bicubic", scale=2, hr_ops=[["hr_crop", {"height": 40, "width": 30}],
                                               ["hr_aspect", {"aspect": 16 / 9, "method": "stretch"}]])
    assert pipe.changes_hr
    assert not D.build("bicubic").changes_hr
    params = pipe.sample(np.random.default_rng(0))
    lr, hr = pipe.apply_pair(_photo(96), params)
    assert hr.shape[-2:] == (40, 70)
    assert lr.shape[-2:] == (20, 35)
    assert torch.equal(lr, pipe.apply(_photo(96), params))


def test_hr_geometry_ops():
    x = _photo(96)
    assert D.rescale_hr(x, 0.5).shape[-2:] == (48, 48)
    assert D.change_aspect(x[..., :54, :], 16 / 9, method="crop").shape[-2:] == (54, 96)
    assert D.change_aspect(x, 16 / 9, method="crop").shape[-2:] == (54, 96)
    assert D.change_aspect(x, 16 / 9, strength=0.0).shape[-2:] == (96, 96)
    assert torch.equal(D.crop(x, 10, 20, 0.0, 1.0), x[..., :10, 76:])


# --------------------------------------------------------------------------------------------------- errors

def test_bad_parameters_raise_clear_errors(banks, tmp_path):
    x = _photo(32)
    with pytest.raises(ValueError, match="sigma"):
        D.add_gaussian_noise(x, -0.1)
    with pytest.raises(ValueError, match="sigma"):
        D.gaussian_blur(x, -1.0)
    with pytest.raises(ValueError, match="sigma"):
        D.build("blur_bicubic", blur_sigma=(-1.0, 2.0))
    for q in (0, 101, 50.5):
        with pytest.raises(ValueError, match="1..100"):
            D.jpeg(x, q)
    with pytest.raises(ValueError, match="1..100"):
        D.build("jpeg", quality=(0, 90))
    for s in (0, -2):
        with pytest.raises(ValueError, match="scale"):
            D.build("bicubic", scale=s)
        with pytest.raises(ValueError, match="scale"):
            D.resize(x, scale=s)
    with pytest.raises(ValueError, match="float"):
        D.jpeg(x.mul(255).to(torch.uint8), 50)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        D.blur(x[0], K.gaussian_kernel(3, 1.0))
    with pytest.raises(ValueError, match="mode"):
        D.resize(x, scale=0.5, mode="lanczos")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .npy or .png"):
        D.build("realsr", kernel_bank=str(tmp_path / "empty"), noise_bank=banks["noise_bank"])
    with pytest.raises(ValueError, match="kernel_bank=.*noise_bank="):
        D.build("realsr")
    with pytest.raises(FileNotFoundError, match="noise bank"):
        D.build("realsr", kernel_bank=banks["kernel_bank"], noise_bank=str(tmp_path / "none.npz"))
    with pytest.raises(ValueError, match="scale=1"):
        D.build("denoise_gaussian", scale=2)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(KeyError, match="second_order"):
        D.build("no_such_preset")
    with pytest.raises(KeyError, match="gaussian_blur"):
        D.get_op("no_such_op")
    with pytest.raises(KeyError, match="blur_sigma"):
        D.build("blur_bicubic", blur_sgima=(1, 2))
    with pytest.raises(KeyError, match="sigma"):
        D.get_op("gaussian_blur").sample_params(np.random.default_rng(0), sigmaa=1.0)
    with pytest.raises(KeyError, match="gaussian"):
        K.make_kernel({"type": "gauss"})
    with pytest.raises(KeyError, match="jpeg"):
        D.build({"steps": [["jpg", {}]]})


# ------------------------------------------------------------------------------------------------ noise bank

def test_noise_bank_recovers_known_noise_std(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:160] / 160.0
    smooth = np.stack([0.3 + 0.3 * xx, 0.5 + 0.1 * np.sin(4 * yy), 0.2 + 0.4 * xx * yy], axis=-1)
    smooth[80:, 80:] += 0.3 * ((xx[80:, 80:] * 40).astype(int) % 2)[..., None]  # a striped (structured) corner
    sigma = 0.04
    bank = extract_noise_patches(np.clip(smooth + rng.normal(0, sigma, smooth.shape), 0, 1).astype(np.float32), 32)
    assert abs(bank.std() / sigma - 1) < 0.2
    assert np.allclose(bank.patches.mean(axis=(1, 2)), 0, atol=1e-5)  # zero-mean patches
    loaded = NoiseBank.load(bank.save(tmp_path / "bank.npz"))
    assert np.array_equal(loaded.patches, bank.patches)
    assert loaded.meta == bank.meta
    x = torch.full((2, 3, 50, 70), 0.5)
    y = D.add_bank_noise(x, loaded, 0.5, seed=1)
    assert float((y - x).std()) == pytest.approx(0.5 * bank.std(), rel=0.2)
    assert not torch.equal(y[0], y[1])
    assert torch.equal(y, D.add_bank_noise(x, loaded, 0.5, seed=1))


def test_noise_bank_rejects_structure():
    stripes = np.zeros((64, 64, 3), np.float32)
    stripes[:, ::2] = 1.0  # pure structure, no noise: the Gaussian residual is a striped pattern
    stripes[:, :, :] *= (np.arange(64) < 32)[None, :, None]  # ... over half of each 64 px window
    with pytest.raises(ValueError, match="no noise patch survived"):
        extract_noise_patches(stripes, 64, flat_quantile=1.0)
    with pytest.raises(FileNotFoundError):
        NoiseBank.load("/nonexistent/bank.npz")


# ---------------------------------------------------------------------------------------------------- mixup

@pytest.mark.parametrize("space", ["srgb", "linear"])
def test_mixup_per_sample_lambda_shared_by_input_and_target(space):
    g = torch.Generator().manual_seed(0)
    lr, hr = torch.rand(8, 3, 6, 6, generator=g), torch.rand(8, 3, 12, 12, generator=g)
    m = mixup.mixup_pair(lr, hr, np.random.default_rng(0), alpha=1.0, space=space)
    assert m.lam.shape == (8,)
    assert len(set(m.lam.tolist())) == 8
    assert sorted(m.perm.tolist()) == list(range(8))
    from lab.color import srgb_to_linear

    enc = (lambda t: t) if space == "srgb" else srgb_to_linear
    for i in range(8):
        j = int(m.perm[i])
        if j == i:
            continue
        for x, mixed in ((lr, m.lr), (hr, m.hr)):
            a, b, y = enc(x[i]).flatten(), enc(x[j]).flatten(), enc(mixed[i]).flatten()
            lam = float(((y - b) @ (a - b)) / ((a - b) @ (a - b)))  # least-squares lambda from the outputs
            assert lam == pytest.approx(float(m.lam[i]), abs=1e-3)


def test_mixup_callback_is_seeded_and_mixes_training_batches():
    lr, hr = torch.rand(4, 3, 6, 6), torch.rand(4, 3, 12, 12)
    outs = []
    for _ in range(2):
        cb = mixup.RestorationMixup(alpha=0.4, seed=5)
        cb.learn = SimpleNamespace(xb=(lr,), yb=(hr,))
        cb.before_batch()
        outs.append((cb.learn.xb[0], cb.learn.yb[0]))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])
    assert not torch.equal(outs[0][0], lr)
    assert outs[0][1].shape == hr.shape
    assert mixup.RestorationMixup.run_valid is False


def test_builtin_banks_make_realsr_run_without_files():
    bank = K.load_kernel_bank("builtin")
    assert len(bank) == 32
    assert all(k.shape == (15, 15) and abs(float(k.sum()) - 1) < 1e-5 for k in bank)
    assert bank is K.builtin_kernel_bank(), "drawn once, from a fixed seed"
    from lab.noise_bank import load_bank

    noise = load_bank("builtin")
    assert len(noise) > 10
    assert 0 < noise.std() < 0.05
    assert noise.meta["source"].startswith("builtin")
    pipe = D.build("realsr", scale=2, kernel_bank="builtin", noise_bank="builtin")
    hr = torch.full((1, 3, 32, 32), 0.5)
    params = pipe.sample(np.random.default_rng(3))
    lr = pipe.apply(hr, params)
    assert lr.shape == (1, 3, 16, 16), "real noise added"
    assert float(lr.std()) > 0, "real noise added"
    assert torch.equal(lr, pipe.apply(hr, params)), "replays byte for byte"
