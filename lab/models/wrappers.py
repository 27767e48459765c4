"""Wrappers around a registered network, themselves registered so a checkpoint rebuilds them from the file alone.

- `linear_light`: the inner network sees and predicts linear light: its sRGB input is decoded to linear light
  before it and its output encoded back to sRGB after it (IEC 61966-2-1 curves, lab.color). The loss, the
  metrics and the saved images therefore stay in sRGB, which is how users train "predicting in linear light,
  loss in sRGB".
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lab.color import linear_to_srgb, srgb_to_linear
from lab.models.registry import create, register_model


class LinearLight(nn.Module):
    """sRGB -> linear light -> `inner` -> sRGB. Shape: (B, C, H, W) in [0, 1] -> the inner network's output."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        for k in ("scale", "in_ch", "out_ch"):
            if hasattr(inner, k):
                setattr(self, k, getattr(inner, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(srgb_to_linear(x.clamp(0, 1)))
        return linear_to_srgb(y)  # defined for any real value, so out-of-range outputs keep their gradient


@register_model
def linear_light(model: str = "edsr_baseline", model_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> LinearLight:
    """Registered model `model` (built with `model_kwargs` and `kwargs`, e.g. scale) trained in linear light."""
    if model == "linear_light":
        raise ValueError("linear_light cannot wrap itself; name the inner model, e.g. model='edsr_baseline'")
    return LinearLight(create(model, **{**(model_kwargs or {}), **kwargs}))
