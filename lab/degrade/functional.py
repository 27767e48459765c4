"""Degradation ops as pure functions on image batches, with the argument checks they share.

Conventions: tensors are (B, C, H, W) float32 in [0, 1]; every op's output is clipped to [0, 1]. Lengths are in
pixels, angles in degrees, noise sigma in [0, 1] units (names ending in `_255` are in 0-255 units). Noise ops draw
from their own generator seeded by `seed`, so the same arguments give the same bytes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lab import color
from lab.images import check_image_tensor
from lab.kernels import auto_size, filter2d, gaussian_kernel
from lab.resize import imresize_tensor

RESIZE_MODES = ("bicubic", "bilinear", "area", "nearest")
BLUR_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
MOTION_KINDS = ("line", "trajectory")
NOISE_KINDS = ("gaussian", "poisson")
CONTRAST_CENTERS = ("mean", "mid")
ASPECT_METHODS = ("stretch", "crop")
POISSON_PEAK = 255.0  # photon count of a full-scale pixel: an 8-bit image's levels, as Real-ESRGAN's default
SEED_MAX = 2 ** 31 - 1


# ----------------------------------------------------------------------------------------------- validation

def is_number(v: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_value(name: str, v: float, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> float:
    """`v` as float, or ValueError naming the parameter and its accepted interval."""
    if not is_number(v) or not math.isfinite(float(v)):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    v = float(v)
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    if bad_lo or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else lo
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo_s}, {'inf' if hi is None else hi}], "
                         f"got {v}")
    return v


def check_mode(mode: str) -> str:
    """A resize mode name, or ValueError listing the accepted ones."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {list(RESIZE_MODES)}, got {mode!r}")
    return mode


def check_quality(quality: Any, fmt: str) -> int:
    """A compression quality, an integer in 1..100 (0 and > 100 are rejected), or ValueError."""
    if not is_number(quality) or float(quality) != int(quality) or not 1 <= int(quality) <= 100:
        raise ValueError(f"{fmt} quality must be an integer in 1..100, got {quality!r}")
    return int(quality)


def check_probability(v: Any, name: str) -> float:
    """A probability in [0, 1], or ValueError naming the parameter."""
    return check_value(name, v, lo=0, hi=1)


def check_seed(seed: Any) -> int:
    """A non-negative integer seed, or ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= 2 ** 63 - 1:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


# ----------------------------------------------------------------------------------------------- resampling

def _out_size(hw: Sequence[int], scale: float) -> tuple[int, int]:
    """ceil(n * scale) per dimension, as MATLAB imresize (float noise tolerated), at least 1."""
    return tuple(max(1, math.ceil(int(n) * scale - 1e-9)) for n in hw)  # type: ignore[return-value]


def resize(x: torch.Tensor, scale: float | None = None, size: Sequence[int] | None = None,
           mode: str = "bicubic") -> torch.Tensor:
    """Resize by `scale` (output ceil(H * scale)) or to `size` = (h, w), any factor up or down.

    Modes: 'bicubic' = MATLAB imresize (antialiased when shrinking, `lab.resize.imresize_tensor`), 'bilinear'
    (torch, antialiased), 'area' (box average), 'nearest' (torch 'nearest-exact'). Float output, clipped to [0, 1].
    Shape: (B, C, H, W) -> (B, C, h, w).
    """
    check_image_tensor(x, "resize")
    check_mode(mode)
    if (scale is None) == (size is None):
        raise ValueError(f"give exactly one of scale or size; got scale={scale!r}, size={size!r}")
    if scale is not None:
        check_value("resize scale", scale, lo=0, lo_open=True)
        out = _out_size(x.shape[-2:], float(scale))
    else:
        if len(size) != 2 or not all(is_number(n) and int(n) == n and n >= 1 for n in size):
            raise ValueError(f"size must be (height, width) with positive integers, got {size!r}")
        out = (int(size[0]), int(size[1]))
    if out == tuple(x.shape[-2:]):
        return x
    if mode == "bicubic":
        y = imresize_tensor(x, scale=float(scale)) if scale is not None else imresize_tensor(x, size=out)
    elif mode == "bilinear":
        y = F.interpolate(x, size=out, mode="bilinear", align_corners=False, antialias=True)
    elif mode == "area":
        y = F.interpolate(x, size=out, mode="area")
    else:
        y = F.interpolate(x, size=out, mode="nearest-exact")
    return y.clamp(0, 1)


# ----------------------------------------------------------------------------------------------------- blur

def blur(x: torch.Tensor, kernel: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Blur every channel with a (k, k) kernel (or (B, k, k), one per image): depthwise conv2d, reflect padding.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "blur")
    return filter2d(x, kernel).clamp(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: float, sigma_y: float | None = None, angle: float = 0.0,
                  size: int = 0) -> torch.Tensor:
    """Gaussian blur, sigmas in px (anisotropic with `sigma_y`, rotated by `angle` degrees); size 0 = 2 ceil(3 s)+1.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    sx = check_value("sigma", sigma, lo=0, lo_open=True)
    sy = sx if sigma_y is None else check_value("sigma_y", sigma_y, lo=0, lo_open=True)
    k = gaussian_kernel(int(size) or auto_size(3 * max(sx, sy)), sx, sy, angle)
    return blur(x, k)


