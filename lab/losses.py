"""Training losses: pixel, structural (SSIM, MS-SSIM), perceptual (VGG), edge, frequency; weighted sums from a spec.

Every loss is an `nn.Module` called as `loss(pred, target)` on (B, C, H, W) float tensors in [0, 1] and returns a
scalar. Each also has `per_image(pred, target) -> (B,)` and a fastai-style `reduction` attribute ('mean', 'sum' or
'none'), so `learn.get_preds(with_loss=True)` and `plot_top_losses` get one value per image.

`parse_loss("l1 + 0.1*msssim(sigmas=[0.5, 1.5, 4.0]) + 2*edge")` builds a `CombinedLoss`; it is parsed with `ast`
(never `eval`): sums of `[number *] name[(keyword=literal, ...)]` terms, keyword values read by `ast.literal_eval`.
"""

from __future__ import annotations

import ast
import inspect
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

REDUCTIONS = ("mean", "sum", "none")
# Wang et al. 2003, "Multi-scale structural similarity for image quality assessment", Table/Eq. 7 exponents.
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# Zhao et al. 2017, "Loss Functions for Image Restoration with Neural Networks" (arXiv:1511.08861), Sec. 3.3.
ZHAO_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)
PADDINGS = ("valid", "reflect")
_FACTOR_MIN = 1e-6  # SSIM factors are clamped here before fractional powers (as pytorch_msssim's relu)


