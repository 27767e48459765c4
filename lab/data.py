"""Data: image sources, aligned LR/HR patch sampling with on-the-fly degradation, fastai DataLoaders.

Sources: the natural photos scikit-image ships in its wheel (the embedded default, with `chelsea` held out
for validation), a folder of HR images, paired LR/HR folders, and benchmark sets laid out as
`<root>/<Set>/HR` + `<root>/<Set>/LR_bicubic/X<s>`.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from lab.color import rgb_to_y
from lab.degrade import build
from lab.images import list_images, modcrop, read_image, tensor_to_uint8, uint8_to_tensor
from lab.resize import imresize
from lab.utils import benchmarks_dir

BUILTIN_TRAIN = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                 "motorcycle_left", "motorcycle_right", "brick", "grass", "gravel")
BUILTIN_VALID = ("chelsea",)


@dataclass
class ImagePair:
    """One image: its name, the HR array (HWC uint8) and, for paired data, its LR array."""

    name: str
    hr: np.ndarray
    lr: np.ndarray | None = None


def builtin_image(name: str) -> np.ndarray:
    """A photo shipped inside scikit-image's wheel, as HWC RGB uint8 (gray photos get 3 equal channels)."""
    import skimage.data as skd

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skd.stereo_motorcycle()
        img = left if name == "motorcycle_left" else right
    else:
        fn = getattr(skd, name, None)
        if fn is None or name not in BUILTIN_TRAIN + BUILTIN_VALID:
            raise KeyError(f"unknown built-in image {name!r}; known: {list(BUILTIN_TRAIN + BUILTIN_VALID)}")
        img = fn()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def builtin_images(names: Sequence[str] = BUILTIN_TRAIN) -> list[ImagePair]:
    """The built-in photos named in `names` as HR images."""
    return [ImagePair(n, builtin_image(n)) for n in names]


def folder_images(folder: str | os.PathLike) -> list[ImagePair]:
    """Every image in a folder of HR images; error if the folder holds none."""
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(('png', 'jpg', 'bmp', 'tif', 'webp'))}) in {str(folder)!r}")
    return [ImagePair(f.stem, read_image(f)) for f in files]


def paired_images(lr_dir: str | os.PathLike, hr_dir: str | os.PathLike, scale: int) -> list[ImagePair]:
    """LR/HR pairs matched by file stem (LR names may carry an `x2`-style suffix); sizes must agree with `scale`."""
    hr_files = {f.stem: f for f in list_images(hr_dir)}
    lr_files = list_images(lr_dir)
    if not hr_files or not lr_files:
        raise FileNotFoundError(f"paired data needs images in both {str(lr_dir)!r} and {str(hr_dir)!r}")
    pairs = []
    for f in lr_files:
        stem = f.stem
        for suffix in (f"x{scale}", f"_x{scale}", f"X{scale}", f"_X{scale}"):
            if stem.endswith(suffix) and stem[: -len(suffix)] in hr_files:
                stem = stem[: -len(suffix)]
        if stem not in hr_files:
            raise FileNotFoundError(f"LR image {f.name!r} has no HR partner named {stem}.* in {str(hr_dir)!r}")
        lr, hr = read_image(f), modcrop(read_image(hr_files[stem]), scale)
        if (lr.shape[0] * scale, lr.shape[1] * scale) != hr.shape[:2]:
            raise ValueError(f"{f.name}: LR {lr.shape[:2]} x{scale} != modcropped HR {hr.shape[:2]}")
        pairs.append(ImagePair(stem, hr, lr))
    return pairs


def benchmark_images(set_dir: str | os.PathLike, scale: int) -> list[ImagePair]:
    """A benchmark set `<Set>/HR` (+ `LR_bicubic/X<s>` if present, else LR made by MATLAB bicubic), HR modcropped."""
    set_dir = Path(set_dir)
    lr_dir = set_dir / "LR_bicubic" / f"X{scale}"
    if lr_dir.is_dir():
        return paired_images(lr_dir, set_dir / "HR", scale)
    return [with_bicubic_lr(p, scale) for p in folder_images(set_dir / "HR")]


def with_bicubic_lr(pair: ImagePair, scale: int) -> ImagePair:
    """The pair as benchmarks make it: HR modcropped, LR = MATLAB bicubic of it (kept if the pair has an LR)."""
    if pair.lr is not None:
        return pair
    hr = modcrop(pair.hr, scale)
    return ImagePair(pair.name, hr, imresize(hr, scale=1 / scale))


def find_benchmark(name: str) -> Path:
    """Locate benchmark set `name` under `$LAB_BENCHMARKS` / the reference data; error says where it looked."""
    p = Path(name)
    if (p / "HR").is_dir():
        return p
    root = benchmarks_dir()
    if root is not None and (root / name / "HR").is_dir():
        return root / name
    raise FileNotFoundError(f"benchmark set {name!r} not found; set LAB_BENCHMARKS to a folder holding "
                            f"{name}/HR (and {name}/LR_bicubic/X<s>), or pass a path")


