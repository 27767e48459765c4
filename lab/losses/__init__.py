"""Training losses: pixel, structural (SSIM, MS-SSIM), perceptual (VGG), edge, frequency; weighted sums from a spec.

Every loss is an `nn.Module` called as `loss(pred, target)` on (B, C, H, W) float tensors in [0, 1] and returns a
scalar. Each also has `per_image(pred, target) -> (B,)` and a fastai-style `reduction` attribute ('mean', 'sum' or
'none'), so `learn.get_preds(with_loss=True)` and `plot_top_losses` get one value per image.

`parse_loss("l1 + 0.1*msssim(sigmas=[0.5, 1.5, 4.0]) + 2*edge")` builds a `CombinedLoss`; it is parsed with `ast`
(never `eval`): sums of `[number *] name[(keyword=literal, ...)]` terms, keyword values read by `ast.literal_eval`.
"""

from lab.losses.base import REDUCTIONS, CharbonnierLoss, EdgeLoss, FFTLoss, ImageLoss, L1Loss, MSELoss
from lab.losses.combine import LOSSES, CombinedLoss, TransferLoss, get_loss, list_losses, parse_loss
from lab.losses.perceptual import VGGLoss, default_vgg19_path, vgg19_features, vgg19_layer_names
from lab.losses.structural import (
                                   MSSSIM_WEIGHTS,
                                   ZHAO_SIGMAS,
                                   L1MSSSIMLoss,
                                   MSSSIMLoss,
                                   SSIMLoss,
                                   gaussian_window,
                                   ssim_maps,
)

__all__ = ["REDUCTIONS", "MSSSIM_WEIGHTS", "ZHAO_SIGMAS", "LOSSES", "ImageLoss", "L1Loss", "MSELoss",
           "CharbonnierLoss", "SSIMLoss", "MSSSIMLoss", "L1MSSSIMLoss", "VGGLoss", "EdgeLoss", "FFTLoss",
           "TransferLoss", "CombinedLoss", "get_loss", "list_losses", "parse_loss", "gaussian_window", "ssim_maps",
           "vgg19_features", "vgg19_layer_names", "default_vgg19_path"]
