"""Blur kernels (numpy, float32, odd square, summing to 1) and the depthwise convolution that applies them.

Kernel families, all centred on the middle pixel of an odd `size` x `size` grid, in pixel units:
- `gaussian`: anisotropic Gaussian with standard deviations `sigma_x`, `sigma_y` (px) along axes rotated by
  `angle` (degrees, counter-clockwise from the x axis); isotropic when `sigma_x == sigma_y`.
- `generalized`: exp(-0.5 q^beta) and `plateau`: 1 / (1 + q^beta), with q the same Mahalanobis form, the shaped
  kernels of Real-ESRGAN (Wang et al. 2021, https://arxiv.org/abs/2107.10833, Sec. 3.2).
- `motion_line`: a straight segment of `length` px at `angle` degrees; `motion_trajectory`: a smooth random walk
  (direction jittered by `jitter` radians per step, drawn from `seed`) scaled to span `length` px.
- `disk`: defocus, a uniform disk of `radius` px (anti-aliased by 8x8 supersampling).
- `sinc`: the ideal 2-D circular low-pass, omega * J1(omega r) / (2 pi r), cutoff `omega` in radians/pixel in
  (0, pi]; it rings, like over-sharpened or resampled images.
- `bank`: kernel `index` of a folder of `.npy` / `.png` files (`load_kernel_bank`), e.g. kernels estimated from
  real photos by KernelGAN (Bell-Kligler et al. 2019); the folder name 'builtin' is a bank the lab generates
  (`builtin_kernel_bank`: a synthetic stand-in for estimated kernels, no files needed).

`make_kernel(spec)` builds any of them from a plain dict, which is how degradation params record a kernel.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lab.utils import user_path

KERNEL_TYPES = ("gaussian", "generalized", "plateau", "motion_line", "motion_trajectory", "disk", "sinc", "bank")
MAX_KERNEL_SIZE = 101  # larger kernels are almost certainly a units mistake (sigma in px, not in % of the image)


def _check_size(size: int) -> int:
    """An odd kernel size in [1, MAX_KERNEL_SIZE], or ValueError."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0 \
            or size > MAX_KERNEL_SIZE:
        raise ValueError(f"kernel size must be an odd integer in [1, {MAX_KERNEL_SIZE}], got {size!r}")
    return int(size)


def _check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    """`value` as a float, or ValueError when it is not finite and positive (or >= 0 with `allow_zero`)."""
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


def _normalise(k: np.ndarray, what: str) -> np.ndarray:
    """`k` / sum(k) as float32; ValueError if the sum is not positive."""
    s = float(k.sum())
    if not math.isfinite(s) or s <= 0:
        raise ValueError(f"{what}: kernel sums to {s}; it needs a positive sum to be normalised")
    return (k / s).astype(np.float32)


