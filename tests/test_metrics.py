"""Metrics: the field's PSNR/SSIM (MATLAB numbers of RCAN, published bicubic baselines), properties, fastai wrappers."""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lab.images import modcrop, read_image, uint8_to_tensor
from lab.metrics import PSNR, SSIM, psnr, quantize, ssim
from lab.resize import imresize

# Bicubic on Set5 as the papers tabulate it (VDSR, EDSR, RCAN...): scale -> (PSNR-Y, SSIM-Y).
PUBLISHED_BICUBIC_SET5 = {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)}
SET5 = ("baby", "bird", "butterfly", "head", "woman")


def _matlab_rcan_scores(ref_dir):
    """{(scale, name): (psnr, ssim)} from the RCAN test code's MATLAB log."""
    pat = re.compile(r"^x(\d+)\s+\d+\s+(\w+?)_RCAN_x\d+\.png:\s*PSNR=\s*([\d.]+)\s+SSIM=\s*([\d.]+)")
    out = {}
    for line in (ref_dir / "reference" / "RCAN_Set5" / "matlab_psnr_ssim.txt").read_text().splitlines():
        m = pat.match(line.strip())
        if m:
            out[(int(m[1]), m[2])] = (float(m[3]), float(m[4]))
    return out


@pytest.mark.reference
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_matlab_rcan_scores(ref_dir, scale):
    expected = {name: v for (s, name), v in _matlab_rcan_scores(ref_dir).items() if s == scale}
    assert sorted(expected) == sorted(SET5), f"could not parse x{scale} lines of matlab_psnr_ssim.txt"
    root = ref_dir / "reference" / "RCAN_Set5"
    for name, (p_ref, s_ref) in expected.items():
        sr = uint8_to_tensor(read_image(root / "SR" / f"X{scale}" / f"{name}.png"))
        hr = uint8_to_tensor(read_image(root / "HR" / f"X{scale}" / f"{name}.png"))
        p = psnr(sr, hr, crop_border=scale, y_only=True).item()
        s = ssim(sr, hr, crop_border=scale, y_only=True).item()
        assert abs(p - p_ref) < 1e-4, f"{name} x{scale}: PSNR {p:.6f} vs MATLAB {p_ref:.6f}"
        assert abs(s - s_ref) < 1e-5, f"{name} x{scale}: SSIM {s:.6f} vs MATLAB {s_ref:.6f}"


@pytest.mark.reference
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_baseline_matches_published(set5_dir, scale):
    ps, ss = [], []
    for name in SET5:
        hr = modcrop(read_image(set5_dir / "HR" / f"{name}.bmp"), scale)
        lr = read_image(set5_dir / "LR_bicubic" / f"X{scale}" / f"{name}.png")
        bic, ref = uint8_to_tensor(imresize(lr, scale)), uint8_to_tensor(hr)
        ps.append(psnr(bic, ref, crop_border=scale, y_only=True).item())
        ss.append(ssim(bic, ref, crop_border=scale, y_only=True).item())
    p_pub, s_pub = PUBLISHED_BICUBIC_SET5[scale]
    assert abs(np.mean(ps) - p_pub) <= 0.02, f"x{scale}: mean PSNR-Y {np.mean(ps):.4f} vs published {p_pub}"
    assert abs(np.mean(ss) - s_pub) <= 0.002, f"x{scale}: mean SSIM-Y {np.mean(ss):.4f} vs published {s_pub}"


def test_identical_images():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for y_only in (False, True):
        assert torch.isinf(psnr(x, x, y_only=y_only)).all()
        assert torch.allclose(ssim(x, x, y_only=y_only), torch.ones(3, dtype=torch.float64))


def test_psnr_of_known_mse():
    hr = torch.zeros(2, 3, 16, 16)
    sr = hr.clone()
    sr[0] += 0.1  # MSE 0.01 -> 20 dB
    sr[1, :, ::2] += 0.2  # half the rows off by 0.2: MSE 0.02
    p = psnr(sr, hr)
    assert p.shape == (2,)
    assert p.dtype == torch.float64
    assert torch.allclose(p, torch.tensor([20.0, 10 * np.log10(1 / 0.02)], dtype=torch.float64), atol=1e-5)
    assert torch.allclose(psnr(sr * 255, hr * 255, data_range=255.0), p, atol=1e-4)
    # grey pixels: Y differs by 219/255 of the RGB difference (studio swing)
    py = psnr(sr[:1], hr[:1], y_only=True)
    assert torch.allclose(py, torch.tensor([-20 * np.log10(0.1 * 219 / 255)], dtype=torch.float64), atol=1e-5)


