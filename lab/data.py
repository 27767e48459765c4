"""Data: aligned LR/HR training patches degraded on the fly, validation images degraded the way the task degrades
them, the step budget of a run, and fastai DataLoaders. Images come from `lab.sources` (read lazily).

- Training patches: each item draws its image, crop, degradation and flip/rot90 from a generator seeded by
  (seed, data epoch, index), so a run replays and resumes exactly, with DataLoader workers or without. A pipeline
  with HR ops (rescale, aspect, crop) runs them on the HR before the LR is made, so the pair stays aligned.
  `degrade_on='device'`: the loader only decodes and crops (drawing the same params and flip code from the same
  generator); `lab.callbacks.DeviceDegrade` degrades the batch where the model trains (`PatchDataset.finish_batch`).
- Validation: whole images (centre-cropped to `valid_max_size`), degraded once with a seed fixed per image
  (`lab.sources.image_seed`), so every epoch, resumed run, rerun and run of another seed judges on the same inputs.
  Plain bicubic is MATLAB's `imresize`, bit-exact with the benchmark LR files.
- `Budget`: how many optimizer steps a run takes and how they are cut into epochs (one validation each).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader

from lab import vocab
from lab.color import rgb_to_y
from lab.degrade import Pipeline, build
from lab.images import DataError, modcrop, tensor_to_uint8, uint8_to_tensor
from lab.resize import imresize
from lab.sources import (
    BUILTIN_TRAIN,
    BUILTIN_VALID,
    ImagePair,
    SourceMix,
    builtin_image,
    find_benchmark,
    fingerprints,
    hold_out,
    image_seed,
    load_source,
    open_source,
    open_sources,
    parse_split,
    set_label,
    valid_sets,
)
from lab.utils import usable_cores

__all__ = ["Budget", "PatchDataset", "ImageDataset", "SRDataLoader", "dataloaders", "degrade_pair", "ImagePair",
           "builtin_image", "builtin_images", "load_source", "find_benchmark", "benchmark_images", "with_bicubic_lr",
           "BUILTIN_TRAIN", "BUILTIN_VALID"]
CHANNELS = ("rgb", "y")


def builtin_images(names: Sequence[str] = BUILTIN_TRAIN) -> list[ImagePair]:
    """The built-in photos named in `names` as HR images."""
    return [ImagePair(n, builtin_image(n)) for n in names]


def benchmark_images(set_dir: str | os.PathLike, scale: int) -> list[ImagePair]:
    """A benchmark set `<Set>/HR` (+ `LR_bicubic/X<s>` if present, else LR made by MATLAB bicubic), HR modcropped."""
    return [with_bicubic_lr(p, scale) for p in load_source(str(set_dir), scale)]


def is_benchmark_bicubic(pipeline: Pipeline | None, scale: int) -> bool:
    """Whether `pipeline` is plain MATLAB bicubic downscaling (then LR is made by `imresize`, bit-exact)."""
    if pipeline is None:
        return True
    plain = {k: v for k, v in build("bicubic", scale=scale).config().items() if k != "overrides"}
    return {k: v for k, v in pipeline.config().items() if k != "overrides"} == plain


def extra_label(spec: str, pipeline: Pipeline | None, scale: int) -> str:
    """The label of a further validation set: its name ('Set5' -> 'set5'), with '@<preset>' when its inputs are
    not the benchmark's bicubic ('set5@realsr'), as `lab.evaluate` labels a degraded set, so a score under a
    benchmark's name is always the benchmark's."""
    label = set_label(spec)
    if is_benchmark_bicubic(pipeline, scale):
        return label
    return f"{label}@{pipeline.config().get('preset') or 'degraded'}"


def with_bicubic_lr(pair: ImagePair, scale: int) -> ImagePair:
    """The pair as benchmarks make it: HR modcropped, LR = MATLAB bicubic of it (kept if the pair has an LR)."""
    if pair.lr is not None:
        return ImagePair(pair.name, modcrop(pair.hr, scale), pair.lr)
    hr = modcrop(pair.hr, scale)
    return ImagePair(pair.name, hr, imresize(hr, scale=1 / scale))


def degrade_pair(pair: ImagePair, scale: int, pipeline: Pipeline | None, seed: int) -> ImagePair:
    """The (LR, HR) a model is judged on: a paired LR as is; else the HR (modcropped) degraded by `pipeline` with
    `seed` (after its HR ops, which may change the HR), the LR rounded to 8 bit as a saved file would be. Plain
    bicubic (or None) is MATLAB's imresize."""
    if pair.lr is not None or is_benchmark_bicubic(pipeline, scale):
        return with_bicubic_lr(pair, scale)
    hr = modcrop(pair.hr, scale) if isinstance(pipeline.scale, int) else pair.hr
    lr_t, hr_t = pipeline.apply_pair(uint8_to_tensor(hr), pipeline.sample(np.random.default_rng(seed)))
    return ImagePair(pair.name, tensor_to_uint8(hr_t[0]), tensor_to_uint8(lr_t[0]))