def auto_size(radius: float, max_size: int = MAX_KERNEL_SIZE) -> int:
    """The odd size 2 * ceil(radius) + 1 (at least 3), capped at `max_size`."""
    return min(max(3, 2 * int(math.ceil(radius)) + 1), max_size if max_size % 2 else max_size - 1)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x to the right, y up) of a size x size grid centred on its middle pixel."""
    r = (size - 1) / 2
    ax = np.arange(size, dtype=np.float64) - r
    xx, yy = np.meshgrid(ax, -ax)  # row 0 is the top, so y grows upwards as in the usual angle convention
    return xx, yy


def _quad_form(size: int, sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """q = v^T Sigma^-1 v at every grid point, Sigma = R diag(sx^2, sy^2) R^T with R rotating by `angle` degrees."""
    sx = _check_positive("sigma_x", sigma_x)
    sy = _check_positive("sigma_y", sigma_y)
    t = math.radians(float(angle))
    c, s = math.cos(t), math.sin(t)
    xx, yy = _grid(_check_size(size))
    u = c * xx + s * yy  # coordinates along the rotated axes
    v = -s * xx + c * yy
    return (u / sx) ** 2 + (v / sy) ** 2


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, angle: float = 0.0) -> np.ndarray:
    """Anisotropic Gaussian (sigmas in px, angle in degrees); isotropic when sigma_y is None. Sums to 1.

    Shape: () -> (size, size) float32.
    """
    return _normalise(np.exp(-0.5 * _quad_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, angle)),
                      "gaussian_kernel")


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle: float, beta: float) -> np.ndarray:
    """Generalized Gaussian exp(-0.5 q^beta): beta < 1 heavy tails, beta = 1 Gaussian, beta > 1 flat top. Sums to 1.

    Shape: () -> (size, size) float32.
    """
    b = _check_positive("beta", beta)
    return _normalise(np.exp(-0.5 * _quad_form(size, sigma_x, sigma_y, angle) ** b), "generalized_gaussian_kernel")


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, angle: float, beta: float) -> np.ndarray:
    """Plateau-shaped kernel 1 / (1 + q^beta) (beta > 0; larger beta, flatter top and sharper fall). Sums to 1.

    Shape: () -> (size, size) float32.
    """
    b = _check_positive("beta", beta)
    return _normalise(1.0 / (1.0 + _quad_form(size, sigma_x, sigma_y, angle) ** b), "plateau_kernel")


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Accumulate equal-weight points (x right, y up; px from the centre) bilinearly on a size x size grid."""
    k = np.zeros((size, size), dtype=np.float64)
    r = (size - 1) / 2
    cols = points[:, 0] + r
    rows = r - points[:, 1]
    c0, r0 = np.floor(cols).astype(np.int64), np.floor(rows).astype(np.int64)
    fc, fr = cols - c0, rows - r0
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
            np.add.at(k, (rr[ok], cc[ok]), (wr * wc)[ok])
    return k


def motion_line_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """Linear motion blur: a centred segment `length` px long at `angle` degrees (anti-aliased). Sums to 1.

    `size` defaults to the smallest odd size holding the segment. Shape: () -> (size, size) float32.
    """
    length = _check_positive("length", length, allow_zero=True)
    size = auto_size(length / 2 + 1) if size is None else _check_size(size)
    n = max(2, int(math.ceil(length * 4)) + 1)
    t = np.linspace(-length / 2, length / 2, n)
    a = math.radians(float(angle))
    pts = np.stack([t * math.cos(a), t * math.sin(a)], axis=1)
    return _normalise(_splat(pts, size), "motion_line_kernel")


def motion_trajectory_kernel(length: float, seed: int, jitter: float = 0.3, angle: float = 0.0,
                             size: int | None = None, steps: int = 64) -> np.ndarray:
    """Camera-shake blur: a smooth random walk from `seed` (direction starts at `angle` degrees and turns by
    N(0, jitter^2) radians per step), scaled so its largest extent is `length` px and centred. Sums to 1.

    Shape: () -> (size, size) float32.
    """
    length = _check_positive("length", length, allow_zero=True)
    jitter = _check_positive("jitter", jitter, allow_zero=True)
    size = auto_size(length / 2 + 1) if size is None else _check_size(size)
    rng = np.random.default_rng(int(seed))
    theta = math.radians(float(angle)) + np.concatenate([[0.0], np.cumsum(rng.normal(0.0, jitter, steps - 1))])
    pts = np.cumsum(np.stack([np.cos(theta), np.sin(theta)], axis=1), axis=0)
    pts -= (pts.max(axis=0) + pts.min(axis=0)) / 2  # centre the bounding box on the kernel centre
    extent = float(np.max(pts.max(axis=0) - pts.min(axis=0)))
    pts = pts * (length / extent) if extent > 0 else pts * 0
    # dense resampling along the path, so long steps leave no gaps
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    dense = np.linspace(0.0, s[-1], max(2, int(math.ceil(s[-1] * 4)) + 1)) if s[-1] > 0 else np.zeros(1)
    pts = np.stack([np.interp(dense, s, pts[:, 0]), np.interp(dense, s, pts[:, 1])], axis=1)
    return _normalise(_splat(pts, size), "motion_trajectory_kernel")


