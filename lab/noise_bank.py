"""Real-noise injection: extract noise patches from real photos, keep them in a bank, add them to clean images.

After RealSR (Ji et al., CVPR-W 2020, https://arxiv.org/abs/2005.01996, Sec. 3.2): noise is taken from flat
regions of real images, where the image content is nearly constant and what varies is mostly noise.

`extract_noise_patches` works in two stages, on float images in [0, 1]:
1. Residual: `residual = image - denoise(image)`. Denoisers (`denoise=`):
   - `'gaussian'` (default): a Gaussian filter of `denoise_sigma` px. For white noise its residual under-reports
     the noise std by sqrt(1 - 2 k0 + sum k^2) (k the 2-D kernel, k0 its centre tap); the residual is divided by
     that factor (`bias_correct=True`), so the bank's std matches the source's for white noise (spatially
     correlated camera noise is corrected only approximately).
   - `'median'`: a 3x3 or 5x5 median (`median_size`); `'nlm'`: OpenCV non-local means on the 8-bit image
     (`cv2.fastNlMeansDenoisingColored`, strength `nlm_h` in 0-255 units). Neither is bias-corrected.
   Flat candidates: a grid of `patch` x `patch` windows (step `stride`) ranked by the std of the *denoised*
   image inside them; the flattest `flat_quantile` fraction is kept (and, if set, those with std <= `max_flat_std`).
2. Structure rejection: a residual that still holds image structure (edges or texture leaking through the
   denoiser) is dropped when either test fails:
   - gradient correlation: |Pearson correlation| between the residual energy (sum over channels of r^2) and the
     gradient magnitude (Sobel) of the denoised image exceeds `max_grad_corr`;
   - stationarity: the largest / smallest residual variance over the four quadrants of the patch exceeds
     `max_var_ratio` (noise is spread evenly; a leaked edge concentrates energy in part of the patch).
Kept residuals are made zero-mean per channel and stored as float32 (N, patch, patch, C) in a `NoiseBank`.

`load_bank("builtin")` is a bank extracted (as above, defaults) from built-in photos scikit-image ships whose flat
regions hold real sensor and compression noise (BUILTIN_NOISE_PHOTOS), so the `realsr` degradation runs without
files of one's own.
"""

from __future__ import annotations

import io
import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import skimage.data
import torch

from lab.images import list_images, read_image
from lab.utils import atomic_write_bytes, user_path

DENOISERS = ("gaussian", "median", "nlm")


