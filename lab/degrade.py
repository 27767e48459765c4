"""Degradations: pure ops on image batches, samplers drawing their parameters from an explicit generator, and
pipelines / named presets that turn an HR patch into its LR input.

Conventions: tensors are (B, C, H, W) float32 in [0, 1]; every op's output is clipped to [0, 1]. Lengths are in
pixels, angles in degrees, noise sigma in [0, 1] units (names ending in `_255` are in 0-255 units).

Every op is an `Op` (see `list_ops()`, `get_op(name)`): `op.sample_params(rng, **ranges) -> dict` draws plain,
JSON-able parameters from a `numpy.random.Generator`; `op.apply(x, params)` is deterministic (noise is drawn from a
`seed` inside params), so a recorded params dict replays byte for byte, also after a JSON round trip. A range is
a number (fixed) or `(lo, hi)` (uniform; inclusive integers where the parameter is an integer); a choice is a name
or a list of names (uniform, or weighted by the op's `*_probs` range).

A `Pipeline` is an optional `hr_ops` stage (geometry on the HR: rescale, aspect change, crop; its output becomes the
new target, so data code calls `apply_pair` when `pipeline.changes_hr`) then stages of steps run on the image.
Each step is (name, op, ranges, probability); a stage has a probability and may shuffle its blocks (the order is
sampled and recorded in params). The HR is cropped to a multiple of an integer `scale` and the pipeline must end at
(H // scale, W // scale) (a `downscale` step resizes to that target).

Presets (`list_presets()`; `preset_overrides(name)` lists every override name with its default). An override is
`<step>_<range>` or `<step>_prob` or `<stage>_prob` / `<stage>_shuffle`; `hr_ops=[[op, ranges, prob], ...]` adds
HR geometry to any preset. The short names most used:
- `bicubic`: MATLAB bicubic down (the benchmark LR). `down_mode`.
- `blur_bicubic`: Gaussian blur on the HR, then bicubic down. `blur_sigma` (0.2, 3.0), `blur_sigma_y` (None:
  isotropic), `blur_angle`, `blur_size` (0: 2 ceil(3 sigma) + 1).
- `noisy_bicubic`: bicubic down, then Gaussian noise. `noise_sigma_255` (1, 25) or `noise_sigma`, `noise_gray_prob`.
- `jpeg`: bicubic down, then JPEG. `quality` (= `jpeg_quality`, (30, 95)).
- `second_order`: Real-ESRGAN's two passes (blur -> random resize -> Gaussian/Poisson noise -> JPEG, twice), then
  [resize to target + sinc] and [JPEG] in random order. `blur_*`, `resize_*`, `noise_*`, `jpeg_quality`, the same
  with a `2` for the second pass (`blur2_sigma`, ...), `second_prob`, `final_sinc_prob`, `final_jpeg_quality`.
- `realsr`: a real kernel from a bank, strided down ('nearest'), real noise from a bank (Ji et al. 2020). Needs `kernel_bank`
  (folder of .npy/.png kernels) and `noise_bank` (.npz from `extract_noise_patches`); `noise_strength`, `down_mode`.
- `deblur_motion` (scale 1): motion blur (straight line or random trajectory) + light noise. `blur_length`,
  `blur_angle`, `blur_kinds`, `noise_sigma_255`.
- `denoise_gaussian` (scale 1): Gaussian noise. `sigma_255` (0, 50) or `sigma`, `gray_prob`.
Examples: `build('blur_bicubic', scale=4, blur_sigma=(0.2, 3.0))`, `build({'preset': 'jpeg', 'quality': (30, 95)})`.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, NamedTuple, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from fastai.callback.core import Callback

from lab.images import check_image_tensor
from lab.kernels import auto_size, filter2d, gaussian_kernel, load_kernel_bank, make_kernel
from lab.noise_bank import NoiseBank, add_bank_noise, extract_noise_patches, load_bank

__all__ = ["Op", "Pipeline", "Step", "Stage", "build", "list_presets", "list_ops", "get_op", "preset_overrides",
           "resize", "blur", "gaussian_blur", "add_gaussian_noise", "add_poisson_noise", "add_speckle_noise",
           "add_salt_pepper", "jpeg", "jpeg_uint8", "webp", "webp_uint8", "adjust_contrast", "adjust_gamma",
           "adjust_brightness", "unsharp_mask", "rescale_hr", "change_aspect", "crop", "mixup_pair",
           "RestorationMixup", "NoiseBank", "extract_noise_patches", "make_kernel", "manual_pipeline",
           "first_kernel"]

RESIZE_MODES = ("bicubic", "bilinear", "area", "nearest")
BLUR_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
MOTION_KINDS = ("line", "trajectory")
NOISE_KINDS = ("gaussian", "poisson")
CONTRAST_CENTERS = ("mean", "mid")
ASPECT_METHODS = ("stretch", "crop")
POISSON_PEAK = 255.0  # photon count of a full-scale pixel: an 8-bit image's levels, as Real-ESRGAN's default
_SEED_MAX = 2 ** 31 - 1


# ----------------------------------------------------------------------------------------------- validation

def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_value(name: str, v: float, lo: float | None = None, hi: float | None = None,
                 lo_open: bool = False) -> float:
    """`v` as float, or ValueError naming the parameter and its accepted interval."""
    if not _is_num(v) or not math.isfinite(float(v)):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    v = float(v)
    bad_lo = lo is not None and (v <= lo if lo_open else v < lo)
    if bad_lo or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else lo
        raise ValueError(f"{name} must be in {'(' if lo_open else '['}{lo_s}, {'inf' if hi is None else hi}], "
                         f"got {v}")
    return v


def _check_mode(mode: str) -> str:
    """A resize mode name, or ValueError listing the accepted ones."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {list(RESIZE_MODES)}, got {mode!r}")
    return mode


def _check_quality(quality: Any, fmt: str) -> int:
    """A compression quality, an integer in 1..100 (0 and > 100 are rejected), or ValueError."""
    if not _is_num(quality) or float(quality) != int(quality) or not 1 <= int(quality) <= 100:
        raise ValueError(f"{fmt} quality must be an integer in 1..100, got {quality!r}")
    return int(quality)


def _check_seed(seed: Any) -> int:
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
    from lab.resize import imresize_tensor

    check_image_tensor(x, "resize")
    _check_mode(mode)
    if (scale is None) == (size is None):
        raise ValueError(f"give exactly one of scale or size; got scale={scale!r}, size={size!r}")
    if scale is not None:
        _check_value("resize scale", scale, lo=0, lo_open=True)
        out = _out_size(x.shape[-2:], float(scale))
    else:
        if len(size) != 2 or not all(_is_num(n) and int(n) == n and n >= 1 for n in size):
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
    sx = _check_value("sigma", sigma, lo=0, lo_open=True)
    sy = sx if sigma_y is None else _check_value("sigma_y", sigma_y, lo=0, lo_open=True)
    k = gaussian_kernel(int(size) or auto_size(3 * max(sx, sy)), sx, sy, angle)
    return blur(x, k)


# ---------------------------------------------------------------------------------------------------- noise

def _randn(shape: Sequence[int], seed: int) -> torch.Tensor:
    """Standard normal noise (CPU float32) from its own generator, so the same seed gives the same bytes."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(_check_seed(seed)))


def add_gaussian_noise(x: torch.Tensor, sigma: float, gray: bool = False, seed: int = 0) -> torch.Tensor:
    """Add N(0, sigma^2) noise (sigma in [0, 1] units), per channel or the same in all channels (`gray`); clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_gaussian_noise")
    sigma = _check_value("noise sigma", sigma, lo=0)
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
    scale = _check_value("poisson scale", scale, lo=0)
    peak = _check_value("poisson peak", peak, lo=0, lo_open=True)
    src = x.detach().clamp(0, 1).float().cpu()
    if gray:
        src = src.mean(dim=1, keepdim=True)
    counts = torch.poisson(src * peak, generator=torch.Generator().manual_seed(_check_seed(seed)))
    return (x + (counts / peak - src).to(x) * scale).clamp(0, 1)


