"""PSNR and SSIM the way super-resolution papers compute them, and fastai metrics built on them.

The convention (MATLAB code shipped with EDSR/RCAN and the papers): clamp and round the SR output to uint8,
convert both images to BT.601 luma Y (MATLAB `rgb2ycbcr`, kept in floating point), crop `scale` pixels from
every border, then PSNR with peak 255 and SSIM (Wang et al. 2004, https://doi.org/10.1109/TIP.2003.819861)
with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the map.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
from fastai.learner import Metric

from lab.color import rgb_to_y
from lab.images import check_image_tensor

_SSIM_WINDOW, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2 = 11, 1.5, 0.01, 0.03


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the nearest 1/255 step, as benchmark code does to SR outputs before scoring.

    Shape: any -> same.
    """
    return x.clamp(0, 1).mul(255).round().div(255)


def _prepare(sr: torch.Tensor, hr: torch.Tensor, crop_border: int, y_only: bool,
             data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images in float64 on the 0..255 scale, as Y (y_only) or all channels, with the border cropped."""
    check_image_tensor(sr, "sr")
    check_image_tensor(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range!r}")
    h, w = sr.shape[-2:]
    if 2 * crop_border >= min(h, w):
        raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")
    a, b = sr.detach().double() / data_range, hr.detach().double() / data_range
    if y_only:
        if a.shape[1] == 3:
            a, b = rgb_to_y(a), rgb_to_y(b)
        elif a.shape[1] != 1:  # one channel is taken to be Y already (Y-channel models)
            raise ValueError(f"y_only needs RGB (3 channels) or Y (1 channel) images, got {a.shape[1]} channels")
    if crop_border:
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    return a * 255.0, b * 255.0


def psnr(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 0, y_only: bool = False,
         data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB (float64; inf for identical images) with the benchmark convention when y_only=True.

    Shape: (B, C, H, W), (B, C, H, W) -> (B,). Inputs in [0, data_range]; RGB when y_only (or already Y, C=1).
    """
    a, b = _prepare(sr, hr, crop_border, y_only, data_range)
    mse = (a - b).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0 ** 2 / mse)


@lru_cache(maxsize=8)
def _gaussian_1d(device: torch.device) -> torch.Tensor:
    """The normalised 1-D factor of MATLAB `fspecial('gaussian', 11, 1.5)` (the 2-D window is its outer product)."""
    r = torch.arange(_SSIM_WINDOW, dtype=torch.float64, device=device) - (_SSIM_WINDOW - 1) / 2
    g = torch.exp(-(r ** 2) / (2 * _SSIM_SIGMA ** 2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor) -> torch.Tensor:
    """MATLAB `filter2(window, x, 'valid')` with the SSIM Gaussian, as two 1-D passes of shifted sums.

    (float64 conv2d has no fast CPU kernel; eleven shifted multiply-adds per axis are several times quicker.)
    Shape: (..., H, W) -> (..., H - 10, W - 10).
    """
    g = _gaussian_1d(x.device).tolist()
    k = len(g)
    h, w = x.shape[-2:]
    rows = sum(g[i] * x[..., i:h - k + 1 + i, :] for i in range(k))
    return sum(g[i] * rows[..., i:w - k + 1 + i] for i in range(k))


def ssim(sr: torch.Tensor, hr: torch.Tensor, crop_border: int = 0, y_only: bool = False) -> torch.Tensor:
    """Per-image SSIM (float64) with the benchmark convention; on RGB, the mean over channels.

    Shape: (B, C, H, W), (B, C, H, W) -> (B,). Inputs in [0, 1]; RGB when y_only (or already Y, C=1).
    """
    a, b = _prepare(sr, hr, crop_border, y_only, 1.0)
    bsz, ch, h, w = a.shape
    if min(h, w) < _SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} after cropping, got {h}x{w}")
    c1, c2 = (_SSIM_K1 * 255.0) ** 2, (_SSIM_K2 * 255.0) ** 2
    stats = _filter_valid(torch.stack([a, b, a * a, b * b, a * b]))  # one filtering call for all five
    mu_a, mu_b, e_aa, e_bb, e_ab = stats.unbind(0)
    var_a, var_b, cov = e_aa - mu_a ** 2, e_bb - mu_b ** 2, e_ab - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return ssim_map.reshape(bsz, -1).mean(dim=1)


class _ImageMetric(Metric):
    """Mean over validation images of a per-image score of the quantized prediction (not a mean of batch means)."""

    base_name = ""

    def __init__(self, y_only: bool = False, crop_border: int = 0, quantize_pred: bool = True):
        if not isinstance(crop_border, int) or crop_border < 0:
            raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")
        self.y_only, self.crop_border, self.quantize_pred = y_only, crop_border, quantize_pred
        self.reset()

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image values, shape (B,)."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the images seen so far."""
        self.total, self.count = 0.0, 0

    def accumulate(self, learn: Any) -> None:
        """Add the per-image scores of `learn.pred` against `learn.yb[0]`."""
        pred, target = learn.pred, learn.yb[0]
        if isinstance(pred, (tuple, list)):
            pred = pred[0]
        pred = pred.detach().float()
        if self.quantize_pred:
            pred = quantize(pred)
        vals = self.score(pred, target.detach().float())
        self.total += float(vals.sum())
        self.count += int(vals.numel())

    @property
    def value(self) -> float | None:
        """Mean per-image score, or None before any image."""
        return self.total / self.count if self.count else None

    @property
    def name(self) -> str:
        """`psnr`/`ssim`, with `_y` when scored on luma."""
        return f"{self.base_name}_y" if self.y_only else self.base_name


