"""Structural losses: SSIM, MS-SSIM (Wang et al. 2003) and the L1 + MS-SSIM mix of Zhao et al. 2017."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from lab.losses.base import ImageLoss, check_choice, image_mean

# Wang et al. 2003, "Multi-scale structural similarity for image quality assessment", Table/Eq. 7 exponents.
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# Zhao et al. 2017, "Loss Functions for Image Restoration with Neural Networks" (arXiv:1511.08861), Sec. 3.3.
ZHAO_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)
PADDINGS = ("valid", "reflect")
_FACTOR_MIN = 1e-6  # SSIM factors are clamped here before fractional powers (as pytorch_msssim's relu)


def _power(x: torch.Tensor, w: float) -> torch.Tensor:
    """x ** w; x clamped to >= 1e-6 first when w is fractional (a negative base would give NaN)."""
    return x**w if float(w).is_integer() else x.clamp(min=_FACTOR_MIN) ** w


def gaussian_window(sigma: float, size: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian of `sigma`, `size` taps (default 2*ceil(3*sigma) + 1, i.e. 11 for sigma 1.5).

    Shape: () -> (size,).
    """
    if not sigma > 0:
        raise ValueError(f"Gaussian sigma must be > 0, got {sigma}")
    size = size or 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise ValueError(f"Gaussian window size must be odd and >= 1, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _filter(x: torch.Tensor, g: torch.Tensor, padding: str) -> torch.Tensor:
    """Separable depthwise Gaussian filtering, 'valid' (no padding) or 'reflect' (same size)."""
    c, k = x.shape[1], g.numel()
    g = g.to(x)
    if padding == "reflect":
        x = F.pad(x, (k // 2,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _check_size(x: torch.Tensor, win: int, padding: str, what: str) -> None:
    h, w = x.shape[-2:]
    small = min(h, w) < win if padding == "valid" else min(h, w) <= win // 2
    if small:
        raise ValueError(
            f"{what}: image {h}x{w} is too small for a {win}x{win} Gaussian window with padding={padding!r}; "
            "use larger patches, padding='reflect', fewer scales (msssim(scales=3)) or the multi-sigma mode "
            "(msssim(sigmas=[0.5, 1.5, 4.0]))")


def ssim_maps(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, padding: str = "valid",
              data_range: float = 1.0, k1: float = 0.01, k2: float = 0.03) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel luminance l and contrast-structure cs maps of SSIM (Wang et al. 2004) with 1-D window `g`.

    SSIM = l * cs; C1 = (k1 L)^2, C2 = (k2 L)^2, statistics from the separable Gaussian window.
    Shape: (B, C, H, W), (B, C, H, W) -> two (B, C, H', W') maps (H' = H - k + 1 for 'valid', H for 'reflect').
    """
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mx, my = _filter(x, g, padding), _filter(y, g, padding)
    sxx = _filter(x * x, g, padding) - mx * mx
    syy = _filter(y * y, g, padding) - my * my
    sxy = _filter(x * y, g, padding) - mx * my
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return lum, cs


def _center_crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top:top + h, left:left + w]


class SSIMLoss(ImageLoss):
    """1 - SSIM (Wang et al. 2004): Gaussian window (11x11, sigma 1.5), K1 0.01, K2 0.03, data range 1.

    SSIM is computed per channel on the [0, 1] values and averaged over channels and pixels; 'valid' filtering by
    default (the benchmark convention), 'reflect' keeps every pixel.
    """

    def __init__(self, sigma: float = 1.5, win_size: int = 11, padding: str = "valid", reduction: str = "mean"):
        super().__init__(reduction)
        self.padding = check_choice("padding", padding, PADDINGS)
        self.register_buffer("window", gaussian_window(sigma, win_size), persistent=False)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1 - mean SSIM of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        _check_size(pred, self.window.numel(), self.padding, "ssim")
        lum, cs = ssim_maps(pred, target, self.window, self.padding)
        return 1 - image_mean(lum * cs)


class MSSSIMLoss(ImageLoss):
    """1 - MS-SSIM, in one of two modes (both per channel, averaged over channels).

    Standard (`sigmas=None`), Wang, Simoncelli & Bovik 2003 ("Multi-scale structural similarity for image quality
    assessment"): `scales` levels ('auto', the default: as many of the 5 as the input holds, each level at least
    `win_size` px, so a 96 px training patch gets 4 and a 176 px one all 5; the count used is `last_scales`);
    level 1 is the input, each next level is the previous one 2x2-average-pooled
    with stride 2 (an odd last row/column is dropped). At each level j the SSIM maps use the same Gaussian window
    (`win_size` x `win_size`, `sigma`); cs_j = mean of the cs map; at the last level M also l_M = mean of the
    luminance map. MS-SSIM = l_M^w_M * prod_j cs_j^w_j with `weights` (default: Wang's 0.0448, 0.2856, 0.3001,
    0.2363, 0.1333 for 5 scales; for other `scales`, their first `scales` values renormalised to sum 1).

    Multi-sigma (`sigmas=[s_1, ..., s_M]`), Zhao et al. 2017 ("Loss Functions for Image Restoration with Neural
    Networks", arXiv:1511.08861): no downsampling; scale j uses a Gaussian window of sigma s_j (size
    2*ceil(3 s_j) + 1) on the full-resolution image. The maps of all scales are centre-cropped to the smallest one
    (that of the widest window) and combined per pixel, l_M(p)^w_M * prod_j cs_j(p)^w_j, with l from the last
    sigma; the loss is 1 - the mean over pixels. `weights` default to 1 for every scale, as in Zhao et al.

    A factor (cs_j, l_M) with a fractional exponent is clamped to >= 1e-6 before the power, so negative values
    (anti-correlated content) cannot produce NaN; with integer exponents (Zhao's default 1) it is used as is.
    """

    def __init__(self, scales: int | str = "auto", sigmas: Sequence[float] | None = None,
                 weights: Sequence[float] | None = None, sigma: float = 1.5, win_size: int = 11, padding: str = "valid",
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.padding = check_choice("padding", padding, PADDINGS)
        self.sigmas = tuple(float(s) for s in sigmas) if sigmas is not None else None
        if isinstance(scales, str) and scales != "auto":
            raise ValueError(f"MS-SSIM scales must be an int or 'auto', got {scales!r}")
        self.auto = scales == "auto" and self.sigmas is None and weights is None
        n = len(self.sigmas) if self.sigmas is not None else (len(MSSSIM_WEIGHTS) if scales == "auto" else int(scales))
        if n < 1:
            raise ValueError(f"MS-SSIM needs at least one scale, got scales={scales}, sigmas={sigmas}")
        if weights is None:
            if self.sigmas is not None:
                weights = [1.0] * n
            else:
                if n > len(MSSSIM_WEIGHTS):
                    raise ValueError(f"MS-SSIM default weights cover up to {len(MSSSIM_WEIGHTS)} scales, got "
                                     f"scales={n}; pass weights=[...] of that length")
                w = MSSSIM_WEIGHTS[:n]
                weights = [x / sum(w) for x in w]
        if len(weights) != n:
            raise ValueError(f"MS-SSIM weights {list(weights)} must have one value per scale ({n})")
        self.weights = tuple(float(w) for w in weights)
        if self.sigmas is not None:
            self.windows = [gaussian_window(s) for s in self.sigmas]
        else:
            self.windows = [gaussian_window(sigma, win_size)]

    def msssim(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MS-SSIM of each image (1 = identical).

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        if self.sigmas is None:
            return self._standard(pred, target)
        return self._multi_sigma(pred, target)

    def _fitting_weights(self, h: int, w: int) -> tuple[float, ...]:
        """The weights of the levels an h x w input holds ('auto'), Wang's renormalised; else the set weights."""
        if not self.auto:
            return self.weights
        win, n = self.windows[0].numel(), 1
        while n < len(MSSSIM_WEIGHTS) and min(h, w) // 2 ** n >= win:
            n += 1
        return tuple(x / sum(MSSSIM_WEIGHTS[:n]) for x in MSSSIM_WEIGHTS[:n])

    def _standard(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, out = self.windows[0], 1.0
        weights = self._fitting_weights(*x.shape[-2:])
        self.last_scales = len(weights)
        for j, w in enumerate(weights):
            if j:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            _check_size(x, g.numel(), self.padding, f"msssim scale {j + 1} of {len(weights)}")
            lum, cs = ssim_maps(x, y, g, self.padding)
            factor = cs.mean((2, 3)) if j < len(weights) - 1 else (lum * cs).mean((2, 3))
            out = out * _power(factor, w)
        return out.mean(1)

    def _multi_sigma(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        maps = []
        for g in self.windows:
            _check_size(x, g.numel(), self.padding, f"msssim sigma window {g.numel()}")
            maps.append(ssim_maps(x, y, g, self.padding))
        h, w = min(m[1].shape[-2] for m in maps), min(m[1].shape[-1] for m in maps)
        out = _power(_center_crop(maps[-1][0], h, w), self.weights[-1])
        for (_, cs), wt in zip(maps, self.weights):
            out = out * _power(_center_crop(cs, h, w), wt)
        return image_mean(out)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1 - MS-SSIM of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return 1 - self.msssim(pred, target)


class L1MSSSIMLoss(ImageLoss):
    """The mix of Zhao et al. 2017 (Eq. 12): alpha * (1 - MS-SSIM) + (1 - alpha) * G_sigmaM-weighted L1.

    MS-SSIM is the multi-sigma mode (default sigmas 0.5, 1, 2, 4, 8; see `MSSSIMLoss`); the L1 term is the
    |pred - target| map filtered with the Gaussian of the last sigma (per channel), on the same centre-cropped
    pixels as the MS-SSIM map, averaged. alpha = 0.84 as in the paper.
    """

    def __init__(self, alpha: float = 0.84, sigmas: Sequence[float] = ZHAO_SIGMAS,
                 weights: Sequence[float] | None = None, padding: str = "valid", reduction: str = "mean"):
        super().__init__(reduction)
        if not 0 <= alpha <= 1:
            raise ValueError(f"l1_msssim alpha must be in [0, 1], got {alpha}")
        if not sigmas:
            raise ValueError("l1_msssim needs a non-empty list of sigmas (the multi-sigma MS-SSIM)")
        self.alpha = float(alpha)
        self.msssim = MSSSIMLoss(sigmas=sigmas, weights=weights, padding=padding)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mixed loss of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        ms = self.msssim.per_image(pred, target)
        g = self.msssim.windows[-1]
        l1 = _filter((pred - target).abs(), g, self.msssim.padding)
        sizes = [(pred.shape[-2] - w.numel() + 1, pred.shape[-1] - w.numel() + 1) for w in self.msssim.windows]
        if self.msssim.padding == "valid":
            l1 = _center_crop(l1, min(s[0] for s in sizes), min(s[1] for s in sizes))
        return self.alpha * ms + (1 - self.alpha) * image_mean(l1)