# ---------------------------------------------------------------------------------------------------- noise

def _randn(shape: Sequence[int], seed: int) -> torch.Tensor:
    """Standard normal noise (CPU float32) from its own generator, so the same seed gives the same bytes."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(check_seed(seed)))


def add_gaussian_noise(x: torch.Tensor, sigma: float, gray: bool = False, seed: int = 0) -> torch.Tensor:
    """Add N(0, sigma^2) noise (sigma in [0, 1] units), per channel or the same in all channels (`gray`); clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_gaussian_noise")
    sigma = check_value("noise sigma", sigma, lo=0)
    b, c, h, w = x.shape
    n = _randn((b, 1 if gray else c, h, w), seed).to(x)
    return (x + sigma * n).clamp(0, 1)


def add_poisson_noise(x: torch.Tensor, scale: float, gray: bool = False, seed: int = 0,
                      peak: float = POISSON_PEAK) -> torch.Tensor:
    """Add shot noise: (Poisson(x * peak) / peak - x) * scale (`scale` 1 = a sensor of `peak` photons at white).

    With `gray` the noise is computed on the channel mean and added to every channel. Clipped.
    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_poisson_noise")
    scale = check_value("poisson scale", scale, lo=0)
    peak = check_value("poisson peak", peak, lo=0, lo_open=True)
    src = x.detach().clamp(0, 1).float().cpu()
    if gray:
        src = src.mean(dim=1, keepdim=True)
    counts = torch.poisson(src * peak, generator=torch.Generator().manual_seed(check_seed(seed)))
    return (x + (counts / peak - src).to(x) * scale).clamp(0, 1)


def add_speckle_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Multiplicative noise x + x * N(0, sigma^2) (sigma in [0, 1] units, per channel); clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_speckle_noise")
    sigma = check_value("speckle sigma", sigma, lo=0)
    return (x + x * sigma * _randn(x.shape, seed).to(x)).clamp(0, 1)


def add_salt_pepper(x: torch.Tensor, amount: float, salt_ratio: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Set a fraction `amount` of pixels (all channels together) to white (share `salt_ratio`) or black.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_salt_pepper")
    amount = check_value("salt-and-pepper amount", amount, lo=0, hi=1)
    salt_ratio = check_value("salt_ratio", salt_ratio, lo=0, hi=1)
    b, _, h, w = x.shape
    u = torch.rand((b, 1, h, w), generator=torch.Generator().manual_seed(check_seed(seed))).to(x.device)
    salt = u < amount * salt_ratio
    pepper = (u >= amount * salt_ratio) & (u < amount)
    return x.masked_fill(salt, 1.0).masked_fill(pepper, 0.0).clamp(0, 1)


# ---------------------------------------------------------------------------------------------- compression

def _encode_decode(img: np.ndarray, ext: str, flags: list[int]) -> np.ndarray:
    """Encode an HWC/HW uint8 RGB image with OpenCV and decode it back (RGB kept)."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise ValueError(f"expected an HWC or HW uint8 image, got "
                         f"{getattr(img, 'shape', type(img).__name__)} {getattr(img, 'dtype', '')}")
    color = img.ndim == 3 and img.shape[2] == 3
    src = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if color else (img if img.ndim == 2 else img[:, :, 0])
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(src), flags)
    if not ok:
        raise ValueError(f"OpenCV could not encode an image of shape {img.shape} as {ext}")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if color else out.reshape(img.shape)