class PSNR(_ImageMetric):
    """fastai metric: mean per-image PSNR (`psnr_y` when y_only), the prediction clamped and rounded to uint8 first."""

    base_name = "psnr"

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image values, shape (B,)."""
        return psnr(pred, target, crop_border=self.crop_border, y_only=self.y_only)


class SSIM(_ImageMetric):
    """fastai metric: mean per-image SSIM (`ssim_y` when y_only), the prediction clamped and rounded to uint8 first."""

    base_name = "ssim"

    def score(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image values, shape (B,)."""
        return ssim(pred, target, crop_border=self.crop_border, y_only=self.y_only)


# ---------------------------------------------------------------------------------------------------------------
# high-frequency energy: checkerboard artifacts in flat regions, and a sharpness proxy without learned features

QUANT_ENERGY = 1.0 / 12.0  # energy (0..255 units squared) of uniform 8-bit rounding noise: a floor for the ratios


def _luma_255(x: torch.Tensor) -> torch.Tensor:
    """Y (BT.601, as the benchmark scores) on the 0..255 scale in float64; 1-channel inputs are taken as Y.

    Shape: (B, C, H, W) -> (B, H, W).
    """
    check_image_tensor(x, "image")
    a = x.detach().double()
    if a.shape[1] == 3:
        a = rgb_to_y(a)
    elif a.shape[1] != 1:
        raise ValueError(f"expected RGB (3 channels) or Y (1 channel) images, got {a.shape[1]} channels")
    return a[:, 0] * 255.0


def hf_energy(x: torch.Tensor, cutoff: float = 0.5) -> torch.Tensor:
    """Mean energy per pixel of the frequencies above `cutoff` x Nyquist (radially) of each image's luma, in
    0..255 units squared.

    The mean is removed and a Hann window applied (so the image border is not counted as an edge); the energy is
    rescaled by the window's mean square, so white noise of variance v gives about v x (its share of the spectrum
    above the cutoff). Checkerboard artifacts of upsamplers sit at the Nyquist frequency, detail and noise above
    half of it, blur removes both.
    Shape: (B, C, H, W) in [0, 1] -> (B,) float64.
    """
    if not 0 <= cutoff < math.sqrt(2):
        raise ValueError(f"cutoff must be in [0, sqrt(2)) (fractions of the Nyquist frequency), got {cutoff!r}")
    y = _luma_255(x)
    h, w = y.shape[-2:]
    if min(h, w) < 4:
        raise ValueError(f"hf_energy needs images of at least 4x4 px, got {h}x{w}")
    win = torch.outer(torch.hann_window(h, periodic=False, dtype=y.dtype),
                      torch.hann_window(w, periodic=False, dtype=y.dtype)).to(y.device)
    y = (y - y.mean(dim=(-2, -1), keepdim=True)) * win
    power = torch.fft.fft2(y).abs().pow(2) / (h * w) ** 2  # Parseval: the sum over frequencies is mean(y^2)
    fy, fx = torch.fft.fftfreq(h, dtype=y.dtype), torch.fft.fftfreq(w, dtype=y.dtype)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2).to(y.device) / 0.5
    return (power * (radius >= cutoff)).sum(dim=(-2, -1)) / win.pow(2).mean()


def hf_energy_ratio(sr: torch.Tensor, hr: torch.Tensor, cutoff: float = 0.5,
                    floor: float = QUANT_ENERGY) -> torch.Tensor:
    """High-frequency energy of the output relative to the ground truth's, (E_sr + floor) / (E_hr + floor).

    1: as much fine detail (or noise) as the HR; below 1: blurrier; above 1: more than the HR has (artifacts,
    hallucinated texture). `floor` (8-bit rounding noise energy) keeps a nearly flat HR region from dividing by
    zero. It says nothing about whether the detail is the right one: read it beside PSNR/SSIM.
    Shape: (B, C, H, W), (B, C, H, W) in [0, 1] -> (B,) float64.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    return (hf_energy(sr, cutoff) + floor) / (hf_energy(hr, cutoff) + floor)


def flattest_window(img: torch.Tensor, size: int = 32, border: int = 0) -> tuple[int, int]:
    """(y, x) of the `size` x `size` window with the lowest luma standard deviation (a flat region, where any
    high-frequency energy of an output is an artifact), searched on a half-window grid inside `border` px.

    Shape: (1, C, H, W) in [0, 1] -> (y, x).
    """
    y = _luma_255(img)[0]
    h, w = y.shape
    if not isinstance(size, int) or size < 4 or size + 2 * border > min(h, w):
        raise ValueError(f"a {size}px window inside a {border}px border does not fit a {h}x{w} image; use a "
                         "smaller size (>= 4)")
    step = max(size // 2, 1)
    best, at = math.inf, (border, border)
    for top in range(border, h - border - size + 1, step):
        for left in range(border, w - border - size + 1, step):
            s = float(y[top:top + size, left:left + size].std())
            if s < best:
                best, at = s, (top, left)
    return at
