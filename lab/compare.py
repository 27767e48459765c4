"""Inference runs side by side, without ground truth: grids of the same crops of each run's output, with bicubic
upscaling of the input as the reference picture and a no-reference measure in each title (the high-frequency
energy of the crop over bicubic's, `lab.metrics.hf_energy_ratio`: above 1 sharper than bicubic, which cannot tell
detail from noise or artifacts), and a table of the runs' recorded measures (flicker for videos)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lab import infer_records
from lab.images import read_image, uint8_to_tensor
from lab.metrics import hf_energy_ratio
from lab.plots import image_grid, save
from lab.runs import Run, find
from lab.utils import atomic_write_text


def detailed_box(img: np.ndarray, side: int = 96) -> tuple[int, int, int, int]:
    """(y, x, h, w) of the `side` px window with the most luma variation (on a half-window grid): where outputs
    differ most."""
    g = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    h, w = g.shape
    side = min(side, h, w)
    step = max(side // 2, 1)
    best, at = -1.0, (0, 0)
    for top in range(0, h - side + 1, step):
        for left in range(0, w - side + 1, step):
            s = float(g[top:top + side, left:left + side].std())
            if s > best:
                best, at = s, (top, left)
    return at[0], at[1], side, side


def _hf(crop: np.ndarray, ref: np.ndarray) -> float:
    return float(hf_energy_ratio(uint8_to_tensor(crop), uint8_to_tensor(ref))[0])


def compare_runs(run_ids: Sequence[int | str], out: str | os.PathLike, *, box: Sequence[int] | None = None,
                 side: int = 96, images: Sequence[str] = (), runs_root: str | os.PathLike | None = None
                 ) -> tuple[list[Path], pd.DataFrame]:
    """Write `<out>/<picture>.png` for every picture the inference runs share (or `images`): bicubic, then each
    run's output, all on the same crop (`box` (y, x, h, w), default the most detailed `side` px window of the
    bicubic picture). Returns (the PNGs, a table of the runs: images, images/s, hf_vs_bicubic, flicker)."""
    if len(run_ids) < 2:
        raise ValueError(f"lab compare needs two or more inference runs, got {list(run_ids)}")
    runs = [find(r, runs_root) for r in run_ids]
    plain = [r.name for r in runs if not infer_records.is_inference(r)]
    if plain:
        raise ValueError(f"{', '.join(plain)}: not inference runs (lab infer makes them); compare evaluated runs in "
                         "the ledger notebook")
    recs = [infer_records.records(r) for r in runs]
    shared = sorted(set.intersection(*(set(r) for r in recs)))
    names = list(images) or shared
    missing = [n for n in names if n not in shared]
    if missing or not names:
        raise ValueError(f"the runs share no picture{' ' + repr(missing[0]) if missing else ''}: run them on the "
                         "same inputs (pictures they share: " + (", ".join(shared[:5]) or "none") + ")")
    out = Path(out)
    written = []
    for name in names:
        refs = infer_records.references(runs[0], infer_records.LABEL, name)
        if not refs:
            raise FileNotFoundError(f"the input of {name!r} ({recs[0][name].get('input')}) cannot be read any more")
        bic = refs["bicubic"]
        b = tuple(box) if box else detailed_box(bic, side)
        y, x, h, w = b
        panels: dict[str, np.ndarray] = {"bicubic (reference)": bic}
        for run in runs:
            path = infer_records.output_file(run, infer_records.LABEL, name)
            if path is None:
                raise FileNotFoundError(f"run {run.name}: its output of {name!r} is gone from "
                                        f"{recs[0][name].get('output')}")
            img = read_image(path)
            if img.shape != bic.shape:
                raise ValueError(f"run {run.name}: its output of {name!r} is {img.shape[1]}x{img.shape[0]}, the "
                                 f"others {bic.shape[1]}x{bic.shape[0]}: compare runs made at the same size")
            hf = _hf(img[y:y + h, x:x + w], bic[y:y + h, x:x + w])
            panels[f"#{run.id} {run.meta.get('title', run.name)}\nHF {hf:.2f}x bicubic"] = img
        fig = image_grid(panels, b, cols=min(len(panels), 4))
        fig.suptitle(f"{name}: crop y={y} x={x} {h}x{w}", fontsize=8)
        written.append(save(fig, out / f"{name}.png"))
    table = pd.DataFrame([_row(r) for r in runs])
    atomic_write_text(out / "compare.csv", table.to_csv(index=False))
    return written, table


def _row(run: Run) -> dict[str, Any]:
    m = run.metrics
    return {"id": run.id, "title": run.meta.get("title"), "model": run.params.get("model"),
            "size": run.params.get("size") or f"x{run.params.get('scale')}", "images": m.get("images"),
            "images_per_s": m.get("images_per_s"), "hf_vs_bicubic": m.get("hf_vs_bicubic"),
            "flicker": m.get("flicker"), "out": m.get("out")}
