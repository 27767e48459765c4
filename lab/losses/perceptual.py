"""The perceptual (VGG feature) loss of SRGAN / ESRGAN, with VGG19 built locally and ImageNet weights read from a
local file only (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from lab.losses.base import ImageLoss, check_choice, image_mean

VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet weights, as its cache names them
VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CRITERIA = ("l1", "mse")


def vgg19_layer_names() -> list[str]:
    """Names of torchvision vgg19.features layers in order: conv1_1, relu1_1, conv1_2, ..., relu5_4, pool5."""
    names, block, i = [], 1, 1
    for v in VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, i = block + 1, 1
        else:
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
            i += 1
    return names


def vgg19_features(n_layers: int) -> nn.Sequential:
    """The first `n_layers` modules of VGG19's feature extractor, indexed like torchvision's `vgg19().features`.

    The weights are left uninitialised (built on the meta device, so no global RNG is drawn): load or init them.
    """
    layers: list[nn.Module] = []
    c = 3
    with torch.device("meta"):
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
    return nn.Sequential(*layers[:n_layers]).to_empty(device="cpu")


def default_vgg19_path() -> Path:
    """Where torchvision caches the VGG19 ImageNet weights: torch.hub.get_dir(), its checkpoints folder, VGG19_FILE."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


class VGGLoss(ImageLoss):
    """Perceptual loss (Johnson et al. 2016; SRGAN/ESRGAN): distance between VGG19 features of pred and target.

    `layers`: names from `vgg19_layer_names()` (default conv5_4, before the ReLU, as ESRGAN), or a dict
    name -> weight; `layer_weights` otherwise (default 1 each). Inputs in [0, 1] are normalised with the ImageNet
    mean/std (1-channel inputs are repeated to RGB). `criterion`: 'l1' or 'mse' per layer, summed with weights.
    `weights='imagenet'` loads torchvision's VGG19 file from `weights_path` or the torch hub cache; it is never
    downloaded (FileNotFoundError says where to put it). `weights=None`: random init (Kaiming, seeded by `seed`),
    for tests. The network is frozen and follows the input's device.
    """

    def __init__(self, layers: Sequence[str] | dict[str, float] = ("conv5_4",),
                 layer_weights: Sequence[float] | None = None, weights: str | None = "imagenet",
                 weights_path: str | None = None, criterion: str = "l1", seed: int = 0, reduction: str = "mean"):
        super().__init__(reduction)
        known = vgg19_layer_names()
        if isinstance(layers, dict):
            layers, layer_weights = list(layers), list(layers.values())
        layers = [layers] if isinstance(layers, str) else list(layers)
        bad = [n for n in layers if n not in known]
        if bad or not layers:
            raise ValueError(f"unknown VGG19 layer(s) {bad or layers}; accepted: {', '.join(known)}")
        layer_weights = [1.0] * len(layers) if layer_weights is None else [float(w) for w in layer_weights]
        if len(layer_weights) != len(layers):
            raise ValueError(f"layer_weights {layer_weights} must match layers {layers}")
        self.criterion = check_choice("criterion", criterion, CRITERIA)
        check_choice("weights", weights, ("imagenet", None))
        self.layers, self.layer_weights = layers, layer_weights
        self.index = {known.index(n): w for n, w in zip(layers, layer_weights)}
        self.features = vgg19_features(max(self.index) + 1)
        if weights == "imagenet" or weights_path is not None:
            self._load(Path(weights_path) if weights_path else default_vgg19_path())
        else:
            gen = torch.Generator().manual_seed(seed)
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                    nn.init.zeros_(m.bias)
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(
                f"VGG19 ImageNet weights not found at {str(path)!r}. The lab never downloads weights: copy "
                f"torchvision's {VGG19_FILE} (from {VGG19_URL}) to {str(default_vgg19_path())!r}, or pass "
                "weights_path='/path/to/vgg19.pth', or use weights=None (random init) for tests")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        n = len(self.features)
        own = {k[len("features."):]: v for k, v in sd.items()
               if k.startswith("features.") and int(k.split(".")[1]) < n}
        self.features.load_state_dict(own, strict=True)

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise ValueError(f"VGG loss needs 1 or 3 channels, got {x.shape[1]}")
        x, out = (x - self.mean) / self.std, []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.index:
                out.append(x)
        return out

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted sum over layers of the mean feature distance of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        if self.mean.device != pred.device:
            self.to(pred.device)
        with torch.no_grad():
            ft = self._feats(target)
        fp = self._feats(pred)
        dist = (lambda a, b: (a - b).abs()) if self.criterion == "l1" else (lambda a, b: (a - b) ** 2)
        return sum(w * image_mean(dist(a, b)) for w, a, b in zip(self.index.values(), fp, ft))