def add_speckle_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Multiplicative noise x + x * N(0, sigma^2) (sigma in [0, 1] units, per channel); clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_speckle_noise")
    sigma = _check_value("speckle sigma", sigma, lo=0)
    return (x + x * sigma * _randn(x.shape, seed).to(x)).clamp(0, 1)


def add_salt_pepper(x: torch.Tensor, amount: float, salt_ratio: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Set a fraction `amount` of pixels (all channels together) to white (share `salt_ratio`) or black.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "add_salt_pepper")
    amount = _check_value("salt-and-pepper amount", amount, lo=0, hi=1)
    salt_ratio = _check_value("salt_ratio", salt_ratio, lo=0, hi=1)
    b, _, h, w = x.shape
    u = torch.rand((b, 1, h, w), generator=torch.Generator().manual_seed(_check_seed(seed))).to(x.device)
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
    return _encode_decode(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, _check_quality(quality, "JPEG")])


def webp_available() -> bool:
    """Whether this OpenCV build can write WebP."""
    return bool(cv2.haveImageWriter(".webp"))


def webp_uint8(img: np.ndarray, quality: int) -> np.ndarray:
    """WebP (lossy) encode + decode at `quality` 1..100, if OpenCV has WebP. Shape: (H, W, 3) uint8 -> same."""
    q = _check_quality(quality, "WebP")
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
    q = _check_quality(quality, "JPEG")
    return _per_image_uint8(x, lambda im: jpeg_uint8(im, q))


def webp(x: torch.Tensor, quality: int) -> torch.Tensor:
    """WebP artefacts at `quality` 1..100 (ValueError if this OpenCV lacks WebP).

    Shape: (B, C, H, W) -> (B, C, H, W), C in (1, 3), float in [0, 1].
    """
    _check_codec_input(x, "webp")
    q = _check_quality(quality, "WebP")
    return _per_image_uint8(x, lambda im: webp_uint8(im, q))


# ----------------------------------------------------------------------------------------------------- tone

def adjust_contrast(x: torch.Tensor, factor: float, center: str = "mean") -> torch.Tensor:
    """(x - c) * factor + c with c each image's mean ('mean') or 0.5 ('mid'); factor > 1 raises contrast. Clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "adjust_contrast")
    factor = _check_value("contrast factor", factor, lo=0)
    if center not in CONTRAST_CENTERS:
        raise ValueError(f"contrast center must be one of {list(CONTRAST_CENTERS)}, got {center!r}")
    c = x.mean(dim=(1, 2, 3), keepdim=True) if center == "mean" else 0.5
    return ((x - c) * factor + c).clamp(0, 1)


def adjust_gamma(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """x ** gamma (gamma > 0; > 1 darkens mid-tones, < 1 brightens; 0 and 1 stay fixed).

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "adjust_gamma")
    return x.clamp(0, 1).pow(_check_value("gamma", gamma, lo=0, lo_open=True))


def adjust_brightness(x: torch.Tensor, delta: float) -> torch.Tensor:
    """x + delta (delta in [-1, 1], [0, 1] units); clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "adjust_brightness")
    return (x + _check_value("brightness delta", delta, lo=-1, hi=1)).clamp(0, 1)


def unsharp_mask(x: torch.Tensor, sigma: float, amount: float, threshold: float = 0.0) -> torch.Tensor:
    """Unsharp-mask sharpening: x + amount * (x - gaussian(x, sigma)) where |x - gaussian| >= threshold.

    `sigma` (the radius) in px, `amount` >= 0, `threshold` in [0, 1] units. Clipped.
    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    check_image_tensor(x, "unsharp_mask")
    amount = _check_value("sharpen amount", amount, lo=0)
    threshold = _check_value("sharpen threshold", threshold, lo=0, hi=1)
    sigma = _check_value("sharpen sigma", sigma, lo=0, lo_open=True)
    detail = x - filter2d(x, gaussian_kernel(auto_size(3 * sigma), sigma))
    if threshold > 0:
        detail = detail * (detail.abs() >= threshold)
    return (x + amount * detail).clamp(0, 1)


