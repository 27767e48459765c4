"""Output sizes for inference on real pictures: parse 'WIDTHxHEIGHT' and fit an image to it keeping its aspect.

A super-resolved picture rarely has the size a screen wants (480x270 x2 is 960x540, a 1080p screen wants
1920x1080), so `fit` resizes it to the requested size with one stated resampling, MATLAB-compatible bicubic
(`lab.resize.imresize_tensor`, antialiased when shrinking), keeping the aspect ratio:
- 'pad': scale to fit inside the size, then pad the rest symmetrically (black bars, letterbox);
- 'crop': scale to cover the size, then crop the overflow symmetrically (centre crop);
- 'stretch': scale each axis on its own (the aspect changes; no bars, nothing cut).
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from lab.resize import imresize_tensor

FIT_MODES = ("pad", "crop", "stretch")
RESAMPLING = "bicubic (MATLAB imresize, antialiased when shrinking)"
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(text: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """(width, height) of 'WIDTHxHEIGHT' (e.g. '1920x1080'); None or '' for the model's own scale."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, (tuple, list)) and len(text) == 2:
        w, h = (int(v) for v in text)
    else:
        m = _SIZE_RE.match(str(text))
        if not m:
            raise ValueError(f"size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1920x1080")
        w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1:
        raise ValueError(f"size {text!r}: width and height must be >= 1 px")
    return w, h


def check_fit_mode(mode: str) -> str:
    """`mode` if it is one of FIT_MODES, else ValueError listing them."""
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {mode!r}; accepted: {', '.join(FIT_MODES)}")
    return mode


def fit_factors(in_hw: tuple[int, int], size: tuple[int, int], mode: str) -> tuple[float, float]:
    """The (vertical, horizontal) resize factors that take an `in_hw` image to `size` (width, height) by `mode`."""
    h, w = in_hw
    tw, th = size
    if check_fit_mode(mode) == "stretch":
        return th / h, tw / w
    f = min(th / h, tw / w) if mode == "pad" else max(th / h, tw / w)
    return f, f


def check_not_smaller(in_hw: tuple[int, int], size: tuple[int, int], mode: str) -> None:
    """ValueError when fitting an `in_hw` input to `size` would shrink it: that is no super-resolution."""
    fy, fx = fit_factors(in_hw, size, mode)
    if min(fy, fx) < 1:
        raise ValueError(f"size {size[0]}x{size[1]} is smaller than the input {in_hw[1]}x{in_hw[0]} (fit '{mode}' "
                         f"would shrink it by {min(fy, fx):.2f}); give a size at least the input's, or no --size "
                         "for the model's own scale")


def fit(x: torch.Tensor, size: tuple[int, int], mode: str = "pad") -> torch.Tensor:
    """Resize a batch to `size` = (width, height) by `mode` (module doc), bicubic; pads with 0 (black).

    Shape: (B, C, H, W) -> (B, C, height, width), float.
    """
    tw, th = size
    fy, fx = fit_factors(tuple(x.shape[-2:]), size, mode)
    if mode == "stretch":
        new = (th, tw)
    else:
        new = (max(1, round(x.shape[-2] * fy)), max(1, round(x.shape[-1] * fx)))
        if mode == "pad":
            new = (min(new[0], th), min(new[1], tw))
        else:
            new = (max(new[0], th), max(new[1], tw))
    y = x if tuple(x.shape[-2:]) == new else imresize_tensor(x.float(), size=new)
    dh, dw = th - new[0], tw - new[1]
    if dh > 0 or dw > 0:
        y = F.pad(y, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    if dh < 0 or dw < 0:
        top, left = (-dh) // 2 if dh < 0 else 0, (-dw) // 2 if dw < 0 else 0
        y = y[..., top:top + th, left:left + tw]
    return y


def describe(size: tuple[int, int] | None, mode: str, scale: int) -> str:
    """One line saying what the output size is and how it is reached."""
    if size is None:
        return f"the model's scale (x{scale}), no resampling"
    return f"{size[0]}x{size[1]} by '{mode}' after the model's x{scale}, resampled {RESAMPLING}"

