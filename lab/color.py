"""Colour conversions: RGB <-> YCbCr (ITU-R BT.601, as MATLAB's `rgb2ycbcr`), sRGB and BT.709 transfer curves.

Every function takes a torch tensor (channels at dim -3: `(B, 3, H, W)` float in [0, 1]) or a numpy array
(channels last: HWC, uint8 in 0..255 or float in [0, 1]); the output has the same container.
YCbCr follows MATLAB (studio swing): for R, G, B in 0..255, Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255,
so in [0, 1] units Y lies in [16/255, 235/255] and Cb, Cr in [16/255, 240/255].
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Image = TypeVar("Image", torch.Tensor, np.ndarray)

# ITU-R BT.601 in MATLAB's form: rows give Y, Cb, Cr from RGB in [0, 1], in [0, 1] units.
# https://www.mathworks.com/help/images/ref/rgb2ycbcr.html
_RGB2YCBCR = np.array([[65.481, 128.553, 24.966],
                       [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]], dtype=np.float64) / 255.0
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64) / 255.0
_YCBCR2RGB = np.linalg.inv(_RGB2YCBCR)  # MATLAB's ycbcr2rgb inverts the same matrix

# IEC 61966-2-1 (sRGB) piecewise curve.
_SRGB_THRESH_ENC, _SRGB_THRESH_LIN = 0.04045, 0.0031308
# ITU-R BT.709 / BT.2020 OETF; alpha and beta at full precision so both pieces meet
# (BT.709 rounds them to 1.099 and 0.018, which leaves a small jump at the knee).
_BT709_ALPHA, _BT709_BETA = 1.09929682680944, 0.018053968510807


def _channel_dim(x: np.ndarray | torch.Tensor, name: str) -> int:
    """Channel axis (-3 for tensors, -1 for arrays), checking there are 3 channels."""
    if isinstance(x, torch.Tensor):
        if x.ndim < 3 or x.shape[-3] != 3:
            raise ValueError(f"{name}: expected a tensor (B, 3, H, W) or (3, H, W), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{name}: expected a float tensor in [0, 1], got dtype {x.dtype}")
        return -3
    if isinstance(x, np.ndarray):
        if x.ndim < 2 or x.shape[-1] != 3:
            raise ValueError(f"{name}: expected an HWC array with 3 channels, got shape {x.shape}")
        return -1
    raise ValueError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def _apply_matrix(x: Image, m: np.ndarray) -> Image:
    """Mix the channels of `x` (dim -3 for tensors, last for arrays) with the matrix `m`."""
    if isinstance(x, torch.Tensor):
        mt = torch.as_tensor(m, dtype=x.dtype, device=x.device)
        return torch.einsum("ij,...jhw->...ihw", mt, x)
    return np.einsum("ij,...j->...i", m, x)


def _offset(x: torch.Tensor) -> torch.Tensor:
    """The YCbCr offset (16, 128, 128)/255 shaped to broadcast against the tensor `x`."""
    return torch.as_tensor(_YCBCR_OFFSET, dtype=x.dtype, device=x.device).view(3, 1, 1)


def _to_float(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """uint8 arrays -> float64 in [0, 1] (and a flag to convert back); float arrays unchanged."""
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0, True
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"expected a uint8 or float array, got dtype {x.dtype}")
    return x, False


def _round_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with MATLAB's rounding (half away from zero) and saturation."""
    return np.clip(np.floor(x * 255.0 + 0.5), 0, 255).astype(np.uint8)


def rgb_to_ycbcr(x: Image) -> Image:
    """RGB -> YCbCr, BT.601 studio swing as MATLAB `rgb2ycbcr` (uint8 arrays give rounded uint8, as MATLAB).

    Shape: (B, 3, H, W) -> (B, 3, H, W) for tensors; (H, W, 3) -> (H, W, 3) for arrays.
    """
    _channel_dim(x, "rgb_to_ycbcr")
    if isinstance(x, torch.Tensor):
        return _apply_matrix(x, _RGB2YCBCR) + _offset(x)
    xf, was_uint8 = _to_float(x)
    out = _apply_matrix(xf, _RGB2YCBCR) + _YCBCR_OFFSET
    return _round_uint8(out) if was_uint8 else out.astype(xf.dtype, copy=False)


