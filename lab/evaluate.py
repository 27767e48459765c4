"""Evaluation: a model on a benchmark set the way papers score it, with the bicubic baseline beside it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from lab.images import tensor_to_uint8, uint8_to_tensor, write_image


def score_uint8(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """PSNR-Y and SSIM-Y of two HWC uint8 images with a `scale`-pixel border crop (the field's convention)."""
    from lab.metrics import psnr, ssim

    a, b = uint8_to_tensor(sr), uint8_to_tensor(hr)
    return float(psnr(a, b, crop_border=scale, y_only=True)[0]), float(ssim(a, b, crop_border=scale, y_only=True)[0])


def evaluate_pairs(model: nn.Module | None, pairs: Sequence[Any], scale: int, *, save_dir: str | os.PathLike | None = None,
                   progress: bool = True, **infer_kw: Any) -> pd.DataFrame:
    """Per-image PSNR-Y/SSIM-Y of `model` (and of bicubic upscaling) on (name, hr, lr) image pairs.

    A pair without LR is scored as benchmarks are: HR modcropped, LR made from it by MATLAB bicubic.
    The SR output is clamped and rounded to uint8 before scoring; `save_dir` receives `<name>.png`.
    Returns one row per image; `df.attrs['mean']` holds the column means.
    """
    from fastprogress.fastprogress import progress_bar

    from lab.data import with_bicubic_lr
    from lab.infer import infer
    from lab.resize import imresize

    rows = []
    it = progress_bar(list(pairs), leave=False) if progress else pairs
    for p in it:
        p = with_bicubic_lr(p, scale)
        lr, hr = p.lr, p.hr
        bic = imresize(lr, scale=scale)[: hr.shape[0], : hr.shape[1]]
        row: dict[str, Any] = {"image": p.name, "height": hr.shape[0], "width": hr.shape[1]}
        row["bicubic_psnr_y"], row["bicubic_ssim_y"] = score_uint8(bic, hr, scale)
        if model is not None:
            t0 = time.perf_counter()
            sr_t = infer(model, uint8_to_tensor(lr), **infer_kw)
            row["seconds"] = time.perf_counter() - t0
            sr = tensor_to_uint8(sr_t.cpu())
            if sr.shape != hr.shape:
                raise ValueError(f"{p.name}: model output {sr.shape} does not match HR {hr.shape} at scale {scale}")
            row["psnr_y"], row["ssim_y"] = score_uint8(sr, hr, scale)
            if save_dir is not None:
                write_image(Path(save_dir) / f"{p.name}.png", sr)
        rows.append(row)
    df = pd.DataFrame(rows)
    if model is not None:
        df["gain_psnr_y"] = df["psnr_y"] - df["bicubic_psnr_y"]
    df.attrs["mean"] = df.select_dtypes("number").mean().to_dict()
    return df


def evaluate_benchmark(model: nn.Module | None, set_dir: str | os.PathLike, scale: int, *,
                       save_dir: str | os.PathLike | None = None, **infer_kw: Any) -> pd.DataFrame:
    """Evaluate on a benchmark set laid out as `<Set>/HR` + `<Set>/LR_bicubic/X<s>` (LR made if absent)."""
    from lab.data import benchmark_images, find_benchmark

    set_dir = find_benchmark(str(set_dir))
    df = evaluate_pairs(model, benchmark_images(set_dir, scale), scale, save_dir=save_dir, **infer_kw)
    df.attrs["set"] = Path(set_dir).name
    return df


def summarize(df: pd.DataFrame, prefix: str = "") -> dict[str, float]:
    """Mean PSNR-Y/SSIM-Y (model, bicubic, gain) of an evaluation table as a flat dict for metrics.json."""
    keys = ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y", "gain_psnr_y")
    return {f"{prefix}{k}": float(df[k].mean()) for k in keys if k in df}