def _augment(t: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 dihedral transforms (flips + 90° rotations), the same code for LR and HR. Shape: (..., H, W)."""
    if code & 1:
        t = t.flip(-1)
    if code & 2:
        t = t.flip(-2)
    if code & 4:
        t = t.transpose(-1, -2)
    return t


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a).transpose(2, 0, 1))).float().div_(255)


class PatchDataset(torch.utils.data.Dataset):
    """Random aligned (LR, HR) patches; LR comes from the degradation pipeline (or the paired LR crop).

    `images`: a SourceMix (lab.sources.open_sources) or ImagePairs in memory. `patch_size` is in LR pixels; HR
    patches are `patch_size * scale`. An epoch has `items` patches (default: `repeat` per image); item i of an
    unweighted pool is image i mod n, of a weighted mix a draw by weight. See the module docstring for seeding.
    """

    def __init__(self, images: SourceMix | Sequence[ImagePair], scale: int, patch_size: int = 48,
                 degradation: Any = "bicubic", repeat: int = 1, augment: bool = True, seed: int = 0,
                 channels: str = "rgb", quantize_lr: bool = True, items: int | None = None,
                 degrade_on: str = "loader"):
        mix = images if isinstance(images, SourceMix) else open_sources(list(images), scale)
        if not len(mix):
            raise ValueError("PatchDataset needs at least one image")
        if scale < 1 or patch_size < 1 or repeat < 1:
            raise ValueError(f"scale, patch_size and repeat must be >= 1; got {scale}, {patch_size}, {repeat}")
        if channels not in CHANNELS:
            raise ValueError(f"channels must be 'rgb' or 'y', got {channels!r}")
        self.mix, self.scale, self.patch_size, self.repeat, self.augment = mix, scale, patch_size, repeat, augment
        self.seed, self.channels, self.quantize_lr, self.epoch = seed, channels, quantize_lr, 0
        paired = all(src.paired for src in mix.sources)
        self.pipeline = None if paired else build(degradation, scale=scale)
        self.items = items if items is not None else len(mix) * repeat
        if degrade_on not in vocab.DEGRADE_ON:
            raise ValueError(f"degrade_on must be one of {vocab.DEGRADE_ON}, got {degrade_on!r}")
        if degrade_on == "device" and self.pipeline is not None and (self.pipeline.changes_hr or
                                                                     any(src.paired for src in mix.sources)):
            raise ValueError(f"degrade_on='device' needs unpaired sources and a pipeline without HR ops "
                             f"({self.pipeline.name!r} changes the HR or a source is paired); use 'loader'")
        self.degrade_on = degrade_on if self.pipeline is not None else "loader"
        hr_patch = patch_size * scale
        for src in mix.sources:
            for k in range(len(src)):
                h, w = src.shape(k)
                if h < hr_patch or w < hr_patch:
                    raise ValueError(f"image {src.items[k].name!r} of {src.name!r} ({h}x{w}) is smaller than the HR "
                                     f"patch {hr_patch}px; lower patch_size or filter it out (data_filters "
                                     f"{{'min_size': {hr_patch}}})")

    def __len__(self) -> int:
        return self.items

    def set_epoch(self, epoch: int) -> None:
        """Change the epoch so the next pass draws new patches."""
        self.epoch = epoch

    def _hr_ops_patch(self, hr: np.ndarray, rng: np.random.Generator,
                      name: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        """A window of the HR through the whole pipeline (HR ops first), then an aligned patch of the result."""
        s, p = self.scale, self.patch_size
        params = self.pipeline.sample(rng)
        side = 2 * p * s
        while True:
            wh, ww = min(side, hr.shape[0]), min(side, hr.shape[1])
            whole = (wh, ww) == hr.shape[:2]
            y0, x0 = int(rng.integers(0, hr.shape[0] - wh + 1)), int(rng.integers(0, hr.shape[1] - ww + 1))
            try:
                lr, new_hr = self.pipeline.apply_pair(_chw(hr[y0:y0 + wh, x0:x0 + ww])[None], params)
            except ValueError:  # an op that needs more than this window (a crop larger than it): widen
                if whole:
                    raise
                side *= 2
                continue
            if min(lr.shape[-2:]) >= p:
                break
            if whole:
                raise DataError(f"the HR ops of {self.pipeline.name!r} shrink the whole {hr.shape[0]}x{hr.shape[1]} "
                                f"image {name!r} below the {p * s}px HR patch; lower patch_size or the ops' shrink, "
                                "or leave the image out (data_filters = {min_size: ...})")
            side *= 2
        y, x = int(rng.integers(0, lr.shape[-2] - p + 1)), int(rng.integers(0, lr.shape[-1] - p + 1))
        return lr[0, :, y:y + p, x:x + p], new_hr[0, :, y * s:(y + p) * s, x * s:(x + p) * s]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        src, k = self.mix.draw(rng, i)
        hr, lr = src.hr(k), src.lr(k)
        s, p = self.scale, self.patch_size
        if lr is None and self.pipeline.changes_hr:
            lr_patch, hr_patch = self._hr_ops_patch(hr, rng, f"{src.name}/{src.items[k].name}")
        else:
            h, w = hr.shape[0] // s, hr.shape[1] // s  # LR grid, so HR crops stay aligned to it
            y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            hr_patch = _chw(hr[y * s:(y + p) * s, x * s:(x + p) * s])
            if lr is None and self.degrade_on == "device":  # the same draws, in the same order, as below
                params = self.pipeline.sample(rng)
                return hr_patch, json.dumps(params), int(rng.integers(0, 8)) if self.augment else 0
            lr_patch = _chw(lr[y:y + p, x:x + p]) if lr is not None else self.pipeline(hr_patch[None], rng)[0]
        if lr is None and self.quantize_lr:
            lr_patch = lr_patch.clamp(0, 1).mul(255).round().div(255)
        if self.augment:
            code = int(rng.integers(0, 8))
            lr_patch, hr_patch = _augment(lr_patch, code), _augment(hr_patch, code)
        if self.channels == "y":
            lr_patch, hr_patch = rgb_to_y(lr_patch[None])[0], rgb_to_y(hr_patch[None])[0]
        return lr_patch.contiguous(), hr_patch.contiguous()

    def finish_batch(self, hr: torch.Tensor, params: Sequence[str], codes: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """With `degrade_on='device'`: a batch of HR patches, the degradation params each item drew and its
        flip/rot90 code (what `__getitem__` returns then, collated) -> the (LR, HR) batch the loader path makes,
        computed on the batch's device."""
        lr = self.pipeline.apply(hr, [json.loads(p) for p in params])
        if self.quantize_lr:
            lr = lr.clamp(0, 1).mul(255).round().div(255)
        if self.augment:
            lr, hr = lr.clone(), hr.clone()
            codes = torch.as_tensor(codes).tolist()
            for c in set(codes):
                idx = [k for k, v in enumerate(codes) if v == c]
                lr[idx], hr[idx] = _augment(lr[idx], c), _augment(hr[idx], c)
        if self.channels == "y":
            lr, hr = rgb_to_y(lr), rgb_to_y(hr)
        return lr.contiguous(), hr.contiguous()


def _centre_crop(pair: ImagePair, scale: int, max_size: int | None) -> ImagePair:
    hr = modcrop(pair.hr, scale)
    if not max_size or max(hr.shape[:2]) <= max_size:
        return ImagePair(pair.name, hr, pair.lr)
    m = (max_size // scale) * scale
    y0 = ((hr.shape[0] - min(m, hr.shape[0])) // (2 * scale)) * scale
    x0 = ((hr.shape[1] - min(m, hr.shape[1])) // (2 * scale)) * scale
    lr = None if pair.lr is None else pair.lr[y0 // scale:(y0 + m) // scale, x0 // scale:(x0 + m) // scale]
    return ImagePair(pair.name, hr[y0:y0 + m, x0:x0 + m], lr)


class ImageDataset(torch.utils.data.Dataset):
    """Whole (LR, HR) images for validation, degraded as the task degrades them (see the module docstring).

    `degradation`: a preset name, config or Pipeline (None or 'bicubic': MATLAB bicubic); `seed` is the base of
    the fixed per-image seeds. `pairs` holds the uint8 (LR, HR) each image is judged on.
    """

    def __init__(self, images: Sequence[ImagePair], scale: int, channels: str = "rgb", max_size: int | None = None,
                 degradation: Any = None, seed: int = 0):
        pipe = None if degradation is None else build(degradation, scale=scale)
        self.pairs, self.items = [], []
        for im in images:
            pair = degrade_pair(_centre_crop(im, scale, max_size), scale, pipe, image_seed(im.name, "valid", seed))
            lr_t, hr_t = uint8_to_tensor(pair.lr)[0], uint8_to_tensor(pair.hr)[0]
            if channels == "y":
                lr_t, hr_t = rgb_to_y(lr_t[None])[0], rgb_to_y(hr_t[None])[0]
            self.pairs.append(pair)
            self.items.append((im.name, lr_t, hr_t))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i][1], self.items[i][2]


@dataclass(frozen=True)
class Budget:
    """A run's length in optimizer steps, cut into epochs of `steps_per_epoch` (the last may be shorter), each
    ending in a validation; the resume checkpoint is saved every `save_every` steps and at the end.

    `taken`: the lengths of the first epochs when they differ from `steps_per_epoch` (a time budget replans the
    epochs still to come from the steps actually taken, `replan`); the later epochs are uniform as above.
    Epochs past the budget (a later phase on the same loader, e.g. the adversarial one) are whole.
    """

    steps: int
    steps_per_epoch: int
    save_every: int
    taken: tuple[int, ...] = ()

    def __post_init__(self):
        for k in ("steps", "steps_per_epoch", "save_every"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be an int >= 1, got {v!r}")
        if self.save_every % self.steps_per_epoch:
            raise ValueError(f"save_every={self.save_every} must be a multiple of valid_every="
                             f"{self.steps_per_epoch} (checkpoints are saved after a validation)")
        object.__setattr__(self, "taken", tuple(self.taken))
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.taken) or \
                sum(self.taken) > self.steps:
            raise ValueError(f"taken must be epoch lengths (ints >= 1) summing to at most steps={self.steps}, "
                             f"got {self.taken!r}")

    @property
    def epochs(self) -> int:
        return len(self.taken) + math.ceil((self.steps - sum(self.taken)) / self.steps_per_epoch)

    @property
    def save_every_epochs(self) -> int:
        return self.save_every // self.steps_per_epoch

    def steps_in(self, epoch: int) -> int:
        """Optimizer steps of epoch `epoch` (0-based)."""
        if epoch < len(self.taken):
            return self.taken[epoch]
        if epoch == self.epochs - 1:
            return self.steps - self.steps_before(epoch)
        return self.steps_per_epoch

    def steps_before(self, epoch: int) -> int:
        """Optimizer steps taken before epoch `epoch` starts."""
        k = len(self.taken)
        if epoch <= k:
            return sum(self.taken[:epoch])
        if epoch <= self.epochs:
            return min(sum(self.taken) + (epoch - k) * self.steps_per_epoch, self.steps)
        return self.steps + (epoch - self.epochs) * self.steps_per_epoch

    def replan(self, epoch: int, steps_per_epoch: int, epochs: int | None = None) -> Budget:
        """This budget with the epochs before `epoch` kept as taken and the rest (up to `epochs` in all, default the
        same count) of `steps_per_epoch` steps each; the checkpoint interval keeps its number of epochs."""
        epochs = self.epochs if epochs is None else epochs
        if not 0 <= epoch < epochs or steps_per_epoch < 1:
            raise ValueError(f"replan needs an epoch before the end ({epoch} of {epochs}) and steps_per_epoch >= 1, "
                             f"got {steps_per_epoch}")
        taken = tuple(self.steps_in(e) for e in range(epoch))
        every = min(self.save_every_epochs, epochs - epoch)
        return Budget(sum(taken) + (epochs - epoch) * steps_per_epoch, steps_per_epoch, steps_per_epoch * every,
                      taken)

    def cut(self, epoch: int, steps: int) -> Budget:
        """This budget ended after `steps` steps of epoch `epoch` (a time budget ran out): the steps taken."""
        taken = tuple(self.steps_in(e) for e in range(epoch)) + (steps,)
        return Budget(sum(taken), self.steps_per_epoch, self.save_every, taken)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": self.steps, "valid_every": self.steps_per_epoch,
                               "save_every": self.save_every, "epochs": self.epochs}
        if self.taken:
            out["steps_by_epoch"] = [self.steps_in(e) for e in range(self.epochs)]
        return out

    def state(self) -> dict[str, Any]:
        """The constructor's arguments (what a checkpoint keeps to rebuild it: `Budget(**state)`)."""
        return {"steps": self.steps, "steps_per_epoch": self.steps_per_epoch, "save_every": self.save_every,
                "taken": list(self.taken)}


def apply_budget(dls: DataLoaders, budget: Budget) -> None:
    """Make `budget` the step budget of `dls` (the data epochs and the history's steps follow it); a PatchDataset
    draws as many patches as the longest epoch takes."""
    dls.budget = budget
    dls.train.budget = budget
    ds = dls.train.dataset
    if isinstance(getattr(ds, "items", None), int):
        longest = max([budget.steps_per_epoch, *budget.taken, budget.steps_in(budget.epochs - 1)])
        ds.items = longest * dls.train.bs
    dls.train.set_epoch(getattr(dls.train, "epoch", 0))


def make_budget(items_per_epoch: int, batch_size: int, epochs: int = 1, steps: int = 0, valid_every: int = 0,
                save_every: int = 0) -> Budget:
    """`steps` > 0: that many steps, validated every `valid_every` (default: 10 times per run) and saved every
    `save_every` (default: at each validation). Else `epochs` passes over `items_per_epoch` patches."""
    for k, v in (("steps", steps), ("valid_every", valid_every), ("save_every", save_every), ("epochs", epochs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{k} must be an int >= 0, got {v!r}")
    if steps:
        spe = valid_every or max(1, math.ceil(steps / 10))
        return Budget(steps, min(spe, steps), save_every or min(spe, steps))
    spe = items_per_epoch // batch_size
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1 (or set steps), got {epochs}")
    return Budget(epochs * spe, spe, (save_every // spe * spe if save_every else spe) or spe)


def show_triplets(lr: torch.Tensor, sr: torch.Tensor | None, hr: torch.Tensor, max_n: int = 4,
                  figsize_unit: float = 3.0, titles: Sequence[str] | None = None):
    """Plot LR / SR / HR side by side for up to `max_n` images; returns the matplotlib figure."""
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
    With a `budget` an epoch has the budget's steps for it (the run's last epoch may be shorter).
    """

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next pass draws (patches, degradations and shuffle order)."""
        self.epoch = int(epoch)
        budget = getattr(self, "budget", None)
        if budget is not None:
            self.n = budget.steps_in(self.epoch) * self.bs

    def randomize(self):
        seed = getattr(self, "seed", None)
        if seed is None:  # a copy made by `.new()` (get_preds, test_dl): fastai's own chained generator
            return super().randomize()
        self.rng = random.Random(seed * 1_000_003 + getattr(self, "epoch", 0))

    def __iter__(self):
        try:
            yield from super().__iter__()
        except Exception as e:  # noqa: BLE001 - re-raised as is, or as the worker's own error
            raise from_worker(e) from e

    def before_iter(self, x=None, *args, **kwargs):
        epoch = getattr(self, "epoch", 0)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.epoch = epoch + 1
        return x

    def show_batch(self, b=None, max_n: int = 4, **kwargs):
        """Show LR and HR of a batch (a `degrade_on='device'` batch degraded first, as training will)."""
        b = b if b is not None else self.one_batch()
        if len(b) == 3:  # HR patches, each item's degradation params and flip code
            b = self.dataset.finish_batch(*b)
        lr, hr = b
        return show_triplets(lr.cpu(), None, hr.cpu(), max_n=max_n)

    def show_results(self, b, out, max_n: int = 4, **kwargs):
        """Show LR / SR / HR (what `Learner.show_results` calls)."""
        lr, hr = b[0].cpu(), b[1].cpu()
        sr = out[0] if isinstance(out, (list, tuple)) else out
        return show_triplets(lr, sr.detach().float().cpu(), hr, max_n=max_n)


_WORKER_MARK = re.compile(r"\ACaught \w+ in DataLoader worker process \d+\.\s*\nOriginal ")


def from_worker(e: Exception) -> Exception:
    """The error a DataLoader worker raised, as the main process would have raised it (same type, its own message,
    no 'Caught ... in DataLoader worker process' wrapper), so a bad file reads the same with workers or without;
    any other exception is returned as is."""
    text = e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e)  # a KeyError's str() quotes
    if not _WORKER_MARK.match(text):
        return e
    cls = type(e)
    name = cls.__qualname__ if cls.__module__ in ("builtins", "__main__") else f"{cls.__module__}.{cls.__qualname__}"
    at = text.rfind(f"\n{name}: ")
    if at < 0:
        return e
    try:
        return cls(text[at + len(name) + 3:].strip())
    except Exception:  # noqa: BLE001 - an exception type that needs more arguments keeps torch's wrapper
        return e


def resolve_workers(num_workers: int | str, mix: SourceMix) -> int:
    """DataLoader worker processes: an int >= 0, or 'auto' (none for in-memory photos, else half the cores, <= 4)."""
    if isinstance(num_workers, str) and num_workers.strip().isdigit():  # `-p num_workers 2` arrives as text
        num_workers = int(num_workers)
    if num_workers == "auto":
        if all(it.builtin is not None for s in mix.sources for it in s.items) or not mix.sources[0].items:
            return 0
        return min(4, max(1, usable_cores() // 2))
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0 or 'auto', got {num_workers!r}")
    return num_workers


def dataloaders(data: str | Sequence[ImagePair] = "builtin", scale: int = 2, patch_size: int = 48,
                batch_size: int = 16, degradation: Any = "bicubic", repeat: int = 20, valid: str | list = "builtin:chelsea",
                valid_max_size: int | None = 256, channels: str = "rgb", seed: int = 0,
                num_workers: int | str = 0, data_lr: str = "", device: str | torch.device | None = None,
                degradation_kwargs: dict[str, Any] | None = None, valid_degradation: Any = "",
                valid_lr: str = "", augment: bool = True, epochs: int = 1, steps: int = 0, valid_every: int = 0,
                save_every: int = 0, data_filters: dict[str, Any] | None = None,
                disk_cache: bool = False, degrade_on: str = "loader") -> DataLoaders:
    """fastai DataLoaders: random patch batches for training, whole images (batch 1) for validation.

    `degradation` is a preset name or config (lab.degrade.build) and `degradation_kwargs` its overrides;
    `valid_degradation` degrades the validation images ('' = the training degradation, 'bicubic' = clean
    benchmark-style LR), or `valid_lr` names their paired LR folder. `dls.budget` is the step budget (`steps`, or
    `epochs` of `repeat` patches per image), `dls.degradation` / `dls.valid_degradation` the resolved configs and
    `dls.sources` the training sources a run records (each with its files' fingerprint, which `lab rerun` checks).
    `degrade_on='device'` leaves the degradation to the batch on the training device (`lab.callbacks.DeviceDegrade`,
    which `lab.learner.restoration_learner` adds).
    `valid = 'split:<share>'` holds that share of the training images out (after `data_filters`;
    lab.sources.hold_out), never trained on; `dls.valid_split` lists them. Several sets ('split:0.05; Set5' or a
    list): the first is `dls.valid`, the others `dls.extra_valid` ({label: ImageDataset}, `extra_label`; their
    specs in `dls.extra_valid_specs`).
    """
    built_from = {k: v for k, v in locals().items() if k not in ("device",) and isinstance(v, (str, int, float, dict,
                                                                                            list, type(None)))}
    if degradation_kwargs:
        degradation = build(degradation, scale=scale, **degradation_kwargs)
    mix = open_sources(data, scale, data_lr, filters=data_filters, disk_cache=disk_cache)
    prints = fingerprints(mix)
    specs = valid_sets(valid)
    shares = [parse_split(v) for v in specs]
    split, valid_split, held = next((v for v in shares if v is not None), None), None, None
    if split is not None:
        if valid_lr and shares[0] is not None:
            raise ValueError(f"valid_lr {valid_lr!r} pairs a validation folder with its LR; the images of valid "
                             f"{valid!r} come from the training data (paired by data_lr): leave valid_lr empty")
        mix, held, valid_split = hold_out(mix, split)
    budget = make_budget(len(mix) * repeat, batch_size, epochs, steps, valid_every, save_every)
    items = budget.steps_per_epoch * batch_size if steps else len(mix) * repeat
    train_ds = PatchDataset(mix, scale, patch_size, degradation=degradation, repeat=repeat, seed=seed,
                            channels=channels, augment=augment, items=items, degrade_on=degrade_on)
    if items < batch_size or budget.steps_per_epoch < 1:
        raise ValueError(f"only {items} training patches per epoch ({len(mix)} images x repeat {repeat}) "
                         f"for batch_size {batch_size}: raise repeat or lower batch_size")
    vpipe = None if valid_lr else (train_ds.pipeline if valid_degradation in ("", None) else
                                   build(valid_degradation, scale=scale))
    if vpipe is None and not valid_lr and train_ds.pipeline is None:  # paired training data: clean validation
        vpipe = build("bicubic", scale=scale)
    sets = [held if share is not None else open_source(v, scale, valid_lr if k == 0 else "", with_lr=bool(
        valid_lr and k == 0) or is_benchmark_bicubic(vpipe, scale)) for k, (v, share) in enumerate(zip(specs, shares))]
    valid_ds, *more = [ImageDataset(src.pairs(), scale, channels=channels, max_size=valid_max_size,
                                    degradation=vpipe) for src in sets]
    train_dl = SRDataLoader(train_ds, bs=batch_size, shuffle=True, drop_last=True,
                            num_workers=resolve_workers(num_workers, mix), device=device)
    train_dl.seed, train_dl.epoch = seed, 0  # fastai seeds its shuffle from the global `random`; keep it explicit
    if steps:  # epochs of a step budget; an epoch-based run takes its whole dataset each epoch
        train_dl.budget = budget
        train_dl.set_epoch(0)
    valid_dl = SRDataLoader(valid_ds, bs=1, shuffle=False, num_workers=0, device=device)
    dls = DataLoaders(train_dl, valid_dl)
    dls.scale, dls.channels, dls.budget, dls.sources = scale, channels, budget, [
        {**d, **f} for d, f in zip(mix.describe(), prints)]
    dls.patch_size, dls.valid_every = patch_size, valid_every
    dls.valid_source = sets[0] if shares[0] is not None else specs[0]  # what the final scores judge as 'valid'
    labels = [extra_label(v, vpipe, scale) for v in specs[1:]]
    dls.extra_valid = dict(zip(labels, more))  # scored by lab.callbacks.MoreValidation
    dls.extra_valid_specs = dict(zip(labels, specs[1:]))  # scored whole after training (lab.evaluate.task_sets)
    dls.valid_split = valid_split  # the held-out files (None unless valid is 'split:<share>'), recorded by the run
    dls.built_from = built_from  # the arguments, so a trainer can tell the parameters changed since
    dls.degradation = train_ds.pipeline.config() if train_ds.pipeline is not None else {"preset": "paired"}
    dls.valid_degradation = vpipe.config() if vpipe is not None else {"preset": "paired", "lr": valid_lr}
    return dls