class NoiseBank:
    """Zero-mean noise patches (N, P, P, C) float32 in [0, 1] image units, plus a metadata dict.

    `field(shape, rng)` tiles random patches (with random flips/transposes) into a noise image; `save` / `load`
    keep the bank in a `.npz` file.
    """

    def __init__(self, patches: np.ndarray, meta: dict[str, Any] | None = None):
        p = np.asarray(patches)
        if p.ndim != 4 or p.shape[1] != p.shape[2] or p.shape[3] not in (1, 3) or len(p) == 0:
            raise ValueError(f"noise patches must be (N, P, P, C) with N >= 1 and C in (1, 3), got shape {p.shape}")
        if not np.issubdtype(p.dtype, np.floating) or not np.isfinite(p).all():
            raise ValueError(f"noise patches must be finite floats, got dtype {p.dtype}")
        self.patches = p.astype(np.float32)
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return len(self.patches)

    def __repr__(self) -> str:
        return f"NoiseBank({len(self)} patches of {self.patch_size}px x {self.channels}, std={self.std():.4f})"

    @property
    def patch_size(self) -> int:
        """Side of the square patches, in px."""
        return int(self.patches.shape[1])

    @property
    def channels(self) -> int:
        """Channels per patch (1 or 3)."""
        return int(self.patches.shape[3])

    def std(self) -> float:
        """Standard deviation of all stored noise values, in [0, 1] image units."""
        return float(self.patches.astype(np.float64).std())

    def save(self, path: str | os.PathLike) -> Path:
        """Write the bank to a `.npz` file (atomically); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"noise bank files end in .npz, got {str(path)!r}")
        buf = io.BytesIO()
        np.savez_compressed(buf, patches=self.patches, meta=np.array(json.dumps(self.meta)))
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NoiseBank":
        """Read a bank written by `save` (FileNotFoundError if missing, ValueError if it is not a bank)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"noise bank file {str(path)!r} does not exist; make one with "
                                    "lab.noise_bank.extract_noise_patches(...).save(path)")
        try:
            with np.load(path, allow_pickle=False) as z:
                patches, meta = z["patches"], json.loads(str(z["meta"]))
        except (KeyError, ValueError, OSError) as e:
            raise ValueError(f"{str(path)!r} is not a noise bank .npz (needs 'patches' and 'meta'): {e}") from None
        return cls(patches, meta)

    def field(self, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """A noise image of `shape` (C, H, W): random patches, each randomly flipped/transposed, tiled from a random
        offset. A 1-channel bank gives the same noise in every channel; a 3-channel bank on 1 channel uses one
        channel of it.

        Shape: () -> (C, H, W) float32.
        """
        c, h, w = (int(v) for v in shape)
        p = self.patch_size
        ny, nx = math.ceil(h / p) + 1, math.ceil(w / p) + 1
        idx = rng.integers(0, len(self), size=ny * nx)
        codes = rng.integers(0, 8, size=ny * nx)
        canvas = np.empty((ny * p, nx * p, self.channels), dtype=np.float32)
        for t, (i, code) in enumerate(zip(idx, codes)):
            tile = self.patches[i]
            if code & 1:
                tile = tile[:, ::-1]
            if code & 2:
                tile = tile[::-1]
            if code & 4:
                tile = tile.transpose(1, 0, 2)
            r, q = divmod(t, nx)
            canvas[r * p:(r + 1) * p, q * p:(q + 1) * p] = tile
        oy, ox = int(rng.integers(0, p)), int(rng.integers(0, p))
        out = canvas[oy:oy + h, ox:ox + w].transpose(2, 0, 1)
        if out.shape[0] == 1:
            out = np.repeat(out, c, axis=0)
        elif c == 1:
            out = out[:1]
        elif c != out.shape[0]:
            raise ValueError(f"a {self.channels}-channel noise bank cannot fill {c} channels")
        return np.ascontiguousarray(out)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> NoiseBank:
    """`NoiseBank.load`, cached by path and modification time."""
    return NoiseBank.load(path)


BUILTIN_BANK = "builtin"  # the bank name that means `builtin_noise_bank()` rather than a file
BUILTIN_NOISE_PHOTOS = ("astronaut", "rocket", "hubble_deep_field")  # not the validation photo (chelsea)


@lru_cache(maxsize=1)
def builtin_noise_bank() -> NoiseBank:
    """Noise patches (32 px) extracted with the defaults of `extract_noise_patches` from BUILTIN_NOISE_PHOTOS."""
    bank = extract_noise_patches([getattr(skimage.data, name)() for name in BUILTIN_NOISE_PHOTOS], patch=32)
    bank.meta["source"] = f"builtin: {', '.join(BUILTIN_NOISE_PHOTOS)}"
    return bank


def load_bank(path: str | os.PathLike) -> NoiseBank:
    """`NoiseBank.load(path)`, cached until the file changes (pipelines load a bank once, not per image); the name
    'builtin' gives `builtin_noise_bank()`."""
    if str(path) == BUILTIN_BANK:
        return builtin_noise_bank()
    p = user_path(path).resolve()
    if not p.is_file():
        return NoiseBank.load(p)  # raises the explanatory FileNotFoundError
    return _load_cached(str(p), p.stat().st_mtime)


def add_bank_noise(x: torch.Tensor, bank: NoiseBank, strength: float, seed: int) -> torch.Tensor:
    """Add bank noise times `strength` (1.0 = as extracted) to each image, fields drawn from `seed`; clipped.

    Shape: (B, C, H, W) -> (B, C, H, W), float in [0, 1].
    """
    strength = float(strength)
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"noise bank strength must be >= 0, got {strength}")
    rng = np.random.default_rng(int(seed))
    b, c, h, w = x.shape
    noise = np.stack([bank.field((c, h, w), rng) for _ in range(b)])
    return (x + strength * torch.from_numpy(noise).to(x)).clamp(0, 1)