def jpeg_uint8(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG encode + decode (OpenCV/libjpeg, 4:2:0 chroma) at `quality` 1..100. Shape: (H, W, 3) uint8 -> same."""
    return _encode_decode(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, check_quality(quality, "JPEG")])


def webp_available() -> bool:
    """Whether this OpenCV build can write WebP."""
    return bool(cv2.haveImageWriter(".webp"))


def webp_uint8(img: np.ndarray, quality: int) -> np.ndarray:
    """WebP (lossy) encode + decode at `quality` 1..100, if OpenCV has WebP. Shape: (H, W, 3) uint8 -> same."""
    q = check_quality(quality, "WebP")
    if not webp_available():
        raise ValueError(f"this OpenCV build ({cv2.__version__}) cannot write WebP; use the 'jpeg' op instead or "
                         "install an opencv-python wheel built with WebP")
    return _encode_decode(img, ".webp", [cv2.IMWRITE_WEBP_QUALITY, q])


def _per_image_uint8(x: torch.Tensor, fn: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """Round each image to uint8 HWC, run `fn`, and return the batch as float in [0, 1]."""
    u8 = x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.stack([fn(np.ascontiguousarray(im if im.shape[2] == 3 else im[:, :, 0])).reshape(im.shape)
                    for im in u8])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype).div(255)


def _check_codec_input(x: torch.Tensor, name: str) -> None:
    check_image_tensor(x, name)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name}: image codecs take 1 or 3 channels, got {x.shape[1]} (shape {tuple(x.shape)})")


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG artefacts at `quality` 1..100 (images rounded to 8 bit first, as a saved file would be).

    Shape: (B, C, H, W) -> (B, C, H, W), C in (1, 3), float in [0, 1] on multiples of 1/255.
    """
    _check_codec_input(x, "jpeg")
    q = check_quality(quality, "JPEG")
    return _per_image_uint8(x, lambda im: jpeg_uint8(im, q))


def webp(x: torch.Tensor, quality: int) -> torch.Tensor:
    """WebP artefacts at `quality` 1..100 (ValueError if this OpenCV lacks WebP).

    Shape: (B, C, H, W) -> (B, C, H, W), C in (1, 3), float in [0, 1].
    """
    _check_codec_input(x, "webp")
    q = check_quality(quality, "WebP")
    return _per_image_uint8(x, lambda im: webp_uint8(im, q))


# ----------------------------------------------------------------------------------------------------- tone

def adjust_contrast(x: torch.Tensor, factor: float, center: str = "mean") -> torch.Tensor:
    """(x - c) * factor + c with c each image's mean ('mean') or 0.5 ('mid'); factor > 1 raises contrast. Clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "adjust_contrast")
    factor = check_value("contrast factor", factor, lo=0)
    if center not in CONTRAST_CENTERS:
        raise ValueError(f"contrast center must be one of {list(CONTRAST_CENTERS)}, got {center!r}")
    c = x.mean(dim=(1, 2, 3), keepdim=True) if center == "mean" else 0.5
    return ((x - c) * factor + c).clamp(0, 1)


def adjust_gamma(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """x ** gamma (gamma > 0; > 1 darkens mid-tones, < 1 brightens; 0 and 1 stay fixed).

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "adjust_gamma")
    return x.clamp(0, 1).pow(check_value("gamma", gamma, lo=0, lo_open=True))


