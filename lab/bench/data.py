"""P3 of `lab bench`: how long a training step waits for its batch, beside the step's own time, read the way
training reads (`lab.data.dataloaders`), for the demo's data with the `bicubic` and `second_order` degradations,
without and with DataLoader workers. Also `lab bench data`: a DIV2K-sized dataset on disk (synthetic 2K images,
generated once under data/bench/): resident memory as the dataset grows, and the data wait with and without the
decoded disk cache.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from fastprogress.fastprogress import progress_bar

from lab import imcache
from lab.bench.common import Sizes, auto_amp
from lab.bench.steps import HandLoop, make_batches
from lab.data import dataloaders
from lab.images import list_images, write_image
from lab.models import create
from lab.utils import PROJECT_ROOT, usable_cores

BENCH_DIR = PROJECT_ROOT / "data" / "bench"
DIV2K_SIZE = (1356, 2040)  # a typical DIV2K HR image (H, W)
PRESETS = ("bicubic", "second_order")


def step_fn(batch: int, patch: int, amp: str, model: str = "edsr_baseline", **model_kw: Any) -> HandLoop:
    """One training step of `model` on pre-made batches (a hand loop: data cost is out of it)."""
    return HandLoop(create(model, scale=2, **model_kw), make_batches(2, batch, patch), total_steps=10**6, amp=amp)


def data_vs_step(data: str = "builtin", *, workers: int = 0, preset: str = "bicubic", batches: int = 20,
                 batch: int = 16, patch: int = 48, amp: str = "none", step: HandLoop | None = None,
                 step_alone_s: float | None = None, **dl_kw: Any) -> dict[str, Any]:
    """Per batch: how long a training step waits for the next batch of a `dataloaders(data, ...)` loader (workers
    prefetching while it runs, on the same cores), beside the step's time, and how much slower the step runs than
    alone (`step_alone_s`; workers decoding and degrading take cores from it: that cost does not show as waiting)."""
    dls = dataloaders(data, scale=2, patch_size=patch, batch_size=batch, steps=batches + 2, valid_every=batches + 2,
                      valid="builtin:chelsea", valid_max_size=64, degradation=preset, num_workers=workers, **dl_kw)
    step = step or step_fn(batch, patch, amp)
    if step_alone_s is None:
        step()
        step_alone_s = statistics.median(_timed(step) for _ in range(3))
    waits, steps = [], []
    it = iter(dls.train)
    next(it), step()  # warm-up: workers started
    for _ in range(batches):
        t = time.perf_counter()
        next(it)
        waits.append(time.perf_counter() - t)
        steps.append(_timed(step))
    del it
    wait, st = statistics.median(waits), statistics.median(steps)
    return {"data": data, "preset": preset, "workers": workers, "batch": batch, "patch": patch,
            "amp": "fp32" if amp == "none" else amp, "data_wait_ms": wait * 1e3,
            "mean_wait_ms": statistics.fmean(waits) * 1e3,
            "step_ms": st * 1e3, "data_fraction_of_step": wait / st, "step_alone_ms": step_alone_s * 1e3,
            "step_slowdown": st / step_alone_s, **{k: v for k, v in dl_kw.items() if k == "disk_cache"}}


FEED_PRESETS = {"bicubic": {}, "second_order": {}, "realsr": {"kernel_bank": "builtin", "noise_bank": "builtin"}}


def feed_rate(preset: str, degrade_on: str = "loader", workers: int = 0, batches: int = 8, batch: int = 16,
              patch: int = 48, data: str = "builtin", device: str | None = None) -> dict[str, Any]:
    """Training patches per second one loader feeds with `preset`, degraded in the loader (`workers` processes)
    or on `device` in batches (`degrade_on='device'`: decode and crop in the loader, `finish_batch` on the batch),
    nothing else running; a preset that cannot be built or degraded that way gives its error."""
    try:
        dls = dataloaders(data, scale=2, patch_size=patch, batch_size=batch, steps=batches + 1,
                          valid_every=batches + 1, valid="builtin:chelsea", valid_max_size=64, degradation=preset,
                          degradation_kwargs=FEED_PRESETS.get(preset) or None, num_workers=workers,
                          degrade_on=degrade_on, device=device)
    except (ValueError, OSError) as e:
        return {"preset": preset, "degrade_on": degrade_on, "workers": workers, "error": str(e)}
    ds = dls.train.dataset
    cuda = torch.cuda.is_available() and str(device or "").startswith("cuda")
    it = iter(dls.train)
    next(it)  # warm-up: workers started
    t = time.perf_counter()
    for _ in range(batches):
        b = next(it)
        if ds.degrade_on == "device":
            ds.finish_batch(*b)
        if cuda:
            torch.cuda.synchronize()
    took = time.perf_counter() - t
    del it
    return {"preset": preset, "degrade_on": degrade_on, "workers": workers, "device": str(dls.device or "cpu"),
            "batch": batch, "patch": patch, "patches_per_s": batches * batch / took}


def bench_feed(sizes: Sizes, data: str = "builtin") -> list[dict[str, Any]]:
    """P3b: patches/s per preset degraded in the loader (no workers, and as many workers as cores) and on the
    training device in batches (CUDA when present, else the CPU)."""
    device = "cuda" if torch.cuda.is_available() else None
    workers = min(2, usable_cores())
    kw = dict(batches=sizes.data_batches, batch=sizes.batch, patch=sizes.patch, data=data)
    return [feed_rate(p, "loader", w, **kw) for p in FEED_PRESETS for w in (0, workers)] + \
        [feed_rate(p, "device", 0, device=device, **kw) for p in FEED_PRESETS]


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_data_cost(sizes: Sizes, data: str = "builtin") -> list[dict[str, Any]]:
    """P3: data wait vs step for the demo's data (`data`), each preset without workers and with as many workers as
    the cores (DataLoader worker processes on the cores the step uses)."""
    amp = auto_amp()
    step = step_fn(sizes.batch, sizes.patch, amp, **sizes.model_kw)
    step()
    alone = statistics.median(_timed(step) for _ in range(3))
    workers = min(2, usable_cores())
    return [data_vs_step(data, workers=w, preset=p, batches=sizes.data_batches, batch=sizes.batch, patch=sizes.patch,
                         amp=amp, step=step, step_alone_s=alone) for p in PRESETS for w in (0, workers)] + \
        bench_feed(sizes, data)


# --- `lab bench data`: a DIV2K-sized set on disk


def synthetic_image(seed: int, size: tuple[int, int] = DIV2K_SIZE) -> np.ndarray:
    """A photo-like 2K image: smooth colour fields, edges and fine noise (compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    h, w = size
    small = rng.integers(0, 256, (h // 64 + 2, w // 64 + 2, 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):  # hard edges
        y, x, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(20, 300))
        cv2.circle(img, (x, y), r, tuple(float(v) for v in rng.integers(0, 256, 3)), -1)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(n: int, folder: str | os.PathLike = BENCH_DIR / "div2k_synthetic",
                 size: tuple[int, int] = DIV2K_SIZE) -> Path:
    """`n` synthetic 2K PNGs in `folder` (kept between runs; only missing ones are written)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [i for i in range(n) if not (folder / f"{i:04d}.png").is_file()]
    for i in progress_bar(todo, leave=False) if todo else []:
        write_image(folder / f"{i:04d}.png", synthetic_image(i, size))
    return folder


def _rss_mb() -> float:
    """This process's resident memory (VmRSS) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _subset(folder: Path, n: int) -> list[str]:
    names = [p.name for p in list_images(folder)]
    return names[n:]  # data_filters skip list: everything after the first n


def rss_growth(folder: Path, counts: tuple[int, ...], batches: int = 40, disk_cache: bool = False,
               batch: int = 16, patch: int = 48) -> list[dict[str, Any]]:
    """RSS growth of reading `batches` batches (no workers, so the growth is this process's) from the first
    n images of `folder`, for each n in `counts`."""
    rows = []
    for n in counts:
        before = _rss_mb()
        dls = dataloaders(str(folder), scale=2, patch_size=patch, batch_size=batch, steps=batches, valid_every=batches,
                          valid="builtin:chelsea", valid_max_size=64, data_filters={"skip": _subset(folder, n)},
                          disk_cache=disk_cache, num_workers=0)
        for i, _ in enumerate(dls.train):
            if i + 1 >= batches:
                break
        rows.append({"images": n, "disk_cache": disk_cache, "rss_growth_mb": _rss_mb() - before})
        del dls
    return rows


def bench_data(n: int = 800, counts: tuple[int, ...] = (100, 400, 800), workers: int = 2, batches: int = 20,
               folder: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The DIV2K-sized data benchmark: RSS growth at `counts` images, then data wait vs step with `workers`,
    without and with the disk cache (built first, timed)."""
    folder = make_dataset(n, folder or BENCH_DIR / "div2k_synthetic")
    counts = tuple(c for c in counts if c <= n) or (n,)
    amp = auto_amp()
    wait = dict(workers=workers, batches=batches, amp=amp, data_filters={"skip": _subset(folder, n)})
    rows: list[dict[str, Any]] = [dict(r, bench="rss") for r in rss_growth(folder, counts)]
    rows.append(dict(data_vs_step(str(folder), disk_cache=False, **wait), bench="wait", images=n))
    t = time.perf_counter()
    built = imcache.build(folder, progress=False)
    rows.append({"bench": "cache", "images": n, "built_s": time.perf_counter() - t, "new": built["cached"],
                 "gib": built["bytes"] / 2**30})
    rows += [dict(r, bench="rss") for r in rss_growth(folder, counts, disk_cache=True)]
    rows.append(dict(data_vs_step(str(folder), disk_cache=True, **wait), bench="wait", images=n))
    rows.append(dict(data_vs_step(str(folder), disk_cache=True, preset="second_order", **wait), bench="wait",
                     images=n))
    return rows