def test_crop_border_ignores_border_errors():
    hr = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    sr = hr.clone()
    sr[..., :2, :] = 0
    sr[..., :, -2:] = 1
    assert torch.isfinite(psnr(sr, hr, crop_border=1)).all()
    assert torch.isinf(psnr(sr, hr, crop_border=2)).all()
    with pytest.raises(ValueError, match="crop_border"):
        psnr(sr, hr, crop_border=10)


def test_ssim_matches_skimage_and_averages_channels():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    hr = rng.random((3, 40, 48))
    sr = np.clip(hr + rng.normal(0, 0.1, hr.shape), 0, 1)
    a, b = torch.from_numpy(sr)[None], torch.from_numpy(hr)[None]
    per_channel = [structural_similarity(sr[c] * 255, hr[c] * 255, data_range=255, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False) for c in range(3)]
    assert abs(ssim(a, b).item() - np.mean(per_channel)) < 1e-10
    one = [ssim(a[:, c:c + 1], b[:, c:c + 1]).item() for c in range(3)]
    assert np.allclose(one, per_channel, atol=1e-10)


def test_y_only_accepts_y_channel_input():
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(3))
    y = x.flip(0)
    from lab.color import rgb_to_y

    assert torch.allclose(psnr(x, y, y_only=True), psnr(rgb_to_y(x), rgb_to_y(y), y_only=True))
    assert torch.allclose(ssim(x, y, y_only=True), ssim(rgb_to_y(x), rgb_to_y(y), y_only=True))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_quantize():
    x = torch.tensor([-0.2, 0.0, 0.31, 0.4 / 255, 1.7 / 255, 1.0, 1.4])
    q = quantize(x)
    assert torch.allclose(q * 255, torch.round(q * 255))
    assert torch.allclose(q, torch.tensor([0.0, 0.0, 79 / 255, 0.0, 2 / 255, 1.0, 1.0]))


def test_metric_names():
    assert PSNR(y_only=True, crop_border=2).name == "psnr_y"
    assert PSNR().name == "psnr"
    assert SSIM(y_only=True, crop_border=2).name == "ssim_y"
    assert SSIM().name == "ssim"


@pytest.mark.parametrize("cls, fn", [(PSNR, psnr), (SSIM, ssim)])
def test_fastai_metric_averages_per_image_over_batches(cls, fn):
    g = torch.Generator().manual_seed(4)
    hr = torch.rand(4, 3, 24, 24, generator=g)
    noise = torch.randn(4, 3, 24, 24, generator=g) * torch.tensor([0.01, 0.05, 0.1, 0.2]).view(4, 1, 1, 1)
    pred = hr + noise  # partly outside [0, 1]: the metric must clamp and round it first
    metric = cls(y_only=True, crop_border=2)
    metric.reset()
    for sl in (slice(0, 3), slice(3, 4)):  # batches of 3 and 1: per-image, not per-batch, averaging
        metric.accumulate(SimpleNamespace(pred=pred[sl], yb=(hr[sl],)))
    per_image = fn(quantize(pred), hr, crop_border=2, y_only=True)
    assert metric.value == pytest.approx(per_image.mean().item(), abs=1e-9)
    batch_means = (per_image[:3].mean() + per_image[3]) / 2
    assert abs(metric.value - batch_means.item()) > 1e-6  # the two averages differ here, so the test can tell
    metric.reset()
    assert metric.value is None


def test_hf_energy_sees_checkerboards_noise_and_blur():
    from lab.metrics import flattest_window, hf_energy, hf_energy_ratio

    flat = torch.full((1, 3, 32, 32), 0.5)
    board = flat.clone()
    board[..., ::2, ::2] += 4 / 255
    board[..., 1::2, 1::2] += 4 / 255  # the period-2 pattern a transposed conv leaves
    assert float(hf_energy(flat)[0]) == 0.0
    assert float(hf_energy(board)[0]) > 1.0
    assert float(hf_energy_ratio(board, flat)[0]) > 10, "a checkerboard on a flat patch stands far above 1"
    assert float(hf_energy_ratio(flat, flat)[0]) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    img = (0.4 + 0.2 * torch.rand(1, 1, 64, 64, generator=g).expand(1, 3, 64, 64)).clamp(0, 1)
    blurred = torch.nn.functional.avg_pool2d(img, 3, 1, 1, count_include_pad=False)
    assert float(hf_energy_ratio(blurred, img)[0]) < 0.3, "blur removes high-frequency energy"
    scene = torch.rand(1, 3, 64, 64, generator=g)
    scene[..., 32:, :32] = 0.3  # one flat quadrant
    y, x = flattest_window(scene, 16)
    assert y >= 32
    assert x + 16 <= 32
    with pytest.raises(ValueError, match="cutoff"):
        hf_energy(flat, cutoff=2.0)
    with pytest.raises(ValueError, match="does not fit"):
        flattest_window(flat, 64)