def _power(x: torch.Tensor, w: float) -> torch.Tensor:
    """x ** w; x clamped to >= 1e-6 first when w is fractional (a negative base would give NaN)."""
    return x**w if float(w).is_integer() else x.clamp(min=_FACTOR_MIN) ** w


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(f"loss inputs must be tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f"loss inputs must be (B, C, H, W) of equal shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")


def _choice(name: str, value: Any, accepted: Sequence[Any]) -> Any:
    if value not in accepted:
        raise ValueError(f"unknown {name} {value!r}; accepted: {', '.join(map(repr, accepted))}")
    return value


class ImageLoss(nn.Module):
    """Base: subclasses implement `per_image` -> (B,); `forward` reduces it by `self.reduction`."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _choice("reduction", reduction, REDUCTIONS)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss reduced over the batch ('mean': scalar, 'sum': scalar, 'none': (B,)).

        Shape: (B, C, H, W), (B, C, H, W) -> () or (B,).
        """
        _check_pair(pred, target)
        if pred.dtype != torch.float64:  # half/bfloat16 predictions are scored in float32
            pred, target = pred.float(), target.float()
        v = self.per_image(pred, target)
        return v.mean() if self.reduction == "mean" else v.sum() if self.reduction == "sum" else v


def _image_mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


class L1Loss(ImageLoss):
    """Mean absolute error."""

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean |pred - target| of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return _image_mean((pred - target).abs())


class MSELoss(ImageLoss):
    """Mean squared error."""

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean (pred - target)^2 of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return _image_mean((pred - target) ** 2)


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
        return _image_mean(torch.sqrt((pred - target) ** 2 + self.eps**2))


# ---------------------------------------------------------------- SSIM family


def gaussian_window(sigma: float, size: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian of `sigma`, `size` taps (default 2*ceil(3*sigma) + 1, i.e. 11 for sigma 1.5).

    Shape: () -> (size,).
    """
    if not sigma > 0:
        raise ValueError(f"Gaussian sigma must be > 0, got {sigma}")
    size = size or 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise ValueError(f"Gaussian window size must be odd and >= 1, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def _filter(x: torch.Tensor, g: torch.Tensor, padding: str) -> torch.Tensor:
    """Separable depthwise Gaussian filtering, 'valid' (no padding) or 'reflect' (same size)."""
    c, k = x.shape[1], g.numel()
    g = g.to(x)
    if padding == "reflect":
        x = F.pad(x, (k // 2,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _check_size(x: torch.Tensor, win: int, padding: str, what: str) -> None:
    h, w = x.shape[-2:]
    small = min(h, w) < win if padding == "valid" else min(h, w) <= win // 2
    if small:
        raise ValueError(
            f"{what}: image {h}x{w} is too small for a {win}x{win} Gaussian window with padding={padding!r}; "
            "use larger patches, padding='reflect', fewer scales (msssim(scales=3)) or the multi-sigma mode "
            "(msssim(sigmas=[0.5, 1.5, 4.0]))")


def ssim_maps(x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, padding: str = "valid",
              data_range: float = 1.0, k1: float = 0.01, k2: float = 0.03) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel luminance l and contrast-structure cs maps of SSIM (Wang et al. 2004) with 1-D window `g`.

    SSIM = l * cs; C1 = (k1 L)^2, C2 = (k2 L)^2, statistics from the separable Gaussian window.
    Shape: (B, C, H, W), (B, C, H, W) -> two (B, C, H', W') maps (H' = H - k + 1 for 'valid', H for 'reflect').
    """
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mx, my = _filter(x, g, padding), _filter(y, g, padding)
    sxx = _filter(x * x, g, padding) - mx * mx
    syy = _filter(y * y, g, padding) - my * my
    sxy = _filter(x * y, g, padding) - mx * my
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return lum, cs


def _center_crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top:top + h, left:left + w]


class SSIMLoss(ImageLoss):
    """1 - SSIM (Wang et al. 2004): Gaussian window (11x11, sigma 1.5), K1 0.01, K2 0.03, data range 1.

    SSIM is computed per channel on the [0, 1] values and averaged over channels and pixels; 'valid' filtering by
    default (the benchmark convention), 'reflect' keeps every pixel.
    """

    def __init__(self, sigma: float = 1.5, win_size: int = 11, padding: str = "valid", reduction: str = "mean"):
        super().__init__(reduction)
        self.padding = _choice("padding", padding, PADDINGS)
        self.register_buffer("window", gaussian_window(sigma, win_size), persistent=False)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1 - mean SSIM of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        _check_size(pred, self.window.numel(), self.padding, "ssim")
        lum, cs = ssim_maps(pred, target, self.window, self.padding)
        return 1 - _image_mean(lum * cs)


class MSSSIMLoss(ImageLoss):
    """1 - MS-SSIM, in one of two modes (both per channel, averaged over channels).

    Standard (`sigmas=None`), Wang, Simoncelli & Bovik 2003 ("Multi-scale structural similarity for image quality
    assessment"): `scales` levels; level 1 is the input, each next level is the previous one 2x2-average-pooled
    with stride 2 (an odd last row/column is dropped). At each level j the SSIM maps use the same Gaussian window
    (`win_size` x `win_size`, `sigma`); cs_j = mean of the cs map; at the last level M also l_M = mean of the
    luminance map. MS-SSIM = l_M^w_M * prod_j cs_j^w_j with `weights` (default: Wang's 0.0448, 0.2856, 0.3001,
    0.2363, 0.1333 for 5 scales; for other `scales`, their first `scales` values renormalised to sum 1).

    Multi-sigma (`sigmas=[s_1, ..., s_M]`), Zhao et al. 2017 ("Loss Functions for Image Restoration with Neural
    Networks", arXiv:1511.08861): no downsampling; scale j uses a Gaussian window of sigma s_j (size
    2*ceil(3 s_j) + 1) on the full-resolution image. The maps of all scales are centre-cropped to the smallest one
    (that of the widest window) and combined per pixel, l_M(p)^w_M * prod_j cs_j(p)^w_j, with l from the last
    sigma; the loss is 1 - the mean over pixels. `weights` default to 1 for every scale, as in Zhao et al.

    A factor (cs_j, l_M) with a fractional exponent is clamped to >= 1e-6 before the power, so negative values
    (anti-correlated content) cannot produce NaN; with integer exponents (Zhao's default 1) it is used as is.
    """

    def __init__(self, scales: int = 5, sigmas: Sequence[float] | None = None, weights: Sequence[float] | None = None,
                 sigma: float = 1.5, win_size: int = 11, padding: str = "valid", reduction: str = "mean"):
        super().__init__(reduction)
        self.padding = _choice("padding", padding, PADDINGS)
        self.sigmas = tuple(float(s) for s in sigmas) if sigmas is not None else None
        n = len(self.sigmas) if self.sigmas is not None else int(scales)
        if n < 1:
            raise ValueError(f"MS-SSIM needs at least one scale, got scales={scales}, sigmas={sigmas}")
        if weights is None:
            if self.sigmas is not None:
                weights = [1.0] * n
            else:
                if n > len(MSSSIM_WEIGHTS):
                    raise ValueError(f"MS-SSIM default weights cover up to {len(MSSSIM_WEIGHTS)} scales, got "
                                     f"scales={n}; pass weights=[...] of that length")
                w = MSSSIM_WEIGHTS[:n]
                weights = [x / sum(w) for x in w]
        if len(weights) != n:
            raise ValueError(f"MS-SSIM weights {list(weights)} must have one value per scale ({n})")
        self.weights = tuple(float(w) for w in weights)
        if self.sigmas is not None:
            self.windows = [gaussian_window(s) for s in self.sigmas]
        else:
            self.windows = [gaussian_window(sigma, win_size)]

    def msssim(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MS-SSIM of each image (1 = identical).

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        if self.sigmas is None:
            return self._standard(pred, target)
        return self._multi_sigma(pred, target)

    def _standard(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, out = self.windows[0], 1.0
        for j, w in enumerate(self.weights):
            if j:
                x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
            _check_size(x, g.numel(), self.padding, f"msssim scale {j + 1} of {len(self.weights)}")
            lum, cs = ssim_maps(x, y, g, self.padding)
            factor = cs.mean((2, 3)) if j < len(self.weights) - 1 else (lum * cs).mean((2, 3))
            out = out * _power(factor, w)
        return out.mean(1)

    def _multi_sigma(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        maps = []
        for g in self.windows:
            _check_size(x, g.numel(), self.padding, f"msssim sigma window {g.numel()}")
            maps.append(ssim_maps(x, y, g, self.padding))
        h, w = min(m[1].shape[-2] for m in maps), min(m[1].shape[-1] for m in maps)
        out = _power(_center_crop(maps[-1][0], h, w), self.weights[-1])
        for (_, cs), wt in zip(maps, self.weights):
            out = out * _power(_center_crop(cs, h, w), wt)
        return _image_mean(out)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """1 - MS-SSIM of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        return 1 - self.msssim(pred, target)


class L1MSSSIMLoss(ImageLoss):
    """The mix of Zhao et al. 2017 (Eq. 12): alpha * (1 - MS-SSIM) + (1 - alpha) * G_sigmaM-weighted L1.

    MS-SSIM is the multi-sigma mode (default sigmas 0.5, 1, 2, 4, 8; see `MSSSIMLoss`); the L1 term is the
    |pred - target| map filtered with the Gaussian of the last sigma (per channel), on the same centre-cropped
    pixels as the MS-SSIM map, averaged. alpha = 0.84 as in the paper.
    """

    def __init__(self, alpha: float = 0.84, sigmas: Sequence[float] = ZHAO_SIGMAS,
                 weights: Sequence[float] | None = None, padding: str = "valid", reduction: str = "mean"):
        super().__init__(reduction)
        if not 0 <= alpha <= 1:
            raise ValueError(f"l1_msssim alpha must be in [0, 1], got {alpha}")
        if not sigmas:
            raise ValueError("l1_msssim needs a non-empty list of sigmas (the multi-sigma MS-SSIM)")
        self.alpha = float(alpha)
        self.msssim = MSSSIMLoss(sigmas=sigmas, weights=weights, padding=padding)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The mixed loss of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        ms = self.msssim.per_image(pred, target)
        g = self.msssim.windows[-1]
        l1 = _filter((pred - target).abs(), g, self.msssim.padding)
        sizes = [(pred.shape[-2] - w.numel() + 1, pred.shape[-1] - w.numel() + 1) for w in self.msssim.windows]
        if self.msssim.padding == "valid":
            l1 = _center_crop(l1, min(s[0] for s in sizes), min(s[1] for s in sizes))
        return self.alpha * ms + (1 - self.alpha) * _image_mean(l1)


# ---------------------------------------------------------------- perceptual

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
    """Where torchvision caches the VGG19 ImageNet weights: torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth."""
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
        self.criterion = _choice("criterion", criterion, CRITERIA)
        _choice("weights", weights, ("imagenet", None))
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
        return sum(w * _image_mean(dist(a, b)) for w, a, b in zip(self.index.values(), fp, ft))


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
        self.op = _choice("edge op", op, EDGE_OPS)
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
        return _image_mean((self.edges(pred) - self.edges(target)).abs())


FFT_MODES = ("amplitude", "complex")


class FFTLoss(ImageLoss):
    """Frequency loss on the orthonormal 2-D real FFT (torch.fft.rfft2, norm='ortho') of each channel.

    'amplitude': mean | |F(pred)| - |F(target)| | (phase ignored); 'complex': mean of |Re diff| and |Im diff|
    over all coefficients (the L1 of the stacked real/imaginary parts, as MIMO-UNet's frequency loss).
    """

    def __init__(self, mode: str = "amplitude", reduction: str = "mean"):
        super().__init__(reduction)
        self.mode = _choice("fft mode", mode, FFT_MODES)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean spectral L1 of each image.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        fp, ft = torch.fft.rfft2(pred, norm="ortho"), torch.fft.rfft2(target, norm="ortho")
        if self.mode == "amplitude":
            return _image_mean((fp.abs() - ft.abs()).abs())
        return _image_mean(torch.view_as_real(fp - ft).abs())


# ---------------------------------------------------------------- colour transfer

SPACES = ("linear", "srgb", "bt709")


class TransferLoss(ImageLoss):
    """Take `loss` in another transfer space: both inputs are decoded from `source` to linear light, clamped to
    [0, 1] (the curves are not defined below 0), then encoded to `space`, and `loss` is applied there.

    Example: the model predicts linear light, the loss is taken in sRGB: `TransferLoss('l1', space='srgb',
    source='linear')`. Spaces: 'linear', 'srgb' (IEC 61966-2-1), 'bt709' (ITU-R BT.709 OETF); see lab.color.
    `loss` is a loss module or a spec string for `parse_loss`.
    """

    def __init__(self, loss: nn.Module | str = "l1", space: str = "srgb", source: str = "linear",
                 reduction: str = "mean"):
        super().__init__(reduction)
        from lab import color

        self.space, self.source = _choice("space", space, SPACES), _choice("source", source, SPACES)
        self.loss = parse_loss(loss) if isinstance(loss, str) else loss
        self._decode = {"linear": None, "srgb": color.srgb_to_linear, "bt709": color.bt709_to_linear}[source]
        self._encode = {"linear": None, "srgb": color.linear_to_srgb, "bt709": color.linear_to_bt709}[space]

    def convert(self, x: torch.Tensor) -> torch.Tensor:
        """`x` from the source encoding to the loss space.

        Shape: (B, C, H, W) -> (B, C, H, W).
        """
        if self.space == self.source:
            return x
        x = self._decode(x.clamp(0, 1)) if self._decode else x
        return self._encode(x.clamp(0, 1)) if self._encode else x

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The wrapped loss of each image, in the target space.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        p, t = self.convert(pred), self.convert(target)
        if hasattr(self.loss, "per_image"):
            return self.loss.per_image(p, t)
        return self.loss(p, t).expand(pred.shape[0])


# ---------------------------------------------------------------- registry, combination, spec parser

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "l1": L1Loss,
    "mse": MSELoss,
    "charbonnier": CharbonnierLoss,
    "ssim": SSIMLoss,
    "msssim": MSSSIMLoss,
    "l1_msssim": L1MSSSIMLoss,
    "vgg": VGGLoss,
    "edge": EdgeLoss,
    "fft": FFTLoss,
    "transfer": TransferLoss,
}


def list_losses() -> list[str]:
    """Registered loss names, sorted."""
    return sorted(LOSSES)


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered loss by name; KeyError lists the names, ValueError lists a loss's accepted arguments."""
    key = name.lower()
    if key not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; known losses: {', '.join(list_losses())}")
    cls = LOSSES[key]
    params = list(inspect.signature(cls).parameters)
    bad = [k for k in kwargs if k not in params]
    if bad:
        raise ValueError(f"loss {key!r} does not take {bad}; it takes {params}")
    return cls(**kwargs)


class CombinedLoss(ImageLoss):
    """Weighted sum of named losses; `last_parts` holds each part's last (unweighted, batch-mean) value.

    `part_names` lists the parts (unique: a repeated name gets a suffix, 'msssim_2'); `weights` maps them to
    their weights; `spec` is the string it was parsed from, if any.
    """

    def __init__(self, terms: Sequence[tuple[str, float, nn.Module]], spec: str = "", reduction: str = "mean"):
        super().__init__(reduction)
        if not terms:
            raise ValueError("CombinedLoss needs at least one (name, weight, loss) term")
        names: list[str] = []
        for name, _, _ in terms:
            base, k = name, 2
            while name in names:
                name, k = f"{base}_{k}", k + 1
            names.append(name)
        self.parts = nn.ModuleDict({n: m for n, (_, _, m) in zip(names, terms)})
        self.weights = {n: float(w) for n, (_, w, _) in zip(names, terms)}
        self.spec = spec
        self.last_parts: dict[str, float] = {}

    @property
    def part_names(self) -> list[str]:
        """The parts' unique names, in spec order."""
        return list(self.parts)

    def per_image(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Weighted sum of the parts for each image; records `last_parts`.

        Shape: (B, C, H, W), (B, C, H, W) -> (B,).
        """
        total = pred.new_zeros(pred.shape[0])
        for name, loss in self.parts.items():
            v = loss.per_image(pred, target) if hasattr(loss, "per_image") else loss(pred, target).expand_as(total)
            self.last_parts[name] = float(v.detach().mean())
            total = total + self.weights[name] * v
        return total

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}" if self.spec else ""


def _spec_error(spec: str, why: str) -> ValueError:
    return ValueError(f"bad loss spec {spec!r}: {why}. Form: 'l1 + 0.1*msssim(sigmas=[0.5, 1.5, 4.0]) + 2*edge'; "
                      f"known losses: {', '.join(list_losses())}")


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _number(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _terms(node: ast.AST, spec: str) -> list[tuple[float, str, dict[str, Any]]]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _terms(node.left, spec) + _terms(node.right, spec)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
        pairs = [(node.right, node.left)] if isinstance(node.op, ast.Div) else [(node.left, node.right),
                                                                                (node.right, node.left)]
        for num, rest in pairs:
            w = _number(num)
            if w is not None:
                if isinstance(node.op, ast.Div):
                    if w == 0:
                        raise _spec_error(spec, "division by zero")
                    w = 1 / w
                if w < 0:
                    raise _spec_error(spec, f"negative weight {w}")
                return [(w * t[0], t[1], t[2]) for t in _terms(rest, spec)]
        raise _spec_error(spec, "a product needs a number on one side")
    if isinstance(node, ast.Name):
        return [(1.0, node.id.lower(), {})]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.args or any(k.arg is None for k in node.keywords):
            raise _spec_error(spec, f"{node.func.id}(...) takes keyword arguments only")
        try:
            kw = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        except ValueError as e:
            raise _spec_error(spec, f"arguments of {node.func.id} must be literals ({e})") from None
        return [(1.0, node.func.id.lower(), kw)]
    raise _spec_error(spec, f"unexpected {ast.dump(node)[:60]}")


def parse_loss(spec: str) -> CombinedLoss:
    """Build a `CombinedLoss` from a spec such as 'l1 + 0.1*msssim(sigmas=[0.5, 1.5, 4.0]) + 2*edge' (no eval)."""
    if not isinstance(spec, str) or not spec.strip():
        raise _spec_error(str(spec), "empty spec")
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except SyntaxError as e:
        raise _spec_error(spec, f"syntax error ({e.msg})") from None
    terms = []
    for w, name, kw in _terms(tree.body, spec):
        if name not in LOSSES:
            raise _spec_error(spec, f"unknown loss {name!r}")
        try:
            terms.append((name, w, get_loss(name, **kw)))
        except (ValueError, FileNotFoundError) as e:
            raise type(e)(f"loss spec {spec!r}: {e}") from e
    return CombinedLoss(terms, spec=spec)
