"""MATLAB-compatible bicubic resizing: `imresize` for arrays (bit-exact on uint8) and `imresize_tensor` for tensors.

Benchmark low-resolution images are made by MATLAB's `imresize(img, 1/s, 'bicubic')`; reproducing it exactly
keeps our PSNR numbers comparable with papers. What MATLAB does, and we copy:
- Keys cubic kernel with a = -0.5 (Keys 1981, https://doi.org/10.1109/TASSP.1981.1163711);
- when shrinking, the kernel is stretched by 1/scale (antialiasing), so it is 4/scale pixels wide;
- output pixel x (1-based) samples input position u = x / scale + 0.5 * (1 - 1/scale);
- taps beyond the border are clamped to the edge pixel ("replicate"; mirroring instead, as some Python ports
  do, changes the border rows and columns);
- weights are normalised to sum to 1 for every output pixel, computed in double precision;
- separable: the dimension with the smaller scale goes first (height first on ties);
- integer images are rounded (half away from zero) and saturated after each 1-D pass.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

_KERNEL_WIDTH = 4.0  # support of the bicubic kernel, in input pixels at scale 1


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel, a = -0.5, in MATLAB's operation order."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * ((absx > 1) & (absx <= 2))
    return near + far


@lru_cache(maxsize=256)
def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the input indices (0-based) and normalised weights, each (out_len, taps)."""
    width = _KERNEL_WIDTH
    if scale < 1:  # antialiasing: a stretched, lowered kernel
        width = _KERNEL_WIDTH / scale

        def kernel(t: np.ndarray) -> np.ndarray:
            return scale * _cubic(scale * t)
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based positions
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    idx = np.clip(idx.astype(np.int64) - 1, 0, in_len - 1)  # replicate the edge pixels, as MATLAB
    keep = np.any(w != 0, axis=0)  # drop tap columns that are zero for every output pixel
    w, idx = w[:, keep], idx[:, keep]
    w.setflags(write=False)
    idx.setflags(write=False)
    return idx, w


@lru_cache(maxsize=256)
def _matrix(in_len: int, out_len: int, scale: float) -> torch.Tensor:
    """The 1-D resize as a dense (out_len, in_len) float64 matrix: taps hitting the same pixel are summed."""
    idx, w = _contributions(in_len, out_len, scale)
    m = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(m, (np.repeat(np.arange(out_len), idx.shape[1]), idx.ravel()), w.ravel())
    with torch.inference_mode(False):
        return torch.from_numpy(m)


@lru_cache(maxsize=256)
def _matrix_on(in_len: int, out_len: int, scale: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`_matrix` already moved to `device` and cast to `dtype`, so a DataLoader pays for it once."""
    with torch.inference_mode(False):  # a cached inference tensor could not be saved for a later backward
        return _matrix(in_len, out_len, scale).to(device=device, dtype=dtype)


def _plan(in_hw: tuple[int, int], scale: float | None,
          size: tuple[int, int] | None) -> tuple[list[int], list[float], list[int]]:
    """Output size, per-dimension scale and pass order (smallest scale first, height on ties), as MATLAB."""
    if (scale is None) == (size is None):
        raise ValueError(f"give exactly one of scale or size; got scale={scale!r}, size={size!r}")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        scale = float(scale)
        # ceil(in * scale) as MATLAB; the tolerance stops float noise (30 * 0.1 = 3.0000000000000004) adding a row
        out = [max(1, math.ceil(n * scale - 1e-9)) for n in in_hw]
        scales = [scale, scale]
    else:
        if (not isinstance(size, (tuple, list)) or len(size) != 2
                or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in size)):
            raise ValueError(f"size must be (height, width) with positive integers, got {size!r}")
        out = [int(n) for n in size]
        scales = [o / n for o, n in zip(out, in_hw)]
    order = [0, 1] if scales[0] <= scales[1] else [1, 0]
    return out, scales, order


def imresize(img: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Bicubic resize exactly as MATLAB `imresize(img, scale)` / `imresize(img, [h w])`, antialiased when shrinking.

    `img` is HW or HWC; uint8/uint16 give the same type (rounded after each pass, bit-exact with MATLAB),
    floats give the same float dtype, unrounded. Output size is ceil(in * scale), or `size` = (height, width).
    """
    if not isinstance(img, np.ndarray):
        raise ValueError(f"imresize takes a numpy array (HW or HWC), got {type(img).__name__}; "
                         "use imresize_tensor for tensors")
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize takes an HW or HWC array, got ndim={img.ndim} (shape {img.shape})")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"imresize got an empty image of shape {img.shape}")
    if img.dtype in (np.uint8, np.uint16):
        hi = float(np.iinfo(img.dtype).max)
    elif np.issubdtype(img.dtype, np.floating):
        hi = None
    else:
        raise ValueError(f"imresize supports uint8, uint16 and float arrays, got dtype {img.dtype}")
    out_hw, scales, order = _plan(img.shape[:2], scale, size)
    x = img.astype(np.float64)
    for dim in order:
        idx, w = _contributions(x.shape[dim], out_hw[dim], scales[dim])
        a = np.moveaxis(x, dim, 0)
        wshape = (w.shape[0],) + (1,) * (a.ndim - 1)
        acc = np.zeros((w.shape[0],) + a.shape[1:], dtype=np.float64)
        for j in range(w.shape[1]):  # one tap at a time, in order, as MATLAB's mex accumulates
            acc += w[:, j].reshape(wshape) * a[idx[:, j]]
        if hi is not None:  # MATLAB stores each pass in the input's integer class: round half away, saturate
            acc = np.clip(np.floor(acc + 0.5), 0.0, hi)
        x = np.moveaxis(acc, 0, dim)
    return np.ascontiguousarray(x.astype(img.dtype))


def imresize_tensor(x: torch.Tensor, scale: float | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """MATLAB bicubic resize of a float batch as two matmuls (differentiable, unrounded); matches `imresize` on floats.

    Shape: (B, C, H, W) -> (B, C, ceil(H * scale), ceil(W * scale)) or (B, C, *size).
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"imresize_tensor takes a torch.Tensor (B, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"imresize_tensor takes (B, C, H, W), got ndim={x.ndim} (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise ValueError(f"imresize_tensor takes a float tensor, got dtype {x.dtype}; convert with .float() / 255")
    in_hw = (int(x.shape[-2]), int(x.shape[-1]))
    out_hw, scales, order = _plan(in_hw, scale, size)
    # half precision matmuls would lose the ~1e-5 agreement with MATLAB; compute in float32 at least
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    for dim in order:
        m = _matrix_on(in_hw[dim], out_hw[dim], scales[dim], work.dtype, work.device)
        work = torch.matmul(m, work) if dim == 0 else torch.matmul(work, m.t())
    return work.to(x.dtype)