def _transfer(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A transfer curve of lab.color by name, applied on clipped input."""
    def fn(x: torch.Tensor) -> torch.Tensor:
        import lab.color

        return getattr(lab.color, name)(x.clamp(0, 1)).clamp(0, 1)
    return fn


# ------------------------------------------------------------------------------------------------- geometry

def rescale_hr(x: torch.Tensor, factor: float, mode: str = "bicubic") -> torch.Tensor:
    """Rescale the HR by `factor` (e.g. so line thickness matches the target domain's).

    Shape: (B, C, H, W) -> (B, C, ceil(H * factor), ceil(W * factor)).
    """
    return resize(x, scale=_check_value("rescale factor", factor, lo=0, lo_open=True), mode=mode)


def change_aspect(x: torch.Tensor, aspect: float, strength: float = 1.0, method: str = "stretch",
                  offset: float = 0.5) -> torch.Tensor:
    """Move the width / height ratio toward `aspect` (16 / 9 for 1920x1080) by `strength` in [0, 1] (geometric).

    'stretch' resizes the width (bicubic, height kept); 'crop' cuts the long side at `offset` in [0, 1].
    Shape: (B, C, H, W) -> (B, C, H', W').
    """
    check_image_tensor(x, "change_aspect")
    aspect = _check_value("aspect", aspect, lo=0, lo_open=True)
    strength = _check_value("aspect strength", strength, lo=0, hi=1)
    offset = _check_value("aspect offset", offset, lo=0, hi=1)
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
    if not (_is_num(height) and _is_num(width) and int(height) == height and int(width) == width
            and 1 <= height <= h and 1 <= width <= w):
        raise ValueError(f"crop size {height}x{width} must be positive integers within the image {h}x{w}")
    y = _check_value("crop y", y, lo=0, hi=1)
    x_pos = _check_value("crop x", x_pos, lo=0, hi=1)
    y0, x0 = round(y * (h - int(height))), round(x_pos * (w - int(width)))
    return x[..., y0:y0 + int(height), x0:x0 + int(width)]


# ------------------------------------------------------------------------------------------------- sampling

def _num(rng: np.random.Generator, r: Any, name: str, lo: float | None = None, hi: float | None = None,
         lo_open: bool = False, integer: bool = False) -> float | int:
    """A number from a range: a number (fixed) or (lo, hi) (uniform; inclusive for integers), bounds checked."""
    if isinstance(r, (list, tuple)):
        if len(r) != 2 or not all(_is_num(v) for v in r):
            raise ValueError(f"range {name} must be a number or (lo, hi), got {r!r}")
        a = _check_value(f"{name} (lower end)", r[0], lo, hi, lo_open)
        b = _check_value(f"{name} (upper end)", r[1], lo, hi, lo_open)
        if a > b:
            raise ValueError(f"range {name} = {r!r} has lo > hi")
        if integer:
            if a != int(a) or b != int(b):
                raise ValueError(f"range {name} takes integers, got {r!r}")
            return int(rng.integers(int(a), int(b) + 1)) if a < b else int(a)
        return float(rng.uniform(a, b)) if a < b else a
    v = _check_value(name, r, lo, hi, lo_open)
    if integer:
        if v != int(v):
            raise ValueError(f"{name} takes an integer, got {r!r}")
        return int(v)
    return v


def _choice(rng: np.random.Generator, options: Any, probs: Any, name: str, known: Sequence[str]) -> str:
    """A name from `options` (a name or a list of names, uniform unless `probs` gives weights)."""
    opts = [options] if isinstance(options, str) else list(options)
    bad = [o for o in opts if o not in known]
    if not opts or bad:
        raise ValueError(f"{name} must be among {list(known)}, got {options!r}")
    if len(opts) == 1:
        return opts[0]
    if probs is None:
        return opts[int(rng.integers(len(opts)))]
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (len(opts),) or (p < 0).any() or p.sum() <= 0:
        raise ValueError(f"{name} probabilities {probs!r} must be {len(opts)} non-negative weights")
    return opts[int(rng.choice(len(opts), p=p / p.sum()))]


def _prob(v: Any, name: str) -> float:
    return _check_value(name, v, lo=0, hi=1)


def _flag(rng: np.random.Generator, p: Any, name: str) -> bool:
    """True with probability p (draws nothing when p is 0 or 1, so fixed choices leave the stream alone)."""
    p = _prob(p, name)
    return bool(p >= 1 or (p > 0 and rng.random() < p))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, _SEED_MAX))


def _odd_size(rng: np.random.Generator, r: Any, name: str = "size") -> int:
    """An odd kernel size from a number or an inclusive (lo, hi) range of sizes (uniform over the odd ones)."""
    if isinstance(r, (list, tuple)) and len(r) == 2 and all(_is_num(v) for v in r):
        lo = int(r[0]) | 1
        sizes = list(range(lo, int(r[1]) + 1, 2))
        if not sizes or r[0] < 1:
            raise ValueError(f"{name} range {r!r} holds no odd size >= 1")
        return sizes[int(rng.integers(len(sizes)))] if len(sizes) > 1 else sizes[0]
    v = _num(rng, r, name, lo=1, integer=True)
    if v % 2 == 0:
        raise ValueError(f"{name} must be odd, got {v}")
    return int(v)


# -------------------------------------------------------------------------------------------------- op table

Apply = Callable[[torch.Tensor, dict, "tuple[int, int] | None"], torch.Tensor]
Sample = Callable[[np.random.Generator, dict], dict]


@dataclass(frozen=True)
class Op:
    """A named degradation: default ranges, a sampler (ranges -> params) and a deterministic apply (params).

    `hr` ops change the HR itself (geometry) and run in a pipeline's `hr_ops` stage.
    """

    name: str
    defaults: dict[str, Any]
    sampler: Sample
    applier: Apply
    doc: str
    hr: bool = False
    exclusive: dict[str, str] = field(default_factory=dict)  # setting one range clears the other (sigma / sigma_255)

    def ranges(self, **ranges: Any) -> dict[str, Any]:
        """The default ranges updated with `ranges` (KeyError for unknown names)."""
        unknown = sorted(set(ranges) - set(self.defaults))
        if unknown:
            raise KeyError(f"op {self.name!r} has no range {unknown[0]!r}; its ranges: {list(self.defaults)}")
        out = {**self.defaults, **ranges}
        for k, v in ranges.items():
            other = self.exclusive.get(k)
            if other and v is not None and other not in ranges:
                out[other] = None
        return out

    def sample_params(self, rng: np.random.Generator, **ranges: Any) -> dict[str, Any]:
        """Draw this op's parameters (plain JSON-able values) from `rng` and the (default or given) ranges."""
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"sample_params needs a numpy.random.Generator (np.random.default_rng(seed)), "
                             f"got {type(rng).__name__}")
        return self.sampler(rng, self.ranges(**ranges))

    def apply(self, x: torch.Tensor, params: dict[str, Any], target: tuple[int, int] | None = None) -> torch.Tensor:
        """Apply with recorded `params` (deterministic); `target` is the pipeline's LR size (h, w).

        Shape: (B, C, H, W) -> (B, C, H', W'), float in [0, 1].
        """
        check_image_tensor(x, self.name)
        return self.applier(x, params, target)

    def __call__(self, x: torch.Tensor, rng: np.random.Generator, **ranges: Any) -> torch.Tensor:
        """apply(x, sample_params(rng, **ranges)). Shape: (B, C, H, W) -> (B, C, H', W')."""
        return self.apply(x, self.sample_params(rng, **ranges))


OPS: dict[str, Op] = {}


def _op(name: str, defaults: dict[str, Any], sampler: Sample, applier: Apply, doc: str, hr: bool = False,
        exclusive: dict[str, str] | None = None) -> None:
    if name in OPS:
        raise KeyError(f"op {name!r} registered twice")
    OPS[name] = Op(name, defaults, sampler, applier, doc, hr, exclusive or {})


def list_ops() -> list[str]:
    """Names of the registered degradation ops."""
    return list(OPS)


def get_op(name: str) -> Op:
    """The op called `name` (KeyError listing the known ones)."""
    if name not in OPS:
        raise KeyError(f"unknown degradation op {name!r}; known: {list(OPS)}")
    return OPS[name]


def _need_target(target: tuple[int, int] | None, op: str) -> tuple[int, int]:
    if target is None:
        raise ValueError(f"op {op!r} resizes to the pipeline's target size; run it in a Pipeline or pass "
                         "target=(h, w) to Op.apply")
    return target


# resampling
_op("downscale", {"mode": "bicubic", "mode_probs": None},
    lambda rng, r: {"mode": _choice(rng, r["mode"], r["mode_probs"], "mode", RESIZE_MODES)},
    lambda x, p, t: resize(x, size=_need_target(t, "downscale"), mode=p["mode"]),
    "Resize to the pipeline's LR target size (mode: a name or a list to choose from).")


def _s_resize(rng: np.random.Generator, r: dict) -> dict:
    return {"factor": _num(rng, r["factor"], "factor", lo=0, lo_open=True),
            "mode": _choice(rng, r["mode"], r["mode_probs"], "mode", RESIZE_MODES)}


_op("resize", {"factor": 1.0, "mode": "bicubic", "mode_probs": None}, _s_resize,
    lambda x, p, t: resize(x, scale=p["factor"], mode=p["mode"]),
    "Resize by a factor (any value > 0, output ceil(H * factor)).")


def _s_random_resize(rng: np.random.Generator, r: dict) -> dict:
    kind = _choice(rng, ["up", "down", "keep"], r["probs"], "resize direction", ("up", "down", "keep"))
    factor = 1.0 if kind == "keep" else _num(rng, r[kind], kind, lo=0, lo_open=True)
    if r["relative_to"] not in ("current", "target"):
        raise ValueError(f"relative_to must be 'current' or 'target', got {r['relative_to']!r}")
    return {"factor": factor, "mode": _choice(rng, r["modes"], None, "modes", RESIZE_MODES),
            "relative_to": r["relative_to"]}


def _a_random_resize(x: torch.Tensor, p: dict, t: tuple[int, int] | None) -> torch.Tensor:
    base = x.shape[-2:] if p["relative_to"] == "current" else _need_target(t, "random_resize")
    f = _check_value("resize factor", p["factor"], lo=0, lo_open=True)
    return resize(x, size=(max(1, round(base[0] * f)), max(1, round(base[1] * f))), mode=p["mode"])


_op("random_resize", {"up": (1.0, 1.5), "down": (0.15, 1.0), "probs": (0.2, 0.7, 0.1),
                      "modes": ["area", "bilinear", "bicubic"], "relative_to": "current"},
    _s_random_resize, _a_random_resize,
    "Real-ESRGAN random resize: up / down / keep with `probs`, factor from `up` or `down`, random mode; "
    "relative to the current size or to the LR target.")


# blur
def _a_blur(x: torch.Tensor, p: dict, t: Any) -> torch.Tensor:
    return blur(x, make_kernel(p["kernel"]))


def _s_mixed_blur(rng: np.random.Generator, r: dict) -> dict:
    size = _odd_size(rng, r["size"])
    if _flag(rng, r["sinc_prob"], "sinc_prob"):
        lo = math.pi / 3 if size < 13 else math.pi / 5  # small kernels cannot hold a low cutoff's ringing
        return {"kernel": {"type": "sinc", "size": size, "omega": float(rng.uniform(lo, math.pi))}}
    kind = _choice(rng, r["types"], r["type_probs"], "blur types", BLUR_TYPES)
    sx = _num(rng, r["sigma"], "sigma", lo=0, lo_open=True)
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sy = sx if iso else _num(rng, r["sigma"], "sigma", lo=0, lo_open=True)
    angle = 0.0 if iso else _num(rng, r["angle"], "angle")
    family = {"iso": "gaussian", "aniso": "gaussian"}.get(kind, kind.split("_")[0])
    spec = {"type": family, "size": size, "sigma_x": sx, "sigma_y": sy, "angle": angle}
    if spec["type"] == "generalized":
        bg = r["beta_gen"]
        if isinstance(bg, (list, tuple)) and len(bg) == 2 and bg[0] < 1 < bg[1]:
            # as Real-ESRGAN: half the draws below 1 (heavy tails), half above (flat top)
            spec["beta"] = float(rng.uniform(bg[0], 1.0) if rng.random() < 0.5 else rng.uniform(1.0, bg[1]))
        else:
            spec["beta"] = _num(rng, bg, "beta_gen", lo=0, lo_open=True)
    elif spec["type"] == "plateau":
        spec["beta"] = _num(rng, r["beta_plateau"], "beta_plateau", lo=0, lo_open=True)
    return {"kernel": spec}


_op("blur", {"types": list(BLUR_TYPES), "type_probs": (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), "size": (7, 21),
             "sigma": (0.2, 3.0), "angle": (0.0, 180.0), "beta_gen": (0.5, 4.0), "beta_plateau": (1.0, 2.0),
             "sinc_prob": 0.1},
    _s_mixed_blur, _a_blur,
    "Real-ESRGAN mixed blur: iso/aniso Gaussian, generalized Gaussian, plateau kernels (or a sinc, sinc_prob); "
    "odd size from `size`, sigmas in px, angle in degrees.")


def _s_gaussian_blur(rng: np.random.Generator, r: dict) -> dict:
    sx = _num(rng, r["sigma"], "sigma", lo=0, lo_open=True)
    aniso = r["sigma_y"] is not None
    sy = _num(rng, r["sigma_y"], "sigma_y", lo=0, lo_open=True) if aniso else sx
    angle = _num(rng, r["angle"], "angle") if aniso else 0.0
    size = _num(rng, r["size"], "size", lo=0, integer=True)
    size = size or auto_size(3 * max(sx, sy))
    if size % 2 == 0:
        raise ValueError(f"blur size must be odd (or 0 for automatic), got {size}")
    return {"kernel": {"type": "gaussian", "size": size, "sigma_x": sx, "sigma_y": sy, "angle": angle}}


_op("gaussian_blur", {"sigma": (0.2, 3.0), "sigma_y": None, "angle": (0.0, 180.0), "size": 0},
    _s_gaussian_blur, _a_blur,
    "Gaussian blur: `sigma` px (isotropic) or with `sigma_y` anisotropic at `angle` degrees; size 0 = auto.")


def _s_motion(rng: np.random.Generator, r: dict) -> dict:
    kind = _choice(rng, r["kinds"], r["kind_probs"], "motion kinds", MOTION_KINDS)
    length = _num(rng, r["length"], "length", lo=0)
    angle = _num(rng, r["angle"], "angle")
    if kind == "line":
        return {"kernel": {"type": "motion_line", "length": length, "angle": angle}}
    return {"kernel": {"type": "motion_trajectory", "length": length, "angle": angle,
                       "jitter": _num(rng, r["jitter"], "jitter", lo=0), "seed": _seed(rng)}}


_op("motion_blur", {"kinds": list(MOTION_KINDS), "kind_probs": None, "length": (3.0, 15.0),
                    "angle": (0.0, 360.0), "jitter": (0.1, 0.5)},
    _s_motion, _a_blur,
    "Motion blur: a straight line (`length` px at `angle` degrees) or a random camera-shake trajectory "
    "(`jitter` radians of turn per step).")
_op("defocus_blur", {"radius": (1.0, 4.0)},
    lambda rng, r: {"kernel": {"type": "disk", "radius": _num(rng, r["radius"], "radius", lo=0)}}, _a_blur,
    "Defocus: a uniform disk of `radius` px.")
_op("sinc", {"omega": (math.pi / 3, math.pi), "size": (7, 21)},
    lambda rng, r: {"kernel": {"type": "sinc", "size": _odd_size(rng, r["size"]),
                               "omega": _num(rng, r["omega"], "omega", lo=0, hi=math.pi, lo_open=True)}},
    _a_blur,
    "Sinc (2-D circular low-pass) with cutoff `omega` radians/pixel in (0, pi]: ringing and overshoot.")


def _s_bank_kernel(rng: np.random.Generator, r: dict) -> dict:
    if not r["path"]:
        raise ValueError("op 'kernel_bank' needs path=<folder of .npy/.png kernels> (preset 'realsr': "
                         "build('realsr', kernel_bank='path/to/kernels', noise_bank='path/to/noise.npz'))")
    n = len(load_kernel_bank(r["path"]))
    return {"kernel": {"type": "bank", "path": str(r["path"]), "index": int(rng.integers(n))}}


_op("kernel_bank", {"path": None}, _s_bank_kernel, _a_blur,
    "Blur with a random kernel of a folder of .npy/.png kernels (normalised to sum 1), e.g. estimated ones.")


# noise
def _s_gaussian_noise(rng: np.random.Generator, r: dict) -> dict:
    if (r["sigma"] is None) == (r["sigma_255"] is None):
        raise ValueError(f"give one of sigma ([0, 1] units) or sigma_255; got sigma={r['sigma']!r}, "
                         f"sigma_255={r['sigma_255']!r}")
    sigma = (_num(rng, r["sigma"], "sigma", lo=0) if r["sigma"] is not None
             else _num(rng, r["sigma_255"], "sigma_255", lo=0) / 255.0)
    return {"sigma": sigma, "gray": _flag(rng, r["gray_prob"], "gray_prob"), "seed": _seed(rng)}


_op("gaussian_noise", {"sigma": None, "sigma_255": (1.0, 25.0), "gray_prob": 0.0}, _s_gaussian_noise,
    lambda x, p, t: add_gaussian_noise(x, p["sigma"], p["gray"], p["seed"]),
    "Additive Gaussian noise, `sigma` in [0, 1] units or `sigma_255`; gray (same in all channels) "
    "with `gray_prob`.", exclusive={"sigma": "sigma_255", "sigma_255": "sigma"})
_op("poisson_noise", {"scale": (0.05, 3.0), "gray_prob": 0.0},
    lambda rng, r: {"scale": _num(rng, r["scale"], "scale", lo=0), "gray": _flag(rng, r["gray_prob"], "gray_prob"),
                    "seed": _seed(rng)},
    lambda x, p, t: add_poisson_noise(x, p["scale"], p["gray"], p["seed"]),
    f"Shot noise (Poisson at {POISSON_PEAK:.0f} photons for white) times `scale`; gray with `gray_prob`.")


def _s_noise(rng: np.random.Generator, r: dict) -> dict:
    if _flag(rng, r["gaussian_prob"], "gaussian_prob"):
        p = {"kind": "gaussian", "sigma": _num(rng, r["sigma_255"], "sigma_255", lo=0) / 255.0}
    else:
        p = {"kind": "poisson", "scale": _num(rng, r["poisson_scale"], "poisson_scale", lo=0)}
    return {**p, "gray": _flag(rng, r["gray_prob"], "gray_prob"), "seed": _seed(rng)}


def _a_noise(x: torch.Tensor, p: dict, t: Any) -> torch.Tensor:
    if p["kind"] == "gaussian":
        return add_gaussian_noise(x, p["sigma"], p["gray"], p["seed"])
    if p["kind"] == "poisson":
        return add_poisson_noise(x, p["scale"], p["gray"], p["seed"])
    raise ValueError(f"noise kind must be one of {list(NOISE_KINDS)}, got {p['kind']!r}")


_op("noise", {"gaussian_prob": 0.5, "sigma_255": (1.0, 30.0), "poisson_scale": (0.05, 3.0), "gray_prob": 0.4},
    _s_noise, _a_noise,
    "Real-ESRGAN noise: Gaussian (`sigma_255`) with `gaussian_prob`, else Poisson (`poisson_scale`); gray with "
    "`gray_prob`.")
_op("speckle_noise", {"sigma": (0.0, 0.1)},
    lambda rng, r: {"sigma": _num(rng, r["sigma"], "sigma", lo=0), "seed": _seed(rng)},
    lambda x, p, t: add_speckle_noise(x, p["sigma"], p["seed"]),
    "Multiplicative noise x + x * N(0, sigma^2), sigma in [0, 1] units.")
_op("salt_pepper", {"amount": (0.0, 0.02), "salt_ratio": 0.5},
    lambda rng, r: {"amount": _num(rng, r["amount"], "amount", lo=0, hi=1),
                    "salt_ratio": _num(rng, r["salt_ratio"], "salt_ratio", lo=0, hi=1), "seed": _seed(rng)},
    lambda x, p, t: add_salt_pepper(x, p["amount"], p["salt_ratio"], p["seed"]),
    "Impulse noise on a fraction `amount` of pixels, `salt_ratio` of them white.")


def _s_bank_noise(rng: np.random.Generator, r: dict) -> dict:
    if not r["path"]:
        raise ValueError("op 'bank_noise' needs path=<noise bank .npz> made by lab.degrade.extract_noise_patches"
                         "(...).save(path) (preset 'realsr': build('realsr', noise_bank='path/to/noise.npz', ...))")
    load_bank(r["path"])  # fail now, not in the first batch
    return {"path": str(r["path"]), "strength": _num(rng, r["strength"], "strength", lo=0), "seed": _seed(rng)}


_op("bank_noise", {"path": None, "strength": 1.0}, _s_bank_noise,
    lambda x, p, t: add_bank_noise(x, load_bank(p["path"]), p["strength"], p["seed"]),
    "Real noise: random zero-mean patches of a NoiseBank tiled over the image, times `strength`.")

# compression
_op("jpeg", {"quality": (30, 95)},
    lambda rng, r: {"quality": _check_quality(_num(rng, r["quality"], "quality", 1, 100, integer=True), "JPEG")},
    lambda x, p, t: jpeg(x, p["quality"]), "JPEG at an integer `quality` in 1..100.")
_op("webp", {"quality": (30, 95)},
    lambda rng, r: {"quality": _check_quality(_num(rng, r["quality"], "quality", 1, 100, integer=True), "WebP")},
    lambda x, p, t: webp(x, p["quality"]), "WebP at an integer `quality` in 1..100 (if OpenCV has WebP).")

# tone
_op("contrast", {"factor": (0.7, 1.3), "center": "mean"},
    lambda rng, r: {"factor": _num(rng, r["factor"], "factor", lo=0),
                    "center": _choice(rng, r["center"], None, "center", CONTRAST_CENTERS)},
    lambda x, p, t: adjust_contrast(x, p["factor"], p["center"]),
    "Contrast up (factor > 1) or down around the image mean or 0.5.")
_op("gamma", {"gamma": (0.7, 1.4)}, lambda rng, r: {"gamma": _num(rng, r["gamma"], "gamma", lo=0, lo_open=True)},
    lambda x, p, t: adjust_gamma(x, p["gamma"]), "x ** gamma.")
_op("brightness", {"delta": (-0.1, 0.1)}, lambda rng, r: {"delta": _num(rng, r["delta"], "delta", -1, 1)},
    lambda x, p, t: adjust_brightness(x, p["delta"]), "x + delta ([0, 1] units).")
_op("sharpen", {"sigma": (0.5, 2.0), "amount": (0.2, 1.0), "threshold": 0.0},
    lambda rng, r: {"sigma": _num(rng, r["sigma"], "sigma", lo=0, lo_open=True),
                    "amount": _num(rng, r["amount"], "amount", lo=0),
                    "threshold": _num(rng, r["threshold"], "threshold", 0, 1)},
    lambda x, p, t: unsharp_mask(x, p["sigma"], p["amount"], p["threshold"]),
    "Unsharp mask: radius `sigma` px, `amount`, `threshold` in [0, 1] units.")
for _name in ("srgb_to_linear", "linear_to_srgb", "bt709_to_linear", "linear_to_bt709"):
    _op(_name, {}, lambda rng, r: {}, (lambda f: lambda x, p, t: f(x))(_transfer(_name)),
        f"Transfer curve {_name} (lab.color), no parameters.")
del _name

# geometry on the HR
_op("hr_rescale", {"factor": (0.5, 1.0), "mode": "bicubic"},
    lambda rng, r: {"factor": _num(rng, r["factor"], "factor", lo=0, lo_open=True),
                    "mode": _choice(rng, r["mode"], None, "mode", RESIZE_MODES)},
    lambda x, p, t: rescale_hr(x, p["factor"], p["mode"]),
    "HR op: rescale the HR by `factor` (the LR follows, so structure sizes match the target domain).", hr=True)
_op("hr_aspect", {"aspect": 16 / 9, "strength": 1.0, "method": "stretch", "offset": (0.0, 1.0)},
    lambda rng, r: {"aspect": _num(rng, r["aspect"], "aspect", lo=0, lo_open=True),
                    "strength": _num(rng, r["strength"], "strength", 0, 1),
                    "method": _choice(rng, r["method"], None, "method", ASPECT_METHODS),
                    "offset": _num(rng, r["offset"], "offset", 0, 1)},
    lambda x, p, t: change_aspect(x, p["aspect"], p["strength"], p["method"], p["offset"]),
    "HR op: move the aspect ratio (width / height) toward `aspect` by `strength`, by stretching or cropping.",
    hr=True)
_op("hr_crop", {"height": 96, "width": 96, "y": (0.0, 1.0), "x": (0.0, 1.0)},
    lambda rng, r: {"height": _num(rng, r["height"], "height", lo=1, integer=True),
                    "width": _num(rng, r["width"], "width", lo=1, integer=True),
                    "y": _num(rng, r["y"], "y", 0, 1), "x": _num(rng, r["x"], "x", 0, 1)},
    lambda x, p, t: crop(x, p["height"], p["width"], p["y"], p["x"]),
    "HR op: crop to `height` x `width` px at a random position (y, x as fractions of the free space).", hr=True)


# ------------------------------------------------------------------------------------------------- pipeline

@dataclass
class Step:
    """One step of a pipeline: its `name` (unique; override prefix), the `op`, its `ranges` and probability."""

    name: str
    op: str
    ranges: dict[str, Any] = field(default_factory=dict)
    prob: float = 1.0


@dataclass
class Stage:
    """Blocks of steps run in order (or in a sampled order with `shuffle`), the whole stage with probability `prob`."""

    name: str
    blocks: list[list[Step]]
    shuffle: bool = False
    prob: float = 1.0


def _plain(v: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python, recursively (JSON-able config values)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, os.PathLike):
        return str(v)
    return v


class Pipeline:
    """An ordered degradation: `hr_ops` (HR geometry), then `stages`; `sample(rng)` -> params, `apply(hr, params)`.

    `apply` accepts one params dict (shared by the whole batch; the batch is processed at once, noise drawn per
    image) or a list of B dicts (one per image). See the module doc for the params layout and presets.
    """

    def __init__(self, stages: Sequence[Stage], scale: float = 2, hr_ops: Sequence[Step] = (), name: str = "custom",
                 overrides: dict[str, Any] | None = None):
        if isinstance(scale, bool) or not _is_num(scale) or not math.isfinite(float(scale)) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self.scale = int(scale) if float(scale) == int(scale) else float(scale)
        self.name, self.stages, self.hr_ops = name, list(stages), list(hr_ops)
        self.overrides = _plain(dict(overrides or {}))
        names: list[str] = []
        for step, where in [(s, "hr_ops") for s in self.hr_ops] + [(s, st.name) for st in self.stages
                                                                    for b in st.blocks for s in b]:
            op = get_op(step.op)
            if op.hr != (where == "hr_ops"):
                raise ValueError(f"step {step.name!r}: op {step.op!r} is {'an HR' if op.hr else 'an image'} op; "
                                 f"put it in {'hr_ops' if op.hr else 'a stage'}, not in {where!r}")
            _prob(step.prob, f"probability of step {step.name!r}")
            if step.op == "downscale" and step.prob != 1:
                raise ValueError(f"step {step.name!r}: a downscale must always run (prob 1), got {step.prob}")
            names.append(step.name)
        for st in self.stages:
            _prob(st.prob, f"probability of stage {st.name!r}")
            names.append(st.name)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"step and stage names must be unique, repeated: {dup}")
        rng = np.random.default_rng(0)  # dry run: bad ranges fail at build time, not in the first batch
        for step in self._steps():
            get_op(step.op).sample_params(rng, **step.ranges)

    def _steps(self) -> list[Step]:
        return self.hr_ops + [s for st in self.stages for b in st.blocks for s in b]

    @property
    def changes_hr(self) -> bool:
        """True when `hr_ops` reshape the HR: data code must then use `apply_pair` and train on its new HR."""
        return bool(self.hr_ops)

    def __repr__(self) -> str:
        stages = " | ".join(",".join(s.name for b in st.blocks for s in b) for st in self.stages)
        return f"Pipeline({self.name!r}, scale={self.scale}, hr_ops={[s.name for s in self.hr_ops]}, {stages})"

    def _sample_step(self, rng: np.random.Generator, step: Step) -> dict | None:
        if not _flag(rng, step.prob, f"prob of {step.name}"):
            return None
        return get_op(step.op).sample_params(rng, **step.ranges)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """All random parameters for one image (plain JSON-able values): {'hr': {step: params | None},
        'stages': [{'name', 'apply', 'order', 'steps': {step: params | None}}]}.
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"Pipeline.sample needs a numpy.random.Generator, got {type(rng).__name__}")
        out: dict[str, Any] = {"hr": {s.name: self._sample_step(rng, s) for s in self.hr_ops}, "stages": []}
        for st in self.stages:
            run = _flag(rng, st.prob, f"prob of stage {st.name}")
            order = [int(i) for i in rng.permutation(len(st.blocks))] if (run and st.shuffle) \
                else list(range(len(st.blocks)))
            steps = {s.name: (self._sample_step(rng, s) if run else None) for b in st.blocks for s in b}
            out["stages"].append({"name": st.name, "apply": run, "order": order, "steps": steps})
        return out

    def sample_batch(self, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
        """`n` independent `sample(rng)` draws, one per image of a batch."""
        return [self.sample(rng) for _ in range(int(n))]

    def target_size(self, hw: Sequence[int]) -> tuple[int, int]:
        """The LR size (h, w) this pipeline makes from an HR of size `hw` (after cropping to a multiple of scale)."""
        return int(hw[0] // self.scale), int(hw[1] // self.scale)

    def _run(self, hr: torch.Tensor, params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(params, dict) or "stages" not in params or len(params["stages"]) != len(self.stages):
            raise ValueError(f"params do not fit pipeline {self.name!r} ({len(self.stages)} stages); sample them "
                             "with this pipeline's sample()")
        x = hr
        for step in self.hr_ops:
            p = params.get("hr", {}).get(step.name)
            if p is not None:
                x = get_op(step.op).apply(x, p)
        if isinstance(self.scale, int) and self.scale > 1:  # modcrop, so the LR is exactly HR / scale
            h, w = x.shape[-2:]
            x = x[..., :h - h % self.scale, :w - w % self.scale]
        new_hr = x
        target = self.target_size(x.shape[-2:])
        if min(target) < 1:
            raise ValueError(f"HR {tuple(x.shape[-2:])} is smaller than scale {self.scale}")
        for st, sp in zip(self.stages, params["stages"]):
            if not sp["apply"]:
                continue
            for bi in sp["order"]:
                for step in st.blocks[bi]:
                    p = sp["steps"].get(step.name)
                    if p is not None:
                        x = get_op(step.op).apply(x, p, target)
        if tuple(x.shape[-2:]) != target:
            raise ValueError(f"pipeline {self.name!r} ended at {tuple(x.shape[-2:])} instead of the target {target} "
                             f"(HR {tuple(new_hr.shape[-2:])} / scale {self.scale}); end it with a 'downscale' step")
        return (x.clone() if x is hr else x.contiguous()), new_hr  # never hand back the caller's tensor

    def apply_pair(self, hr: torch.Tensor, params: dict[str, Any] | Sequence[dict[str, Any]]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, new HR): the HR after `hr_ops` and the crop to a multiple of scale, and its degraded LR.

        Shape: (B, C, H, W) -> ((B, C, H' // scale, W' // scale), (B, C, H', W')); float in [0, 1].
        """
        check_image_tensor(hr, "hr")
        if isinstance(params, dict):
            return self._run(hr, params)
        params = list(params)
        if len(params) != hr.shape[0]:
            raise ValueError(f"got {len(params)} params dicts for a batch of {hr.shape[0]}")
        if all(p == params[0] for p in params[1:]):  # e.g. plain bicubic: the whole batch in one go
            return self._run(hr, params[0])
        pairs = [self._run(hr[i:i + 1], p) for i, p in enumerate(params)]
        shapes = {tuple(h.shape) for _, h in pairs}
        if len(shapes) > 1:
            raise ValueError(f"per-image hr_ops gave different HR sizes {sorted(shapes)}; degrade such images one "
                             "at a time")
        return torch.cat([lr for lr, _ in pairs]), torch.cat([h for _, h in pairs])

    def apply(self, hr: torch.Tensor, params: dict[str, Any] | Sequence[dict[str, Any]]) -> torch.Tensor:
        """The LR for `hr` with recorded `params` (deterministic: same params -> same bytes).

        Shape: (B, C, H, W) -> (B, C, H // scale, W // scale) (H, W cropped to multiples of scale first).
        """
        return self.apply_pair(hr, params)[0]

    def __call__(self, hr: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """apply(hr, sample(rng)). Shape: (B, C, H, W) -> (B, C, H // scale, W // scale)."""
        return self.apply(hr, self.sample(rng))

    def config(self) -> dict[str, Any]:
        """What a run records (JSON-able): preset name, scale, every step's op, ranges and probability, stages,
        overrides. `build(config, scale=config['scale'])` rebuilds the same pipeline.
        """
        def step(s: Step) -> dict[str, Any]:
            return {"name": s.name, "op": s.op, "ranges": _plain(get_op(s.op).ranges(**s.ranges)), "prob": s.prob}

        return {"preset": self.name, "scale": self.scale, "overrides": copy.deepcopy(self.overrides),
                "hr_ops": [step(s) for s in self.hr_ops],
                "stages": [{"name": st.name, "shuffle": st.shuffle, "prob": st.prob,
                            "blocks": [[step(s) for s in b] for b in st.blocks]} for st in self.stages]}


# -------------------------------------------------------------------------------------------------- presets

@dataclass(frozen=True)
class Preset:
    """A named pipeline recipe: `make(scale)` -> (hr_ops, stages); `aliases` map short override names."""

    make: Callable[[float], tuple[list[Step], list[Stage]]]
    doc: str
    native_scale: int | None = None  # 1 for same-size (restoration) presets
    aliases: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _single(name: str, steps: list[Step]) -> list[Stage]:
    return [Stage(name, [[s] for s in steps])]


def _second_order(scale: float) -> tuple[list[Step], list[Stage]]:
    # Real-ESRGAN (Wang et al. 2021, https://arxiv.org/abs/2107.10833) training options, approximately: kernels
    # 7..21 px, first blur sigma 0.2-3, second 0.2-1.5 (prob 0.8); resize up/down/keep 0.2/0.7/0.1 in [0.15, 1.5],
    # then 0.3/0.4/0.3 in [0.3, 1.2] of the target; noise Gaussian 1-30 (then 1-25) or Poisson 0.05-3 (then 2.5),
    # gray 40 %; JPEG 30-95; final sinc prob 0.8. Differences: our bicubic is MATLAB's (antialiased), JPEG is
    # OpenCV's rather than DiffJPEG, and the first resize is relative to the HR size.
    first = [Step("blur", "blur", {"sigma": (0.2, 3.0)}),
             Step("resize", "random_resize", {"probs": (0.2, 0.7, 0.1), "up": (1.0, 1.5), "down": (0.15, 1.0)}),
             Step("noise", "noise", {"sigma_255": (1.0, 30.0), "poisson_scale": (0.05, 3.0)}),
             Step("jpeg", "jpeg", {"quality": (30, 95)})]
    second = [Step("blur2", "blur", {"sigma": (0.2, 1.5)}, 0.8),
              Step("resize2", "random_resize", {"probs": (0.3, 0.4, 0.3), "up": (1.0, 1.2), "down": (0.3, 1.0),
                                                "relative_to": "target"}),
              Step("noise2", "noise", {"sigma_255": (1.0, 25.0), "poisson_scale": (0.05, 2.5)}),
              Step("jpeg2", "jpeg", {"quality": (30, 95)})]
    final = Stage("final", [[Step("final_resize", "downscale", {"mode": ["area", "bilinear", "bicubic"]}),
                             Step("final_sinc", "sinc", {}, 0.8)],
                            [Step("final_jpeg", "jpeg", {"quality": (30, 95)})]], shuffle=True)
    return [], [Stage("first", [[s] for s in first]), Stage("second", [[s] for s in second]), final]


PRESETS: dict[str, Preset] = {
    "bicubic": Preset(lambda s: ([], _single("degrade", [Step("down", "downscale", {"mode": "bicubic"})])),
                      "MATLAB bicubic downscaling (the benchmark LR)."),
    "blur_bicubic": Preset(
        lambda s: ([], _single("degrade", [Step("blur", "gaussian_blur", {"sigma": (0.2, 3.0)}),
                                           Step("down", "downscale", {"mode": "bicubic"})])),
        "Gaussian blur of the HR, then MATLAB bicubic down."),
    "noisy_bicubic": Preset(
        lambda s: ([], _single("degrade", [Step("down", "downscale", {"mode": "bicubic"}),
                                           Step("noise", "gaussian_noise", {"sigma_255": (1.0, 25.0)})])),
        "MATLAB bicubic down, then Gaussian noise on the LR."),
    "jpeg": Preset(
        lambda s: ([], _single("degrade", [Step("down", "downscale", {"mode": "bicubic"}),
                                           Step("jpeg", "jpeg", {"quality": (30, 95)})])),
        "MATLAB bicubic down, then JPEG.", aliases={"quality": "jpeg_quality"}),
    "second_order": Preset(_second_order, "Real-ESRGAN second-order degradation (approximate published ranges)."),
    "realsr": Preset(
        lambda s: ([], _single("degrade", [Step("blur", "kernel_bank", {}),
                                           Step("down", "downscale", {"mode": "nearest"}),
                                           Step("noise", "bank_noise", {"strength": 1.0})])),
        "RealSR: a real kernel from a bank, strided down, real noise from a bank (Ji et al. 2020).",
        aliases={"kernel_bank": "blur_path", "noise_bank": "noise_path"}, required=("kernel_bank", "noise_bank")),
    "deblur_motion": Preset(
        lambda s: ([], _single("degrade", [Step("blur", "motion_blur", {}),
                                           Step("noise", "gaussian_noise", {"sigma_255": (0.0, 5.0)})])),
        "Same size: motion blur (line or camera-shake trajectory) + light Gaussian noise.", native_scale=1),
    "denoise_gaussian": Preset(
        lambda s: ([], _single("degrade", [Step("noise", "gaussian_noise", {"sigma_255": (0.0, 50.0)})])),
        "Same size: Gaussian noise, sigma 0-50 (0-255 units).", native_scale=1,
        aliases={"sigma": "noise_sigma", "sigma_255": "noise_sigma_255", "gray_prob": "noise_gray_prob"}),
}


def list_presets() -> list[str]:
    """Names of the degradation presets."""
    return list(PRESETS)


def _get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown degradation preset {name!r}; known: {list(PRESETS)}")
    return PRESETS[name]


def _override_table(hr_ops: list[Step], stages: list[Stage]) -> dict[str, tuple[Any, str]]:
    """Every override name -> (step or stage, key): '<step>_<range>', '<step>_prob', '<stage>_prob|shuffle'."""
    table: dict[str, tuple[Any, str]] = {}
    for s in hr_ops + [s for st in stages for b in st.blocks for s in b]:
        for key in get_op(s.op).defaults:
            table[f"{s.name}_{key}"] = (s, key)
        table[f"{s.name}_prob"] = (s, "prob")
    for st in stages:
        table[f"{st.name}_prob"] = (st, "prob")
        table[f"{st.name}_shuffle"] = (st, "shuffle")
    return table


def _current(obj: Any, key: str) -> Any:
    if isinstance(obj, Step) and key != "prob":
        return get_op(obj.op).ranges(**obj.ranges)[key]
    return getattr(obj, key)


def preset_overrides(name: str, scale: float = 2) -> dict[str, Any]:
    """Every override name `build(name, **overrides)` accepts, with its default (short aliases included)."""
    p = _get_preset(name)
    hr_ops, stages = p.make(scale)
    table = _override_table(hr_ops, stages)
    out = {k: _plain(_current(o, key)) for k, (o, key) in table.items()}
    out.update({a: out[t] for a, t in p.aliases.items()})
    out["hr_ops"] = []
    return out


def _steps_from(items: Any, where: str) -> list[Step]:
    """Steps from [op, ranges, prob] lists / (op, ranges) / {'name', 'op', 'ranges', 'prob'} dicts."""
    out, counts = [], {}
    for it in items or []:
        if isinstance(it, Step):
            s = it
        elif isinstance(it, dict):
            unknown = set(it) - {"name", "op", "ranges", "prob"}
            if "op" not in it or unknown:
                raise ValueError(f"{where}: a step dict needs 'op' (and optionally 'name', 'ranges', 'prob'), "
                                 f"got keys {sorted(it)}")
            s = Step(it.get("name") or it["op"], it["op"], dict(it.get("ranges") or {}), it.get("prob", 1.0))
        elif isinstance(it, (list, tuple)) and 1 <= len(it) <= 3 and isinstance(it[0], str):
            s = Step(it[0], it[0], dict(it[1]) if len(it) > 1 and it[1] else {}, it[2] if len(it) > 2 else 1.0)
        else:
            raise ValueError(f"{where}: a step is [op, ranges, prob] or a dict with 'op', got {it!r}")
        get_op(s.op)
        counts[s.name] = counts.get(s.name, 0) + 1
        if counts[s.name] > 1:  # the same op twice in a list: name them op, op2, op3 ...
            s = Step(f"{s.name}{counts[s.name]}", s.op, s.ranges, s.prob)
        out.append(s)
    return out


def _pipeline_from_dict(d: dict[str, Any], scale: float) -> Pipeline:
    """A custom pipeline from {'steps': [...]} or {'stages': [{'name', 'blocks' | 'steps', 'shuffle', 'prob'}]}."""
    known = {"preset", "scale", "overrides", "hr_ops", "stages", "steps", "shuffle"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise KeyError(f"unknown key {unknown[0]!r} in a custom pipeline spec; known: {sorted(known)}")
    if ("stages" in d) == ("steps" in d):
        raise ValueError("a custom pipeline spec needs exactly one of 'steps' (one stage) or 'stages'")
    if "steps" in d:
        stages = [Stage("degrade", [[s] for s in _steps_from(d["steps"], "steps")], bool(d.get("shuffle", False)))]
    else:
        stages = []
        for i, st in enumerate(d["stages"]):
            name = st.get("name", f"stage{i + 1}")
            if "blocks" in st:
                blocks = [_steps_from(b, f"stage {name!r}") for b in st["blocks"]]
            else:
                blocks = [[s] for s in _steps_from(st.get("steps", []), f"stage {name!r}")]
            stages.append(Stage(name, blocks, bool(st.get("shuffle", False)), st.get("prob", 1.0)))
    return Pipeline(stages, scale, _steps_from(d.get("hr_ops"), "hr_ops"), d.get("preset", "custom"),
                    d.get("overrides"))


def _apply_overrides(hr_ops: list[Step], stages: list[Stage], overrides: dict[str, Any], aliases: dict[str, str],
                     what: str) -> list[Step]:
    """Set overrides on the steps / stages (in place); returns the hr_ops with `hr_ops=[...]` appended."""
    extra = overrides.pop("hr_ops", None)
    if extra:
        hr_ops = hr_ops + _steps_from(extra, "hr_ops")
    table = _override_table(hr_ops, stages)
    for k, v in overrides.items():
        key = aliases.get(k, k)
        if key not in table:
            raise KeyError(f"unknown override {k!r} for {what}; known: {sorted(set(table) | set(aliases))} "
                           "(and hr_ops)")
        obj, attr = table[key]
        if isinstance(obj, Step) and attr != "prob":
            ex = get_op(obj.op).exclusive.get(attr)
            obj.ranges[attr] = _plain(v)
            if ex and v is not None:
                obj.ranges[ex] = None
        elif attr == "shuffle":
            obj.shuffle = bool(v)
        else:
            setattr(obj, attr, v)
    return hr_ops


def build(spec: str | dict[str, Any] | Pipeline | None = "bicubic", scale: int = 2, **overrides: Any) -> Pipeline:
    """A degradation pipeline from a preset name, a dict or a recorded config, with overrides.

    `spec`: a preset name (`list_presets()`; None = 'bicubic'); {'preset': name, **overrides}; or a custom
    {'steps': [[op, ranges, prob], ...]} / {'stages': [...], 'hr_ops': [...]} (what `Pipeline.config()` gives).
    A dict's 'scale', if present, must equal `scale`. Unknown names -> KeyError listing the known ones.
    """
    if isinstance(scale, bool) or not _is_num(scale) or not math.isfinite(float(scale)) or scale <= 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if spec is None:
        spec = "bicubic"
    if isinstance(spec, Pipeline):
        spec = spec.config()
    if isinstance(spec, str) and spec.lstrip().startswith("{"):  # a JSON dict passed as a papermill string
        spec = json.loads(spec)
    if isinstance(spec, dict):
        d = copy.deepcopy(spec)
        if "scale" in d and float(d.pop("scale")) != float(scale):
            raise ValueError(f"the spec says scale={spec['scale']} but scale={scale} was passed; pass "
                             f"scale={spec['scale']}")
        if "stages" in d or "steps" in d:
            pipe = _pipeline_from_dict(d, scale)
            if overrides:
                hr_ops = _apply_overrides(pipe.hr_ops, pipe.stages, dict(overrides), {}, f"pipeline {pipe.name!r}")
                pipe = Pipeline(pipe.stages, scale, hr_ops, pipe.name, {**pipe.overrides, **overrides})
            return pipe
        if "preset" not in d:
            raise KeyError(f"a dict spec needs 'preset' (one of {list(PRESETS)}) or 'steps' / 'stages'; "
                           f"got keys {sorted(spec)}")
        name = d.pop("preset")
        d.pop("overrides", None)
        overrides = {**d, **overrides}
    elif isinstance(spec, str):
        name = spec.strip()
    else:
        raise ValueError(f"spec must be a preset name, a dict or a Pipeline, got {type(spec).__name__}")
    preset = _get_preset(name)
    if preset.native_scale is not None and float(scale) != preset.native_scale:
        raise ValueError(f"preset {name!r} is a same-size (scale {preset.native_scale}) degradation; call "
                         f"build({name!r}, scale={preset.native_scale})")
    missing = [r for r in preset.required if overrides.get(r) in (None, "")]
    if missing:
        raise ValueError(f"preset {name!r} needs " + " and ".join(f"{m}=..." for m in missing) +
                         f"; e.g. build({name!r}, scale={scale}, kernel_bank='kernels/', noise_bank='noise.npz') "
                         "(kernels: .npy/.png files; noise: lab.degrade.extract_noise_patches(...).save())")
    hr_ops, stages = preset.make(scale)
    hr_ops = _apply_overrides(hr_ops, stages, dict(overrides), preset.aliases, f"preset {name!r}")
    return Pipeline(stages, scale, hr_ops, name, overrides)


# --------------------------------------------------------------------------------------------------- mixup

class Mixed(NamedTuple):
    """Mixup result: mixed input and target, the per-sample lambdas (B,) and partner indices (B,)."""

    lr: torch.Tensor
    hr: torch.Tensor
    lam: torch.Tensor
    perm: torch.Tensor


def mixup_pair(lr: torch.Tensor, hr: torch.Tensor, rng: np.random.Generator, alpha: float = 1.2,
               space: str = "srgb") -> Mixed:
    """Mixup for restoration: each sample i blends with sample perm[i] by its own lambda_i ~ Beta(alpha, alpha),
    the input and the target with the same lambda_i (alpha 1.2 as in Yoo et al. 2020, CutBlur,
    https://arxiv.org/abs/2004.00448). `space='linear'` blends in linear light (sRGB decoded first).

    Shape: (B, C, h, w), (B, C, H, W) -> Mixed(lr (B, C, h, w), hr (B, C, H, W), lam (B,), perm (B,)).
    """
    check_image_tensor(lr, "lr")
    check_image_tensor(hr, "hr")
    if lr.shape[0] != hr.shape[0]:
        raise ValueError(f"lr and hr batches differ: {lr.shape[0]} vs {hr.shape[0]}")
    alpha = _check_value("mixup alpha", alpha, lo=0, lo_open=True)
    if space not in ("srgb", "linear"):
        raise ValueError(f"mixup space must be 'srgb' or 'linear', got {space!r}")
    b = lr.shape[0]
    lam = torch.from_numpy(rng.beta(alpha, alpha, size=b)).to(lr.dtype)
    perm = torch.from_numpy(rng.permutation(b)).long()

    def mix(x: torch.Tensor) -> torch.Tensor:
        import lab.color

        lam4 = lam.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
        other = x[perm.to(x.device)]
        if space == "srgb":
            return lam4 * x + (1 - lam4) * other
        lin = lam4 * lab.color.srgb_to_linear(x.clamp(0, 1)) + (1 - lam4) * lab.color.srgb_to_linear(other.clamp(0, 1))
        return lab.color.linear_to_srgb(lin).clamp(0, 1)

    return Mixed(mix(lr), mix(hr), lam, perm)


class RestorationMixup(Callback):
    """Mixup on training batches (input and target together, a lambda per sample) with probability `p`.

    The callback owns a numpy Generator seeded with `seed`, so a run replays its mixing.
    """

    run_valid = False

    def __init__(self, alpha: float = 1.2, p: float = 1.0, space: str = "srgb", seed: int = 0):
        self.alpha, self.p, self.space = alpha, _prob(p, "mixup p"), space
        self.rng = np.random.default_rng(_check_seed(seed))

    def before_batch(self) -> None:
        """Replace the batch by its mixup (training only)."""
        if self.p < 1 and self.rng.random() >= self.p:
            return
        m = mixup_pair(self.learn.xb[0], self.learn.yb[0], self.rng, self.alpha, self.space)
        self.learn.xb, self.learn.yb = (m.lr,), (m.hr,)


# ------------------------------------------------------------------------------------------------- explorer

def manual_pipeline(scale: int = 2, blur_sigma: float = 1.0, blur_ratio: float = 1.0, blur_angle: float = 0.0,
                    noise_255: float = 5.0, jpeg_quality: int = 100, contrast: float = 1.0) -> Pipeline:
    """A fixed pipeline from slider values: contrast -> Gaussian blur -> bicubic down -> Gaussian noise -> JPEG.

    blur_sigma 0, noise_255 0, contrast 1 and jpeg_quality 100 switch that step off; `blur_ratio` = sigma_y / sigma_x.
    """
    steps: list[list[Any]] = [["contrast", {"factor": float(contrast)}, 0.0 if contrast == 1 else 1.0],
                              ["gaussian_blur", {"sigma": max(float(blur_sigma), 1e-3),
                                                 "sigma_y": max(float(blur_sigma) * float(blur_ratio), 1e-3),
                                                 "angle": float(blur_angle)}, 1.0 if blur_sigma > 0 else 0.0],
                              ["downscale", {"mode": "bicubic"}, 1.0],
                              ["gaussian_noise", {"sigma_255": float(noise_255)}, 1.0 if noise_255 > 0 else 0.0],
                              ["jpeg", {"quality": int(min(jpeg_quality, 100))}, 1.0 if jpeg_quality < 100 else 0.0]]
    return build({"preset": "manual", "steps": steps}, scale=scale)


def first_kernel(pipe: Pipeline, params: dict[str, Any]) -> np.ndarray | None:
    """The first blur kernel a params dict applies (None if no blur ran). Shape: () -> (k, k) float32."""
    for sp in params["stages"]:
        for p in sp["steps"].values():
            if sp["apply"] and isinstance(p, dict) and "kernel" in p:
                return make_kernel(p["kernel"])
    return None
