"""Evaluation: a model on benchmark sets the way papers score it, with the bicubic baseline beside it, and the cost
profile a run records.

When a run is given, each set's per-image table, the model's outputs and the references they were scored against
(the LR input, the baseline's output, the HR) are kept in the run directory, so plots and widgets only read files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from fastprogress.fastprogress import progress_bar
from IPython.display import display
from torch import nn

from lab.data import ImagePair, benchmark_images, find_benchmark, load_source, with_bicubic_lr
from lab.images import tensor_to_uint8, uint8_to_tensor
from lab.infer import infer
from lab.metrics import psnr, ssim
from lab.models import profile
from lab.resize import imresize
from lab.runs import Run, slugify


def score_uint8(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """PSNR-Y and SSIM-Y of two HWC uint8 images with a `scale`-pixel border crop (the field's convention)."""
    a, b = uint8_to_tensor(sr), uint8_to_tensor(hr)
    return float(psnr(a, b, crop_border=scale, y_only=True)[0]), float(ssim(a, b, crop_border=scale, y_only=True)[0])


def evaluate_pairs(model: nn.Module | None, pairs: Sequence[ImagePair], scale: int, *, run: Run | None = None,
                   label: str = "valid", progress: bool = True, **infer_kw: Any) -> pd.DataFrame:
    """Per-image PSNR-Y/SSIM-Y of `model` (and of bicubic upscaling) on (name, hr, lr) image pairs.

    A pair without LR is scored as benchmarks are: HR modcropped, LR made from it by MATLAB bicubic.
    The SR output is clamped and rounded to uint8 before scoring. With `run`, the outputs and the references (LR,
    bicubic, HR) go into its evaluation outputs for set `label` (the references once).
    Returns one row per image; `df.attrs['mean']` holds the column means.
    """
    rows = []
    it = progress_bar(list(pairs), leave=False) if progress else pairs
    for p in it:
        p = with_bicubic_lr(p, scale)
        lr, hr = p.lr, p.hr
        bic = imresize(lr, scale=scale)[: hr.shape[0], : hr.shape[1]]
        row: dict[str, Any] = {"image": p.name, "height": hr.shape[0], "width": hr.shape[1]}
        row["bicubic_psnr_y"], row["bicubic_ssim_y"] = score_uint8(bic, hr, scale)
        if run is not None and not run.eval_reference(label, p.name, "hr").is_file():
            for kind, img in (("lr", lr), ("baseline", bic), ("hr", hr)):
                run.save_eval_reference(label, p.name, kind, img)
        if model is not None:
            t0 = time.perf_counter()
            sr_t = infer(model, uint8_to_tensor(lr), **infer_kw)
            row["seconds"] = time.perf_counter() - t0
            sr = tensor_to_uint8(sr_t.cpu())
            if sr.shape != hr.shape:
                raise ValueError(f"{p.name}: model output {sr.shape} does not match HR {hr.shape} at scale {scale}")
            row["psnr_y"], row["ssim_y"] = score_uint8(sr, hr, scale)
            if run is not None:
                run.save_eval_output(label, p.name, sr)
        rows.append(row)
    df = pd.DataFrame(rows)
    if model is not None:
        df["gain_psnr_y"] = df["psnr_y"] - df["bicubic_psnr_y"]
    df.attrs["mean"] = df.select_dtypes("number").mean().to_dict()
    return df


def evaluate_benchmark(model: nn.Module | None, set_dir: str | os.PathLike, scale: int, *, run: Run | None = None,
                       label: str | None = None, **infer_kw: Any) -> pd.DataFrame:
    """Evaluate on a benchmark set laid out as `<Set>/HR` + `<Set>/LR_bicubic/X<s>` (LR made if absent)."""
    set_dir = find_benchmark(str(set_dir))
    df = evaluate_pairs(model, benchmark_images(set_dir, scale), scale, run=run, label=label or Path(set_dir).name,
                        **infer_kw)
    df.attrs["set"] = Path(set_dir).name
    return df


def summarize(df: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Mean PSNR-Y/SSIM-Y (model, bicubic, gain) of an evaluation table as a flat dict for a run's metrics."""
    keys = ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y", "gain_psnr_y")
    return {f"{prefix}{k}": float(df[k].mean()) for k in keys if k in df}


def set_label(spec: str) -> str:
    """The label a set is recorded under: a benchmark's name, a folder's name, a slug for 'builtin:<names>'."""
    return Path(spec).name if "/" in spec else slugify(spec) if ":" in spec else spec


def parse_sets(sets: str | Sequence[str]) -> dict[str, str]:
    """{label: spec} of a comma-separated list of sets (or a list): 'Set5, builtin:chelsea, data/photos/'."""
    specs = [s.strip() for s in sets.split(",")] if isinstance(sets, str) else [str(s).strip() for s in sets]
    return {set_label(s): s for s in specs if s}


def set_pairs(spec: str, scale: int) -> list[ImagePair]:
    """The image pairs of one set: 'builtin:<names>' photos or an HR folder (LR made the benchmark way), else a
    benchmark set found under $LAB_BENCHMARKS / the reference data."""
    if spec.startswith("builtin") or Path(spec).is_dir():
        return load_source(spec, scale)
    return benchmark_images(find_benchmark(spec), scale)


def evaluate_sets(model: nn.Module, sets: str | Sequence[str] | dict[str, str], scale: int, *,
                  run: Run | None = None, show: bool = True,
                  **infer_kw: Any) -> tuple[dict[str, pd.DataFrame], dict[str, float], list[str]]:
    """Score `model` on each set ({label: spec}, or specs as for `parse_sets`); returns ({label: per-image table},
    summary metrics `<label>_psnr_y` ..., skipped messages).

    A set that is not found is skipped with its reason (a user's clone may not have the benchmarks). With `run`
    each table, the outputs and their references are recorded. `show` displays each table.
    """
    sets = dict(sets) if isinstance(sets, dict) else parse_sets(sets)
    tables: dict[str, pd.DataFrame] = {}
    summary: dict[str, float] = {}
    skipped: list[str] = []
    for label, spec in sets.items():
        try:
            table = evaluate_pairs(model, set_pairs(spec, scale), scale, run=run, label=label, **infer_kw)
        except FileNotFoundError as e:
            skipped.append(f"skipped {spec}: {e}")
            print(skipped[-1])
            continue
        tables[label] = table
        summary.update(summarize(table, f"{label.lower()}_"))
        if run is not None:
            run.save_eval_table(label, table.to_dict(orient="records"))
        if show:
            _display(label, table)
    return tables, summary, skipped


def _display(label: str, table: pd.DataFrame) -> None:
    print(label)
    display(table.round(4))


def record_profile(run: Run | None, model: nn.Module, size: int, device: str | torch.device = "cpu",
                   dtypes: Sequence[str] = ("fp32",), **profile_kw: Any) -> dict[str, Any]:
    """The cost profile of `model` on a (1, in_ch, size, size) input (params, GFLOPs, median forward ms per
    dtype), recorded in `run` when given; returns it. Prints one line."""
    in_ch = getattr(model, "in_ch", 3)
    prof = profile(model, (1, in_ch, size, size), device=device, dtypes=tuple(dtypes), **profile_kw)
    if run is not None:
        run.write_json("profile", prof)
    print(f"{prof['params']:,} params, {prof['gflops']:.3f} GFLOPs, {prof['ms_fp32']:.2f} ms fp32 at {size}x{size} LR")
    return prof