def disk_kernel(radius: float, size: int | None = None) -> np.ndarray:
    """Defocus blur: a uniform disk of `radius` px, pixel coverage from 8x8 supersampling. Sums to 1.

    Shape: () -> (size, size) float32.
    """
    radius = _check_positive("radius", radius, allow_zero=True)
    size = auto_size(radius) if size is None else _check_size(size)
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    xx, yy = _grid(size)
    cov = np.zeros((size, size))
    for dy in sub:
        for dx in sub:
            cov += ((xx + dx) ** 2 + (yy + dy) ** 2) <= radius ** 2
    if cov.sum() == 0:  # radius below a sub-sample: the identity
        cov[size // 2, size // 2] = 1
    return _normalise(cov, "disk_kernel")


def sinc_kernel(size: int, omega: float) -> np.ndarray:
    """2-D circular low-pass (jinc) with cutoff `omega` radians/pixel in (0, pi]; rings. Sums to 1.

    Shape: () -> (size, size) float32.
    """
    from scipy.special import j1

    omega = _check_positive("omega", omega)
    if omega > math.pi + 1e-9:
        raise ValueError(f"sinc cutoff omega must be in (0, pi] radians/pixel, got {omega}")
    xx, yy = _grid(_check_size(size))
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = omega * j1(omega * r) / (2 * math.pi * r)
    k[r == 0] = omega ** 2 / (4 * math.pi)  # the limit at r = 0
    return _normalise(k, "sinc_kernel")


def _bank_files(folder: Path) -> list[Path]:
    """The kernel files of a bank folder, sorted by name, with clear errors for a missing or empty folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"kernel bank folder {str(folder)!r} does not exist; give a folder of .npy/.png "
                                "kernels (e.g. estimated with KernelGAN)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".npy", ".png") and p.is_file())
    if not files:
        raise ValueError(f"kernel bank folder {str(folder)!r} holds no .npy or .png kernels")
    return files


def _read_kernel(path: Path) -> np.ndarray:
    """One kernel file (.npy 2-D array or .png gray/colour image, averaged over channels), normalised to sum 1."""
    if path.suffix.lower() == ".npy":
        k = np.load(path, allow_pickle=False)
    else:
        import cv2

        k = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if k is None:
            raise ValueError(f"kernel file {str(path)!r} could not be decoded")
        if k.ndim == 3:
            k = k[:, :, :3].mean(axis=2)
    k = np.asarray(k, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] % 2 == 0:
        raise ValueError(f"kernel file {str(path)!r}: expected an odd square 2-D kernel, got shape {k.shape}")
    return _normalise(k, f"kernel file {str(path)!r}")


@lru_cache(maxsize=16)
def _load_bank_cached(folder: str, stamp: tuple[tuple[str, float], ...]) -> tuple[np.ndarray, ...]:
    """Kernels of a folder, cached by its file names and modification times."""
    out = tuple(_read_kernel(Path(folder) / name) for name, _ in stamp)
    for k in out:
        k.setflags(write=False)
    return out


BUILTIN_BANK = "builtin"  # the bank name that means `builtin_kernel_bank()` rather than a folder


@lru_cache(maxsize=4)
def builtin_kernel_bank(n: int = 32, size: int = 15, seed: int = 0) -> tuple[np.ndarray, ...]:
    """`n` kernels drawn from `seed`, shaped like the x2 kernels KernelGAN estimates from real photos (slightly
    anisotropic, rotated, some with heavier tails or a short shake): half anisotropic Gaussians (sigmas 0.6-2.0 px),
    a quarter generalized Gaussians (beta 0.5-2), a quarter short camera-shake trajectories (2-5 px). Synthetic,
    not estimated: a stand-in for a real bank when none is at hand (realsr with kernel_bank='builtin').

    Shape: () -> n x (size, size) float32, each summing to 1 (read-only).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sx, sy = rng.uniform(0.6, 2.0, 2)
        angle = float(rng.uniform(0, 180))
        if i % 4 in (0, 1):
            k = gaussian_kernel(size, sx, sy, angle)
        elif i % 4 == 2:
            k = generalized_gaussian_kernel(size, sx, sy, angle, float(rng.uniform(0.5, 2.0)))
        else:
            k = motion_trajectory_kernel(float(rng.uniform(2.0, 5.0)), int(rng.integers(1 << 31)), 0.3, angle, size)
        k.setflags(write=False)
        out.append(k)
    return tuple(out)


def load_kernel_bank(folder: str | os.PathLike) -> tuple[np.ndarray, ...]:
    """All kernels of a folder of `.npy` / `.png` files (sorted by name), each normalised to sum 1; the name
    'builtin' gives `builtin_kernel_bank()`.

    Missing folder -> FileNotFoundError; no kernel files -> ValueError. Cached until a file changes.
    """
    if str(folder) == BUILTIN_BANK:
        return builtin_kernel_bank()
    folder = user_path(folder).resolve()
    stamp = tuple((p.name, p.stat().st_mtime) for p in _bank_files(folder))
    return _load_bank_cached(str(folder), stamp)


_BUILDERS: dict[str, Any] = {
    "gaussian": lambda s: gaussian_kernel(s["size"], s["sigma_x"], s.get("sigma_y"), s.get("angle", 0.0)),
    "generalized": lambda s: generalized_gaussian_kernel(s["size"], s["sigma_x"], s["sigma_y"], s["angle"], s["beta"]),
    "plateau": lambda s: plateau_kernel(s["size"], s["sigma_x"], s["sigma_y"], s["angle"], s["beta"]),
    "motion_line": lambda s: motion_line_kernel(s["length"], s["angle"], s.get("size")),
    "motion_trajectory": lambda s: motion_trajectory_kernel(s["length"], s["seed"], s.get("jitter", 0.3),
                                                            s.get("angle", 0.0), s.get("size")),
    "disk": lambda s: disk_kernel(s["radius"], s.get("size")),
    "sinc": lambda s: sinc_kernel(s["size"], s["omega"]),
    "bank": lambda s: load_kernel_bank(s["path"])[int(s["index"])],
}


def make_kernel(spec: dict[str, Any]) -> np.ndarray:
    """Build a kernel from a plain dict such as {'type': 'gaussian', 'size': 21, 'sigma_x': 2.0} (see module doc).

    Shape: () -> (size, size) float32, summing to 1.
    """
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind not in _BUILDERS:
        raise KeyError(f"unknown kernel type {kind!r}; known: {list(_BUILDERS)}")
    try:
        return _BUILDERS[kind](spec)
    except KeyError as e:
        raise KeyError(f"kernel spec {spec!r} misses the key {e.args[0]!r}") from None


def filter2d(x: torch.Tensor, kernel: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convolve every channel with `kernel` (true convolution: the kernel is flipped), reflect padding.

    `kernel` is one (k, k) kernel for the whole batch or (B, k, k), one per image. Where the image is smaller than
    the kernel radius (reflection impossible) the border is replicated instead.
    Shape: (B, C, H, W) -> (B, C, H, W); range and dtype kept (float).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"filter2d takes a float tensor (B, C, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    k = kernel if isinstance(kernel, torch.Tensor) else torch.from_numpy(np.array(kernel, dtype=np.float32))
    k = k.to(device=x.device, dtype=x.dtype)
    if k.ndim == 2:
        k = k[None]
    b, c, h, w = x.shape
    if k.ndim != 3 or k.shape[-1] != k.shape[-2] or k.shape[-1] % 2 == 0 or k.shape[0] not in (1, b):
        raise ValueError(f"filter2d: kernel must be (k, k) or (B={b}, k, k) with odd k, got {tuple(k.shape)}")
    p = k.shape[-1] // 2
    if p == 0:
        return x * k.view(-1, 1, 1, 1)
    mode = "reflect" if p < min(h, w) else "replicate"
    weight = k.flip(-1, -2).repeat_interleave(c, dim=0)[:, None]  # (B*C or C, 1, k, k)
    if k.shape[0] == 1:
        return F.conv2d(F.pad(x, (p, p, p, p), mode=mode), weight, groups=c)
    y = F.conv2d(F.pad(x.reshape(1, b * c, h, w), (p, p, p, p), mode=mode), weight, groups=b * c)
    return y.view(b, c, h, w)