def _to_float_hwc(img: Any) -> np.ndarray:
    """An image (HWC/HW uint8 or float [0, 1] array, or (1, C, H, W)/(C, H, W) tensor) -> HWC float32 [0, 1]."""
    if isinstance(img, torch.Tensor):
        t = img.detach().float().cpu()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError(f"give images one at a time (or as a list), got a batch of {t.shape[0]}")
            t = t[0]
        if t.ndim != 3:
            raise ValueError(f"expected a (C, H, W) or (1, C, H, W) tensor, got shape {tuple(img.shape)}")
        a = t.permute(1, 2, 0).numpy()
    elif isinstance(img, np.ndarray):
        a = img[:, :, None] if img.ndim == 2 else img
        if a.ndim != 3 or a.shape[2] not in (1, 3):
            raise ValueError(f"expected an HW or HWC (C = 1 or 3) array, got shape {img.shape}")
        if a.dtype == np.uint8:
            a = a.astype(np.float32) / 255.0
        elif np.issubdtype(a.dtype, np.floating):
            a = a.astype(np.float32)
        else:
            raise ValueError(f"expected uint8 or float [0, 1] images, got dtype {a.dtype}")
    else:
        raise ValueError(f"expected an image array or tensor, got {type(img).__name__}")
    return np.ascontiguousarray(a)


def _images(source: Any) -> list[np.ndarray]:
    """A folder path, one image, or a sequence of images -> list of HWC float32 images in [0, 1]."""
    if isinstance(source, (str, os.PathLike)):
        files = list_images(source)
        if not files:
            raise ValueError(f"folder {str(source)!r} holds no images to extract noise from")
        return [_to_float_hwc(read_image(f)) for f in files]
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return [_to_float_hwc(source)]
    imgs = [_to_float_hwc(s) for s in source]
    if not imgs:
        raise ValueError("no images given to extract noise from")
    return imgs