def adjust_brightness(x: torch.Tensor, delta: float) -> torch.Tensor:
    """x + delta (delta in [-1, 1], [0, 1] units); clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "adjust_brightness")
    return (x + check_value("brightness delta", delta, lo=-1, hi=1)).clamp(0, 1)


def unsharp_mask(x: torch.Tensor, sigma: float, amount: float, threshold: float = 0.0) -> torch.Tensor:
    """Unsharp-mask sharpening: x + amount * (x - gaussian(x, sigma)) where |x - gaussian| >= threshold.

    `sigma` (the radius) in px, `amount` >= 0, `threshold` in [0, 1] units. Clipped.
    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "unsharp_mask")
    amount = check_value("sharpen amount", amount, lo=0)
    threshold = check_value("sharpen threshold", threshold, lo=0, hi=1)
    sigma = check_value("sharpen sigma", sigma, lo=0, lo_open=True)
    detail = x - filter2d(x, gaussian_kernel(auto_size(3 * sigma), sigma))
    if threshold > 0:
        detail = detail * (detail.abs() >= threshold)
    return (x + amount * detail).clamp(0, 1)


def transfer_curve(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transfer curve of lab.color by name, applied on clipped input."""
    def fn(x: torch.Tensor) -> torch.Tensor:
        return getattr(color, name)(x.clamp(0, 1)).clamp(0, 1)
    return fn


# ------------------------------------------------------------------------------------------------- geometry

def rescale_hr(x: torch.Tensor, factor: float, mode: str = "bicubic") -> torch.Tensor:
    """Rescale the HR by `factor` (e.g. so line thickness matches the target domain's).

    Shape: (B, C, H, W) -> (B, C, ceil(H * factor), ceil(W * factor)).
    """
    return resize(x, scale=check_value("rescale factor", factor, lo=0, lo_open=True), mode=mode)


def change_aspect(x: torch.Tensor, aspect: float, strength: float = 1.0, method: str = "stretch",
                  offset: float = 0.5) -> torch.Tensor:
    """Move the width / height ratio toward `aspect` (16 / 9 for 1920x1080) by `strength` in [0, 1] (geometric).

    'stretch' resizes the width (bicubic, height kept); 'crop' cuts the long side at `offset` in [0, 1].
    Shape: (B, C, H, W) -> (B, C, H', W').
    """
    check_image_tensor(x, "change_aspect")
    aspect = check_value("aspect", aspect, lo=0, lo_open=True)
    strength = check_value("aspect strength", strength, lo=0, hi=1)
    offset = check_value("aspect offset", offset, lo=0, hi=1)
    if method not in ASPECT_METHODS:
        raise ValueError(f"aspect method must be one of {list(ASPECT_METHODS)}, got {method!r}")
    h, w = x.shape[-2:]
    goal = (w / h) * (aspect / (w / h)) ** strength
    if method == "stretch":
        return resize(x, size=(h, max(1, round(h * goal))), mode="bicubic")
    if goal < w / h:
        nw = max(1, round(h * goal))
        x0 = round(offset * (w - nw))
        return x[..., :, x0:x0 + nw]
    nh = max(1, round(w / goal))
    y0 = round(offset * (h - nh))
    return x[..., y0:y0 + nh, :]


def crop(x: torch.Tensor, height: int, width: int, y: float = 0.5, x_pos: float = 0.5) -> torch.Tensor:
    """Crop to `height` x `width` px; `y`, `x_pos` in [0, 1] place the window (0 top/left, 1 bottom/right).

    Shape: (B, C, H, W) -> (B, C, height, width).
    """
    check_image_tensor(x, "crop")
    h, w = x.shape[-2:]
    if not (is_number(height) and is_number(width) and int(height) == height and int(width) == width
            and 1 <= height <= h and 1 <= width <= w):
        raise ValueError(f"crop size {height}x{width} must be positive integers within the image {h}x{w}")
    y = check_value("crop y", y, lo=0, hi=1)
    x_pos = check_value("crop x", x_pos, lo=0, hi=1)
    y0, x0 = round(y * (h - int(height))), round(x_pos * (w - int(width)))
    return x[..., y0:y0 + int(height), x0:x0 + int(width)]