def ycbcr_to_rgb(x: Image) -> Image:
    """YCbCr -> RGB, the inverse of `rgb_to_ycbcr` (MATLAB `ycbcr2rgb`); floats are not clipped.

    Shape: (B, 3, H, W) -> (B, 3, H, W) for tensors; (H, W, 3) -> (H, W, 3) for arrays.
    """
    _channel_dim(x, "ycbcr_to_rgb")
    if isinstance(x, torch.Tensor):
        return _apply_matrix(x - _offset(x), _YCBCR2RGB)
    xf, was_uint8 = _to_float(x)
    out = _apply_matrix(xf - _YCBCR_OFFSET, _YCBCR2RGB)
    return _round_uint8(out) if was_uint8 else out.astype(xf.dtype, copy=False)


def rgb_to_y(x: Image) -> Image:
    """BT.601 luma Y as MATLAB `rgb2ycbcr(...)(:, :, 1)`, never rounded: [0, 1] units, or 0..255 for uint8 arrays.

    Shape: (B, 3, H, W) -> (B, 1, H, W) for tensors; (H, W, 3) -> (H, W) float64 (or the float input's dtype).
    """
    dim = _channel_dim(x, "rgb_to_y")
    w = _RGB2YCBCR[0]
    if isinstance(x, torch.Tensor):
        r, g, b = x.unbind(dim)
        return (_YCBCR_OFFSET[0] + w[0] * r + w[1] * g + w[2] * b).unsqueeze(dim)
    if x.dtype == np.uint8:  # the benchmark convention: Y of im2double(img), times 255, kept in float
        xf = x.astype(np.float64)
        return 16.0 + xf[..., 0] * w[0] + xf[..., 1] * w[1] + xf[..., 2] * w[2]
    xf, _ = _to_float(x)
    return (_YCBCR_OFFSET[0] + xf[..., 0] * w[0] + xf[..., 1] * w[1] + xf[..., 2] * w[2]).astype(xf.dtype, copy=False)


def _xp_where(cond: Image, a: Image, b: Image) -> Image:
    """`where` for tensors or arrays."""
    return torch.where(cond, a, b) if isinstance(cond, torch.Tensor) else np.where(cond, a, b)


def _xp_clamp_min(x: Image, lo: float) -> Image:
    """Elementwise max(x, lo) for tensors or arrays."""
    return x.clamp(min=lo) if isinstance(x, torch.Tensor) else np.maximum(x, lo)


def _check_float(x: Image, name: str) -> None:
    """Raise ValueError unless `x` is a float tensor or array."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise ValueError(f"{name}: expected a float tensor, got dtype {x.dtype}")
    elif isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{name}: expected a float array in [0, 1], got dtype {x.dtype}; divide uint8 by 255")
    else:
        raise ValueError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


# The power branches see inputs clamped to their own domain, so torch.where never back-propagates a NaN
# from the branch it did not pick (0 * nan = nan).

def srgb_to_linear(x: Image) -> Image:
    """sRGB-encoded values -> linear light (IEC 61966-2-1 piecewise curve), elementwise.

    Shape: any -> same.
    """
    _check_float(x, "srgb_to_linear")
    t = _SRGB_THRESH_ENC
    return _xp_where(x <= t, x / 12.92, ((_xp_clamp_min(x, t) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: Image) -> Image:
    """Linear light -> sRGB-encoded values (IEC 61966-2-1 piecewise curve), elementwise.

    Shape: any -> same.
    """
    _check_float(x, "linear_to_srgb")
    t = _SRGB_THRESH_LIN
    return _xp_where(x <= t, x * 12.92, 1.055 * _xp_clamp_min(x, t) ** (1 / 2.4) - 0.055)


def linear_to_bt709(x: Image) -> Image:
    """Linear light -> BT.709 signal (the camera OETF: 4.5 L near black, 1.099 L^0.45 - 0.099 above), elementwise.

    Shape: any -> same.
    """
    _check_float(x, "linear_to_bt709")
    a, b = _BT709_ALPHA, _BT709_BETA
    return _xp_where(x < b, x * 4.5, a * _xp_clamp_min(x, b) ** 0.45 - (a - 1))


def bt709_to_linear(x: Image) -> Image:
    """BT.709 signal -> linear light (the inverse of `linear_to_bt709`), elementwise.

    Shape: any -> same.
    """
    _check_float(x, "bt709_to_linear")
    a, b = _BT709_ALPHA, _BT709_BETA
    t = 4.5 * b
    return _xp_where(x < t, x / 4.5, ((_xp_clamp_min(x, t) + (a - 1)) / a) ** (1 / 0.45))