def _denoise(img: np.ndarray, method: str, sigma: float, median_size: int, nlm_h: float) -> tuple[np.ndarray, float]:
    """(denoised HWC float32, factor by which the residual under-reports white noise std)."""
    if method == "gaussian":
        if not sigma > 0:
            raise ValueError(f"denoise_sigma must be > 0 px, got {sigma}")
        size = 2 * int(math.ceil(4 * sigma)) + 1
        den = cv2.GaussianBlur(img, (size, size), sigma, borderType=cv2.BORDER_REFLECT_101)
        g = cv2.getGaussianKernel(size, sigma).ravel().astype(np.float64)
        k0, k2 = g[size // 2] ** 2, float((g ** 2).sum()) ** 2
        return den.reshape(img.shape), math.sqrt(1 - 2 * k0 + k2)
    if method == "median":
        if median_size not in (3, 5):
            raise ValueError(f"median_size must be 3 or 5 (OpenCV's float median), got {median_size}")
        return cv2.medianBlur(img, median_size).reshape(img.shape), 1.0
    if method == "nlm":
        u8 = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        if img.shape[2] == 3:
            den = cv2.fastNlMeansDenoisingColored(u8, None, nlm_h, nlm_h, 7, 21)
        else:
            den = cv2.fastNlMeansDenoising(u8[:, :, 0], None, nlm_h, 7, 21)
        return den.reshape(img.shape).astype(np.float32) / 255.0, 1.0
    raise KeyError(f"unknown denoiser {method!r}; known: {list(DENOISERS)}")


def _grad_mag(img: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the channel mean. Shape: (H, W, C) -> (H, W)."""
    g = img.mean(axis=2)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT_101)
    return np.hypot(gx, gy)


def _abs_corr(a: np.ndarray, b: np.ndarray) -> float:
    """|Pearson correlation| of two arrays (0 when either is constant)."""
    a = a.ravel().astype(np.float64) - a.mean()
    b = b.ravel().astype(np.float64) - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return abs(float((a * b).sum())) / den if den > 0 else 0.0


def _var_ratio(r: np.ndarray) -> float:
    """Largest / smallest residual variance over the four quadrants of a patch (inf if one is constant)."""
    h, w = r.shape[0] // 2, r.shape[1] // 2
    v = [float(q.var()) for q in (r[:h, :w], r[:h, w:], r[h:, :w], r[h:, w:])]
    return max(v) / min(v) if min(v) > 0 else math.inf


def extract_noise_patches(source: Any, patch: int = 32, *, denoise: str = "gaussian", denoise_sigma: float = 2.0,
                          median_size: int = 5, nlm_h: float = 5.0, stride: int | None = None,
                          flat_quantile: float = 0.25, max_flat_std: float | None = None,
                          max_grad_corr: float = 0.3, max_var_ratio: float = 3.0, bias_correct: bool = True,
                          max_patches: int | None = None) -> NoiseBank:
    """Noise patches from the flat regions of real images (two-stage method in the module doc) as a NoiseBank.

    `source`: a folder of images, one image (HWC uint8 / float [0, 1] array, or (C, H, W) tensor) or a sequence.
    `patch`, `stride` in px; std thresholds in [0, 1] units. `max_patches` keeps at most that many, the flattest
    windows of all the images (not the first ones found). Raises ValueError when no patch survives.
    """
    if denoise not in DENOISERS:
        raise KeyError(f"unknown denoiser {denoise!r}; known: {list(DENOISERS)}")
    if not isinstance(patch, int) or patch < 4:
        raise ValueError(f"patch must be an integer >= 4 px, got {patch!r}")
    stride = patch if stride is None else stride
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    if not 0 < flat_quantile <= 1:
        raise ValueError(f"flat_quantile must be in (0, 1], got {flat_quantile}")
    cands: list[tuple[float, np.ndarray, np.ndarray]] = []  # (flatness, residual, gradient) per window
    counts = {"windows": 0}
    for img in _images(source):
        den, factor = _denoise(img, denoise, denoise_sigma, median_size, nlm_h)
        res = (img - den) / (factor if bias_correct else 1.0)
        grad = _grad_mag(den)
        h, w = img.shape[:2]
        for y in range(0, h - patch + 1, stride):
            for x in range(0, w - patch + 1, stride):
                d = den[y:y + patch, x:x + patch]
                cands.append((float(d.std(axis=(0, 1)).mean()), res[y:y + patch, x:x + patch],
                              grad[y:y + patch, x:x + patch]))
    counts["windows"] = len(cands)
    if not cands:
        raise ValueError(f"the images are smaller than one {patch}px patch; lower `patch`")
    limit = float(np.quantile([c[0] for c in cands], flat_quantile))
    if max_flat_std is not None:
        limit = min(limit, float(max_flat_std))
    flat = [c for c in cands if c[0] <= limit]
    # the flattest first over all frames (stable: ties keep scan order), so `max_patches` keeps the flattest
    flat.sort(key=lambda c: c[0])
    kept = []
    for _, r, g in flat:
        if _abs_corr((r ** 2).sum(axis=2), g) > max_grad_corr or _var_ratio(r) > max_var_ratio:
            continue
        kept.append(r - r.mean(axis=(0, 1), keepdims=True))
        if max_patches is not None and len(kept) >= max_patches:
            break
    if not kept:
        raise ValueError(f"no noise patch survived: {counts['windows']} windows, {len(flat)} flat, 0 without "
                         f"structure; raise flat_quantile / max_grad_corr / max_var_ratio or lower patch ({patch})")
    meta = {"denoise": denoise, "denoise_sigma": denoise_sigma, "patch": patch, "stride": stride,
            "flat_quantile": flat_quantile, "max_flat_std": max_flat_std, "max_grad_corr": max_grad_corr,
            "max_var_ratio": max_var_ratio, "bias_correct": bias_correct, "windows": counts["windows"],
            "flat": len(flat), "kept": len(kept)}
    return NoiseBank(np.stack(kept), meta)