def load_source(source: str, scale: int, lr_source: str = "") -> list[ImagePair]:
    """Images for a `data`/`valid` parameter: 'builtin', 'builtin:<name>,<name>', a benchmark set name, or a folder."""
    if source == "builtin":
        return builtin_images(BUILTIN_TRAIN)
    if source.startswith("builtin:"):
        return builtin_images([s.strip() for s in source.split(":", 1)[1].split(",") if s.strip()])
    if lr_source:
        return paired_images(lr_source, source, scale)
    p = Path(source)
    if p.is_dir() and (p / "HR").is_dir():
        return benchmark_images(p, scale)
    if p.is_dir():
        return folder_images(p)
    try:
        return benchmark_images(find_benchmark(source), scale)
    except FileNotFoundError:
        raise FileNotFoundError(f"data source {source!r} is neither 'builtin', 'builtin:<names>', a folder, "
                                "nor a benchmark set found under LAB_BENCHMARKS") from None


def _to_y(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_y(x)


def _augment(t: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 dihedral transforms (flips + 90° rotations), the same code for LR and HR. Shape: (..., H, W)."""
    if code & 1:
        t = t.flip(-1)
    if code & 2:
        t = t.flip(-2)
    if code & 4:
        t = t.transpose(-1, -2)
    return t


class PatchDataset(torch.utils.data.Dataset):
    """Random aligned (LR, HR) patches; LR comes from the degradation pipeline (or the paired LR crop).

    `patch_size` is in LR pixels; HR patches are `patch_size * scale`. Each item draws its crop, augmentation
    and degradation from a generator seeded by (seed, epoch, index), so a run replays exactly.
    """

    def __init__(self, images: Sequence[ImagePair], scale: int, patch_size: int = 48, degradation: Any = "bicubic",
                 repeat: int = 1, augment: bool = True, seed: int = 0, channels: str = "rgb", quantize_lr: bool = True):
        if not images:
            raise ValueError("PatchDataset needs at least one image")
        if scale < 1 or patch_size < 1 or repeat < 1:
            raise ValueError(f"scale, patch_size and repeat must be >= 1; got {scale}, {patch_size}, {repeat}")
        if channels not in ("rgb", "y"):
            raise ValueError(f"channels must be 'rgb' or 'y', got {channels!r}")
        self.scale, self.patch_size, self.repeat, self.augment = scale, patch_size, repeat, augment
        self.seed, self.channels, self.quantize_lr, self.epoch = seed, channels, quantize_lr, 0
        self.pipeline = None if all(i.lr is not None for i in images) else build(degradation, scale=scale)
        hr_patch = patch_size * scale
        self.images = []
        for im in images:
            hr = torch.from_numpy(np.ascontiguousarray(im.hr.transpose(2, 0, 1)))
            lr = None if im.lr is None else torch.from_numpy(np.ascontiguousarray(im.lr.transpose(2, 0, 1)))
            if hr.shape[1] < hr_patch or hr.shape[2] < hr_patch:
                raise ValueError(f"image {im.name!r} ({hr.shape[1]}x{hr.shape[2]}) is smaller than the HR patch "
                                 f"{hr_patch}px; lower patch_size or drop the image")
            self.images.append((im.name, hr, lr))

    def __len__(self) -> int:
        return len(self.images) * self.repeat

    def set_epoch(self, epoch: int) -> None:
        """Change the epoch so the next pass draws new patches."""
        self.epoch = epoch

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        _, hr, lr = self.images[i % len(self.images)]
        s, p = self.scale, self.patch_size
        h, w = hr.shape[1] // s, hr.shape[2] // s  # LR grid, so HR crops stay aligned to it
        y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        hr_patch = hr[:, y * s:(y + p) * s, x * s:(x + p) * s].float().div_(255)
        if lr is not None:
            lr_patch = lr[:, y:y + p, x:x + p].float().div_(255)
        else:
            lr_patch = self.pipeline(hr_patch[None], rng)[0]
            if self.quantize_lr:
                lr_patch = lr_patch.clamp(0, 1).mul(255).round().div(255)
        if self.augment:
            code = int(rng.integers(0, 8))
            lr_patch, hr_patch = _augment(lr_patch, code), _augment(hr_patch, code)
        if self.channels == "y":
            lr_patch, hr_patch = _to_y(lr_patch[None])[0], _to_y(hr_patch[None])[0]
        return lr_patch.contiguous(), hr_patch.contiguous()


class ImageDataset(torch.utils.data.Dataset):
    """Whole (LR, HR) images for validation; LR is MATLAB-bicubic uint8 (as benchmarks) unless paired."""

    def __init__(self, images: Sequence[ImagePair], scale: int, channels: str = "rgb", max_size: int | None = None):
        self.items = []
        for im in images:
            hr = modcrop(im.hr, scale)
            if max_size and max(hr.shape[:2]) > max_size:
                m = (max_size // scale) * scale
                y0, x0 = ((hr.shape[0] - min(m, hr.shape[0])) // (2 * scale)) * scale, \
                         ((hr.shape[1] - min(m, hr.shape[1])) // (2 * scale)) * scale
                hr = hr[y0:y0 + m, x0:x0 + m]
                lr = None if im.lr is None else im.lr[y0 // scale:(y0 + m) // scale, x0 // scale:(x0 + m) // scale]
            else:
                lr = im.lr
            lr = imresize(hr, scale=1 / scale) if lr is None else lr
            lr_t, hr_t = uint8_to_tensor(lr)[0], uint8_to_tensor(hr)[0]
            if channels == "y":
                lr_t, hr_t = _to_y(lr_t[None])[0], _to_y(hr_t[None])[0]
            self.items.append((im.name, lr_t, hr_t))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i][1], self.items[i][2]


def show_triplets(lr: torch.Tensor, sr: torch.Tensor | None, hr: torch.Tensor, max_n: int = 4, figsize_unit: float = 3.0,
                  titles: Sequence[str] | None = None):
    """Plot LR / SR / HR side by side for up to `max_n` images; returns the matplotlib figure."""
    import matplotlib.pyplot as plt

    n = min(max_n, lr.shape[0])
    cols = [("LR", lr), ("SR", sr), ("HR", hr)] if sr is not None else [("LR", lr), ("HR", hr)]
    fig, axes = plt.subplots(n, len(cols), figsize=(figsize_unit * len(cols), figsize_unit * n), squeeze=False)
    for r in range(n):
        for c, (title, t) in enumerate(cols):
            img = tensor_to_uint8(t[r].float())
            axes[r, c].imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
            axes[r, c].set_title(title if titles is None else f"{titles[r]} {title}")
            axes[r, c].axis("off")
    fig.tight_layout()
    return fig


class SRDataLoader(DataLoader):
    """A fastai DataLoader of (LR, HR) pairs whose patches and shuffle depend on (seed, epoch) only; shows LR / SR / HR.

    Each pass tells the dataset its epoch and then advances it; a Learner sets the epoch explicitly before each
    training epoch (`lab.callbacks.DataEpoch`), so a resumed run draws the same batches as an uninterrupted one.
    """

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass draws (patches, degradations and shuffle order)."""
        self.epoch = int(epoch)

    def randomize(self):
        seed = getattr(self, "seed", None)
        if seed is None:  # a copy made by `.new()` (get_preds, test_dl): fastai's own chained generator
            return super().randomize()
        self.rng = random.Random(seed * 1_000_003 + getattr(self, "epoch", 0))

    def before_iter(self, x=None, *args, **kwargs):
        epoch = getattr(self, "epoch", 0)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.epoch = epoch + 1
        return x

    def show_batch(self, b=None, max_n: int = 4, **kwargs):
        """Show LR and HR of a batch."""
        lr, hr = b if b is not None else self.one_batch()
        return show_triplets(lr.cpu(), None, hr.cpu(), max_n=max_n)

    def show_results(self, b, out, max_n: int = 4, **kwargs):
        """Show LR / SR / HR (what `Learner.show_results` calls)."""
        lr, hr = b[0].cpu(), b[1].cpu()
        sr = out[0] if isinstance(out, (list, tuple)) else out
        return show_triplets(lr, sr.detach().float().cpu(), hr, max_n=max_n)


def dataloaders(data: str = "builtin", scale: int = 2, patch_size: int = 48, batch_size: int = 16,
                degradation: Any = "bicubic", repeat: int = 20, valid: str = "builtin:chelsea",
                valid_max_size: int | None = 256, channels: str = "rgb", seed: int = 0, num_workers: int = 0,
                data_lr: str = "", device: str | torch.device | None = None,
                degradation_kwargs: dict[str, Any] | None = None) -> DataLoaders:
    """fastai DataLoaders: random patch batches for training, whole images (batch 1) for validation.

    `degradation` is a preset name or config (lab.degrade.build) and `degradation_kwargs` its overrides;
    `dls.degradation` holds the resolved config a run records.
    """
    if degradation_kwargs:
        degradation = build(degradation, scale=scale, **degradation_kwargs)
    train = load_source(data, scale, data_lr)
    valid_imgs = load_source(valid, scale)
    train_ds = PatchDataset(train, scale, patch_size, degradation=degradation, repeat=repeat, seed=seed,
                            channels=channels)
    if len(train_ds) < batch_size:
        raise ValueError(f"only {len(train_ds)} training patches per epoch ({len(train)} images x repeat {repeat}) "
                         f"for batch_size {batch_size}: raise repeat or lower batch_size")
    valid_ds = ImageDataset(valid_imgs, scale, channels=channels, max_size=valid_max_size)
    train_dl = SRDataLoader(train_ds, bs=batch_size, shuffle=True, drop_last=True, num_workers=num_workers,
                            device=device)
    train_dl.seed, train_dl.epoch = seed, 0  # fastai seeds its shuffle from the global `random`; keep it explicit
    valid_dl = SRDataLoader(valid_ds, bs=1, shuffle=False, num_workers=0, device=device)
    dls = DataLoaders(train_dl, valid_dl)
    dls.scale, dls.channels = scale, channels
    dls.degradation = train_ds.pipeline.config() if train_ds.pipeline is not None else {"preset": "paired"}
    return dls
