"""`lab bench data`: a DIV2K-sized dataset on disk (synthetic 2K images, generated once under data/bench/), read the
way training reads it: resident memory as the dataset grows, and the time a training step waits for its batch with
DataLoader workers, with and without the decoded disk cache.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastprogress.fastprogress import progress_bar

from lab import imcache
from lab.bench import train_step_fn
from lab.data import dataloaders
from lab.images import list_images, write_image
from lab.utils import PROJECT_ROOT

BENCH_DIR = PROJECT_ROOT / "data" / "bench"
DIV2K_SIZE = (1356, 2040)  # a typical DIV2K HR image (H, W)


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


def data_vs_step(folder: Path, n: int, workers: int = 2, disk_cache: bool = False, batches: int = 20,
                 batch: int = 16, patch: int = 48, preset: str = "bicubic") -> dict[str, Any]:
    """Per batch: how long a bf16 EDSR-baseline training step waits for the next batch (workers prefetching
    while it runs, on the same cores), beside the step's time, and how much slower the step runs than alone
    (workers decoding and degrading take cores from it: that cost does not show as waiting)."""
    dls = dataloaders(str(folder), scale=2, patch_size=patch, batch_size=batch, steps=batches + 2,
                      valid_every=batches + 2, valid="builtin:chelsea", valid_max_size=64, degradation=preset,
                      data_filters={"skip": _subset(folder, n)}, disk_cache=disk_cache, num_workers=workers)
    step = train_step_fn("edsr_baseline", 2, batch, patch, "bf16")
    step()
    alone = []
    for _ in range(5):
        t = time.perf_counter()
        step()
        alone.append((time.perf_counter() - t) * 1000)
    waits, steps = [], []
    it = iter(dls.train)
    next(it), step()  # warm-up: workers started, kernels compiled
    for _ in range(batches):
        t = time.perf_counter()
        next(it)
        waits.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        step()
        steps.append((time.perf_counter() - t) * 1000)
    wait, st = statistics.median(waits), statistics.median(steps)
    return {"images": n, "preset": preset, "workers": workers, "disk_cache": disk_cache, "data_wait_ms": wait,
            "mean_wait_ms": statistics.fmean(waits), "step_ms": st, "data_fraction_of_step": wait / st,
            "step_alone_ms": statistics.median(alone), "step_slowdown": st / statistics.median(alone)}


def bench_data(n: int = 800, counts: tuple[int, ...] = (100, 400, 800), workers: int = 2, batches: int = 20,
               folder: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The data benchmark: RSS growth at `counts` images, then data wait vs step with `workers`, without and with
    the disk cache (built first, timed)."""
    folder = make_dataset(n, folder or BENCH_DIR / "div2k_synthetic")
    counts = tuple(c for c in counts if c <= n) or (n,)
    rows: list[dict[str, Any]] = [dict(r, bench="rss") for r in rss_growth(folder, counts)]
    rows.append(dict(data_vs_step(folder, n, workers, False, batches), bench="wait"))
    t = time.perf_counter()
    built = imcache.build(folder, progress=False)
    rows.append({"bench": "cache", "images": n, "built_s": time.perf_counter() - t, "new": built["cached"],
                 "gib": built["bytes"] / 2**30})
    rows += [dict(r, bench="rss") for r in rss_growth(folder, counts, disk_cache=True)]
    rows.append(dict(data_vs_step(folder, n, workers, True, batches), bench="wait"))
    rows.append(dict(data_vs_step(folder, n, workers, True, batches, preset="second_order"), bench="wait"))
    return rows
