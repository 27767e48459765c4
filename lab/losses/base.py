"""The loss base class and the simple losses: pixel (L1, MSE, Charbonnier), edge (Sobel / Laplacian) and frequency
(FFT amplitude or complex) differences."""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

REDUCTIONS = ("mean", "sum", "none")


def check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    """Both tensors, same shape (B, C, H, W); ValueError saying what differs."""
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"loss inputs must be tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f"loss inputs must be (B, C, H, W) of equal shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")


def check_choice(name: str, value: Any, accepted: Sequence[Any]) -> Any:
    """`value` if it is one of `accepted`, else ValueError listing them."""
    if value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {', '.join(map(repr, accepted))}")
    return value


class ImageLoss(nn.Module):
    """Base: subclasses implement `per_image` -> (B,); `forward` reduces it by `self.reduction`."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss reduced over the batch ('mean': scalar, 'sum': scalar, 'none': (B,)).

        Shape: (B, C, H, W), (B, C, H, W) -> () or (B,).
        """
        check_pair(pred, target)
        if pred.dtype != torch.float64:  # half/bfloat16 predictions are scored in float32
            pred, target = pred.float(), target.float()
        v = self.per_image(pred, target)
        return v.mean() if self.reduction == "mean" else v.sum() if self.reduction == "sum" else v


def image_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over every axis but the batch. Shape: (B, ...) -> (B,)."""
    return x.flatten(1).mean(1)


class L1Loss(ImageLoss):
    """Mean absolute error."""

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean |pred - target| of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return image_mean((pred - target).abs())


class MSELoss(ImageLoss):
    """Mean squared error."""

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean (pred - target)^2 of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return image_mean((pred - target) ** 2)


class CharbonnierLoss(ImageLoss):
    """Charbonnier (smooth L1): mean sqrt((pred - target)^2 + eps^2); equals eps for identical inputs.

    LapSRN (Lai et al., CVPR 2017, https://arxiv.org/abs/1704.03915) uses eps = 1e-3.
    """

    def __init__(self, eps: float = 1e-3, reduction: str = "mean"):
        super().__init__(reduction)
        if not eps > 0:
            raise ValueError(f"Charbonnier eps must be > 0, got {eps}")
        self.eps = float(eps)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean Charbonnier penalty of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return image_mean(torch.sqrt((pred - target) ** 2 + self.eps**2))


# ---------------------------------------------------------------- edges and frequencies

EDGE_OPS = ("sobel", "laplacian")
SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


class EdgeLoss(ImageLoss):
    """L1 between edge maps: 'sobel' (the two unnormalised 3x3 Sobel responses, x and y) or 'laplacian'
    (the 4-neighbour 3x3 Laplacian), per channel, 'valid' filtering (no padding). The loss is the mean of
    |E(pred) - E(target)| over all response maps, channels and pixels.
    """

    def __init__(self, op: str = "sobel", reduction: str = "mean"):
        super().__init__(reduction)
        self.op = check_choice("edge op", op, EDGE_OPS)
        sx = torch.tensor(SOBEL_X)
        k = torch.stack([sx, sx.t()]) if op == "sobel" else torch.tensor(LAPLACIAN)[None]
        self.register_buffer("kernel", k[:, None], persistent=False)

    def edges(self, x: torch.Tensor) -> torch.Tensor:
        """Edge responses of each channel.

        Shape: (B, C, H, W) -> (B, C * K, H - 2, W - 2), K = 2 (Sobel x, y) or 1 (Laplacian).
        """
        b, c, h, w = x.shape
        return F.conv2d(x.reshape(b * c, 1, h, w), self.kernel.to(x)).reshape(b, -1, h - 2, w - 2)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean |edges(pred) - edges(target)| of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        if min(pred.shape[-2:]) < 3:
            raise ValueError(f"edge loss needs images of at least 3x3, got {tuple(pred.shape[-2:])}")
        return image_mean((self.edges(pred) - self.edges(target)).abs())


FFT_MODES = ("amplitude", "complex")


class FFTLoss(ImageLoss):
    """Frequency loss on the orthonormal 2-D real FFT (torch.fft.rfft2, norm='ortho') of each channel.

    'amplitude': mean | |F(pred)| - |F(target)| | (phase ignored); 'complex': mean of |Re diff| and |Im diff|
    over all coefficients (the L1 of the stacked real/imaginary parts, as MIMO-UNet's frequency loss).
    """

    def __init__(self, mode: str = "amplitude", reduction: str = "mean"):
        super().__init__(reduction)
        self.mode = check_choice("fft mode", mode, FFT_MODES)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean spectral L1 of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        fp, ft = torch.fft.rfft2(pred, norm="ortho"), torch.fft.rfft2(target, norm="ortho")
        if self.mode == "amplitude":
            return image_mean((fp.abs() - ft.abs()).abs())
        return image_mean(torch.view_as_real(fp - ft).abs())
