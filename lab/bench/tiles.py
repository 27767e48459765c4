"""P5 of `lab bench`: tiled inference (`lab.infer.infer(model, lr, tile=T)`, its default context: the model's
receptive-field radius) of a 3840x2160 input at x2, for EDSR-baseline and RCAN: the largest difference to untiled
inference and the pixels that differ after rounding to 8 bit, time and peak memory, per tile size.

Sizes are chosen by the clock, and the output says which were used: untiled inference runs on the largest centre
crop of the frame whose estimated time (from a timed small forward) fits the time limit; the tiled runs cover the
whole frame when their estimate fits, else the largest centre crop that fits and that every timed tile size cuts
both ways, the whole frame's time extrapolated by the tile pixels it takes (marked as an estimate). Peak memory is
the process's resident high-water mark above where it started (reset before each run, freed heap returned to the
system first), so it includes oneDNN's scratch space.
"""

from __future__ import annotations

import ctypes
import math
import time
from typing import Any, Callable, Sequence

import torch

from lab.bench.common import Sizes
from lab.bench.data import synthetic_image
from lab.infer import infer, receptive_field
from lab.models import create

TILES = (128, 256, 512)  # LR tile sides timed
CROPS = (1, 2, 4, 8, 16, 32)  # centre crops of the frame: 1/k of each side


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_memory(fn: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """(result, seconds, peak resident MiB above the start) of `fn()`; the peak is None where Linux's
    /proc/self/clear_refs (which resets the high-water mark) is not available."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the start is what is really held
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        start = _status_kb("VmRSS")
    except OSError:
        start = None
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    hwm = _status_kb("VmHWM")
    return out, seconds, None if start is None or hwm is None else (hwm - start) / 1024


def frame(size: tuple[int, int] = (2160, 3840), seed: int = 0) -> torch.Tensor:
    """A photo-like LR input of `size` (H, W). Shape: (1, 3, H, W) in [0, 1]."""
    img = synthetic_image(seed, size)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


def centre(x: torch.Tensor, k: int = 1, side: int | None = None) -> torch.Tensor:
    """The centre 1/k of each side of `x`, or its centre `side` x `side` square."""
    h, w = x.shape[-2:]
    ch, cw = (min(h, side), min(w, side)) if side else (max(1, h // k), max(1, w // k))
    return x[..., (h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]


def seconds_per_pixel(net: torch.nn.Module, side: int = 64) -> float:
    """Untiled inference seconds per LR pixel, from a timed forward at `side` x `side` (after one untimed)."""
    x = torch.rand(1, 3, side, side)
    infer(net, x)
    t = time.perf_counter()
    infer(net, x)
    return (time.perf_counter() - t) / side**2


def compare(net: torch.nn.Module, x: torch.Tensor, tile: int) -> dict[str, Any]:
    """Untiled against tiled inference of `x` at `tile`: max |difference|, 8-bit pixels that differ, both times
    and peak memories."""
    infer(net, torch.rand(1, x.shape[1], tile, tile))  # warm-up: oneDNN builds its kernels for the tile's shape
    whole, t_whole, m_whole = peak_memory(lambda: infer(net, x))
    tiles, t_tiled, m_tiled = peak_memory(lambda: infer(net, x, tile=tile, progress=False))
    q = lambda y: (y.clamp(0, 1) * 255).round()  # noqa: E731  (the 8-bit image a user saves)
    levels = (q(whole) - q(tiles)).abs()
    grid = tile_grid(x.shape[-2:], tile, receptive_field(net))
    return {"input": f"{x.shape[-1]}x{x.shape[-2]}", "tile": tile, "tiles": f"{grid[1]}x{grid[0]}",
            "max_abs_diff": float((whole - tiles).abs().max()),
            "pixels_differing_8bit": int((levels > 0).any(1).sum()), "max_8bit_levels": int(levels.max()),
            "output_pixels": int(whole[0, 0].numel()), "untiled_s": t_whole,
            "tiled_s": t_tiled, "untiled_peak_mb": m_whole, "tiled_peak_mb": m_tiled}


def tile_grid(hw: Sequence[int], tile: int, rf: int) -> tuple[int, int]:
    """How many tiles `lab.infer.tiled` cuts an input of `hw` into, per side (cores of tile - 2 rf px)."""
    return tuple(1 if n <= tile else math.ceil(n / (tile - 2 * rf)) for n in hw)  # type: ignore[return-value]


def _tiled_px(hw: Sequence[int], tile: int, rf: int) -> int:
    """LR pixels a tiled pass computes (every tile with its context)."""
    gy, gx = tile_grid(hw, tile, rf)
    return gy * gx * min(tile, hw[0]) * min(tile, hw[1])


def _work_px(hw: Sequence[int], tile: int, rf: int) -> int:
    """LR pixels an untiled plus a tiled pass compute."""
    return hw[0] * hw[1] + _tiled_px(hw, tile, rf)


def _min_split(tile: int, rf: int) -> int:
    """The side of the smallest square input `tile` cuts into several tiles each way."""
    return max(tile + 1, 2 * (tile - 2 * rf))


def bench_model(name: str, sizes: Sizes, full: torch.Tensor, tiles: Sequence[int] = TILES) -> dict[str, Any]:
    """P5 for one model on the input `full` (see the module docstring); `--quick` compares on a small crop and
    times only that."""
    torch.manual_seed(0)
    net = create(name, scale=2, **sizes.model_kw).eval()
    rf = receptive_field(net)
    spp = seconds_per_pixel(net)
    budget = sizes.tile_seconds
    # the compared tile: cores at least half the tile; --quick: the cheapest to cut a small square both ways
    allowed = [t for t in (64, 96, 128, 192, 256, 384, 512, 1024) if t > 2 * rf + 8]
    small = (min(allowed[:4], key=lambda t: _work_px((_min_split(t, rf),) * 2, t, rf)) if sizes.quick else
             next(t for t in allowed if t >= 4 * rf))
    side = _min_split(small, rf)
    crops = [centre(full, k) for k in CROPS if min(centre(full, k).shape[-2:]) >= side]
    crops.append(centre(full, side=side))
    fits = [c for c in crops if spp * _work_px(c.shape[-2:], small, rf) <= budget]
    crop = fits[0] if fits else crops[-1]
    cmp = compare(net, crop, small)
    region, tiles, skipped = sweep_region(full, [t for t in tiles if t > 2 * rf] if not sizes.quick else [], rf, spp,
                                          budget)
    whole_fits = region is full
    timed = []
    for t in tiles:
        infer(net, torch.rand(1, region.shape[1], t, t))  # warm-up for this tile shape
        _, s, mb = peak_memory(lambda t=t: infer(net, region, tile=t, progress=False))
        # the frame's time: this region's seconds per tile pixel computed, times the frame's tile pixels
        to_frame = _tiled_px(full.shape[-2:], t, rf) / _tiled_px(region.shape[-2:], t, rf)
        timed.append({"tile": t, "seconds": s, "peak_mb": mb, "frame_seconds": s * to_frame,
                      "frame_seconds_estimated": not whole_fits})
    size, rsize = f"{crop.shape[-1]}x{crop.shape[-2]}", f"{region.shape[-1]}x{region.shape[-2]}"
    why = (f"the largest centre crop whose untiled and tiled runs fit {budget:.0f} s" if fits else
           f"the smallest crop tiles of {small} cut both ways; it takes longer than {budget:.0f} s")
    return {"model": name, "receptive_field_px": rf, "frame": f"{sizes.frame[1]}x{sizes.frame[0]}",
            "compared_on": f"{size} ({why})",
            "tiled_on": ("none (--quick)" if sizes.quick else "none" if not tiles else "the whole frame" if whole_fits
                         else f"a {rsize} centre crop (the largest the sweep fits in {budget:.0f} s that each tile "
                         "size cuts both ways); the whole frame's seconds extrapolated by the tile pixels it takes, "
                         "peak memory is the crop's"),
            "tiles_not_timed": skipped, "untiled_s_per_mpx": spp * 1e6, "compare": cmp, "tiles": timed}


def sweep_region(full: torch.Tensor, tiles: list[int], rf: int, spp: float,
                 budget: float) -> tuple[torch.Tensor, list[int], dict[int, str]]:
    """Where to time the tile sizes: the whole frame, else the largest centre crop (or square) whose tiled passes
    fit `budget` seconds and that every timed tile cuts both ways; a tile size that only fits on a region over
    budget is left out, with the seconds its smallest region would take."""
    skipped: dict[int, str] = {}
    regions = [centre(full, k) for k in CROPS]
    while tiles:
        side = _min_split(max(tiles), rf)
        ok = [r for r in [*regions, centre(full, side=side)] if min(r.shape[-2:]) >= side and
              spp * sum(_tiled_px(r.shape[-2:], t, rf) for t in tiles) <= budget]
        if ok:
            return ok[0], tiles, skipped
        need = spp * _work_px((_min_split(tiles[-1], rf),) * 2, tiles[-1], rf)
        skipped[tiles[-1]] = f"a region it cuts both ways takes about {need:.0f} s of the {budget:.0f} s limit"
        tiles = tiles[:-1]
    return regions[-1], [], skipped


def bench_tiles(sizes: Sizes) -> list[dict[str, Any]]:
    """P5 for each of `sizes.tile_models`."""
    full = frame(sizes.frame)
    return [bench_model(m, sizes, full) for m in sizes.tile_models]
