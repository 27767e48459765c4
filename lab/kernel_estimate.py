"""Blur kernels estimated from real pictures (one per picture), written as a bank the `realsr` preset reads.

The estimator: a Gaussian blur kernel with covariance S multiplies an image's power spectrum by
exp(-4 pi^2 f^T S f), and natural pictures have a power spectrum that falls as |f|^-alpha with alpha near 2
(Field, JOSA A 1987; van der Schaaf & van Hateren, Vision Research 1996). So the logarithm of a picture's power
spectrum, after the noise floor is taken off, is linear in (c, S_xx, S_xy, S_yy):

    log P(f) = c - alpha log|f| - 4 pi^2 (S_xx fx^2 + 2 S_xy fx fy + S_yy fy^2),

and a least-squares fit over the frequencies above the noise floor gives S: an anisotropic, rotated Gaussian (the
shape of most of KernelGAN's x2 kernels, and of the half of `lab.kernels.builtin_kernel_bank` that is Gaussian).
It is a per-picture estimate like KernelGAN's (Bell-Kligler et al., NeurIPS 2019), without training a GAN per
picture (KernelGAN takes minutes of GPU per image; this takes milliseconds of CPU), at the price of a parametric
shape: a motion trail comes out as the Gaussian of the same second moments. The spectrum is Welch's average over
64 px Hann windows of the luma; the noise floor is the median power above 0.45 cycles/px.

`scale`: the kernel a bank needs is applied to an HR image before it is strided down by `scale` (`realsr`), so
the blur a picture shows in its own pixels is `scale` times wider in HR pixels (S * scale^2), taking the HR to be
sharp.

`lab kernel-bank FOLDER OUT` writes OUT/<picture>.npy (float32, odd square, summing to 1) and OUT/kernels.json
(the covariance of each and the settings), a folder `lab.kernels.load_kernel_bank` reads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from fastprogress.fastprogress import progress_bar

from lab.images import list_images, read_image
from lab.kernels import auto_size, builtin_kernel_bank, filter2d
from lab.utils import atomic_write_bytes, atomic_write_json

ALPHA = 2.0  # the natural-image power-law exponent of the prior
WINDOW = 64  # Welch window side, px
F_LOW, F_NOISE = 0.04, 0.45  # cycles/px: below F_LOW the window and content dominate; above F_NOISE, the floor
MIN_VAR = 0.04  # px^2: the smallest variance kept (a 0.2 px Gaussian: the identity on a pixel grid)


def _luma(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float64)
    a = a / 255.0 if np.asarray(img).dtype == np.uint8 else a
    return a @ np.array([0.299, 0.587, 0.114]) if a.ndim == 3 else a


def power_spectrum(img: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Welch estimate of the luma's power spectrum: the mean |FFT|^2 of half-overlapping Hann windows, each with
    its mean removed. Shape: (H, W[, 3]) -> (window, window), unshifted (numpy.fft.fftfreq order)."""
    y = _luma(img)
    h, w = y.shape
    if min(h, w) < window:
        raise ValueError(f"a picture of {w}x{h} px is smaller than the {window} px analysis window")
    hann = np.outer(np.hanning(window), np.hanning(window))
    acc, n = np.zeros((window, window)), 0
    for top in range(0, h - window + 1, window // 2):
        for left in range(0, w - window + 1, window // 2):
            p = y[top:top + window, left:left + window]
            acc += np.abs(np.fft.fft2((p - p.mean()) * hann)) ** 2
            n += 1
    return acc / n


def estimate_covariance(img: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """The covariance (px^2, 2x2, x = columns, y = rows) of the Gaussian blur a picture shows (module doc)."""
    p = power_spectrum(img)
    f = np.fft.fftfreq(p.shape[0])
    fy, fx = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(fx, fy)
    floor = float(np.median(p[r >= F_NOISE]))
    signal = p - floor
    use = (r >= F_LOW) & (r < F_NOISE) & (signal > 3 * floor)
    if use.sum() < 12:
        raise ValueError("too few frequencies above the noise floor to estimate a kernel (a flat or very noisy "
                         "picture)")
    c = -4 * math.pi ** 2
    a = np.stack([np.ones(use.sum()), c * fx[use] ** 2, c * 2 * fx[use] * fy[use], c * fy[use] ** 2], axis=1)
    rhs = np.log(signal[use]) + alpha * np.log(r[use])
    (_, sxx, sxy, syy), *_ = np.linalg.lstsq(a, rhs, rcond=None)
    vals, vecs = np.linalg.eigh(np.array([[sxx, sxy], [sxy, syy]]))
    return (vecs * np.maximum(vals, MIN_VAR)) @ vecs.T


def gaussian_from_covariance(cov: np.ndarray, size: int | None = None) -> np.ndarray:
    """The Gaussian kernel of covariance `cov` (x = columns, y = rows, px^2) on an odd `size` grid (default: 3
    standard deviations of the wider axis), float32 summing to 1."""
    cov = np.asarray(cov, dtype=np.float64)
    size = size or auto_size(3 * math.sqrt(float(np.linalg.eigvalsh(cov).max())))
    r = (size - 1) / 2
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    v = np.stack([xx.ravel(), yy.ravel()])
    q = np.einsum("in,ij,jn->n", v, np.linalg.inv(cov), v).reshape(size, size)
    k = np.exp(-0.5 * q)
    return (k / k.sum()).astype(np.float32)


def estimate_kernel(img: np.ndarray, size: int = 15, scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, covariance in the kernel's pixels) for one picture, for HR images `scale` times larger."""
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale={scale!r}: expected an integer >= 1")
    if not isinstance(size, int) or size < 3 or size % 2 == 0:
        raise ValueError(f"kernel size={size!r}: expected an odd integer >= 3")
    cov = estimate_covariance(img) * scale ** 2
    return gaussian_from_covariance(cov, size), cov


def kernel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Sum of absolute differences of two centred kernels (the smaller zero-padded to the larger): 0 equal, 2
    disjoint."""
    n = max(a.shape[0], b.shape[0])
    pa, pb = ((n - a.shape[0]) // 2, (n - b.shape[0]) // 2)
    return float(np.abs(np.pad(a, pa) - np.pad(b, pb)).sum())


def build_bank(folder: str | os.PathLike, out: str | os.PathLike, size: int = 15, scale: int = 1,
               progress: bool = True) -> dict[str, Any]:
    """Estimate one kernel per picture of `folder` into bank folder `out` (module doc); returns the record."""
    files = list_images(folder)
    if not files:
        raise ValueError(f"folder {str(folder)!r} holds no pictures to estimate kernels from")
    out = Path(out)
    kernels, skipped = {}, {}
    for path in progress_bar(files, leave=False) if progress else files:
        try:
            k, cov = estimate_kernel(read_image(path), size, scale)
        except ValueError as e:
            skipped[path.name] = str(e)
            continue
        buf = _npy_bytes(k)
        atomic_write_bytes(out / f"{path.stem}.npy", buf)
        kernels[path.stem] = {"cov": cov.round(5).tolist(), "sigma": [float(math.sqrt(v)) for v in
                                                                      np.linalg.eigvalsh(cov)]}
    if not kernels:
        raise ValueError(f"no kernel could be estimated from {str(folder)!r}: {next(iter(skipped.values()))}")
    record = {"estimator": "Gaussian fit of the power spectrum under a 1/f^2 prior (lab.kernel_estimate)",
              "size": size, "scale": scale, "source": str(folder), "kernels": kernels, "skipped": skipped}
    atomic_write_json(out / "kernels.json", record)
    return record


def _npy_bytes(k: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, k.astype(np.float32), allow_pickle=False)
    return buf.getvalue()


MEASURE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
BUILTIN_FAMILIES = ("gaussian", "gaussian", "generalized gaussian", "camera shake")  # builtin_kernel_bank's i % 4


def measure_builtin(photos: Sequence[str] = MEASURE_PHOTOS, n_kernels: int = 8, seed: int = 1) -> list[dict[str, Any]]:
    """`measure` on scikit-image's built-in photos with `n_kernels` true kernels drawn like the built-in bank's but
    from another seed (so no bank kernel is a true one), beside the built-in bank (seed 0); rows name each true
    kernel's family."""
    import skimage.data

    truths = builtin_kernel_bank(n=n_kernels, seed=seed)
    rows = measure([getattr(skimage.data, name)() for name in photos], truths, builtin_kernel_bank())
    for r in rows:
        r["photo"] = photos[r["photo"]]
        r["family"] = BUILTIN_FAMILIES[r["kernel"] % 4]
    return rows


def measure(photos: Sequence[np.ndarray], truths: Sequence[np.ndarray], bank: Sequence[np.ndarray],
            sharpen_first: int = 2) -> list[dict[str, Any]]:
    """The estimator's error on photos blurred with known kernels, beside the built-in bank's.

    Each photo is first shrunk `sharpen_first` x (area: a sharp picture), blurred with each true kernel
    (`lab.kernels.filter2d`) and rounded to 8 bits; per (photo, kernel) the rows hold the estimate's error
    (`kernel_error`), the mean error of the bank's kernels (taking one at random) and the error of the bank's
    nearest kernel (the best a bank pick could do).
    """
    import cv2
    import torch

    rows = []
    for i, photo in enumerate(photos):
        h, w = photo.shape[:2]
        sharp = cv2.resize(photo, (w // sharpen_first, h // sharpen_first), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(sharp.transpose(2, 0, 1)[None].astype(np.float32) / 255)
        for j, k in enumerate(truths):
            blurred = (filter2d(x, k)[0].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
            est, _ = estimate_kernel(blurred, size=k.shape[0])
            errs = [kernel_error(b, k) for b in bank]
            rows.append({"photo": i, "kernel": j, "estimate": kernel_error(est, k),
                         "bank_random": float(np.mean(errs)), "bank_nearest": float(np.min(errs))})
    return rows
