"""Evaluation: a model on benchmark sets the way papers score it, on inputs degraded the way the task degrades them,
with the baseline that means something for the task beside it (bicubic for SR, the degraded input otherwise), and
the cost profile a run records.

When a run is given, each set's per-image table, the model's outputs and the references they were scored against
(the LR input, the baseline's output, the HR) are kept in the run directory, so plots and widgets only read files.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import psutil
import torch
from fastprogress.fastprogress import progress_bar
from IPython.display import display
from torch import nn

from lab.data import degrade_pair, is_benchmark_bicubic
from lab.degrade import Pipeline, build
from lab.images import tensor_to_uint8, uint8_to_tensor
from lab.infer import infer
from lab.metrics import psnr, ssim
from lab.models import profile
from lab.resize import imresize
from lab.runs import Run, scan
from lab.sources import KNOWN_BENCHMARKS, ImagePair, ImageSource, find_benchmark, image_seed, load_source
from lab.utils import slugify, user_path


def score_uint8(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """PSNR-Y and SSIM-Y of two HWC uint8 images with a `scale`-pixel border crop (the field's convention)."""
    a, b = uint8_to_tensor(sr), uint8_to_tensor(hr)
    return float(psnr(a, b, crop_border=scale, y_only=True)[0]), float(ssim(a, b, crop_border=scale, y_only=True)[0])


def psnr_rgb_uint8(sr: np.ndarray, hr: np.ndarray) -> float:
    """PSNR over all RGB values of two HWC uint8 images, no border shave: the course yardstick of 003 ("計算Set5的
    PSNR-RGB"), which the papers' PSNR-Y does not reproduce."""
    return float(psnr(uint8_to_tensor(sr), uint8_to_tensor(hr), crop_border=0, y_only=False)[0])


def baseline_kind(scale: int) -> str:
    """What a model is compared with: MATLAB-bicubic upscaling of its input for SR, the input itself otherwise."""
    return "bicubic" if scale > 1 else "degraded input"


def _pipeline(degradation: Any, scale: int) -> Pipeline | None:
    return None if degradation in (None, "") else build(degradation, scale=scale)


def evaluate_pairs(model: nn.Module | None, pairs: Sequence[ImagePair], scale: int, *, degradation: Any = None,
                   seed: int = 0, run: Run | None = None, label: str = "valid", progress: bool = True,
                   **infer_kw: Any) -> pd.DataFrame:
    """Per-image PSNR-Y/SSIM-Y of `model` and of the task's baseline on (name, hr, lr) image pairs, and beside them
    PSNR-RGB on the whole image (`psnr_rgb`, `baseline_psnr_rgb`: all channels, no border shave).

    A pair without LR is degraded the way the task degrades: `degradation` (a preset, config or Pipeline; None:
    MATLAB bicubic, as benchmarks) with a seed fixed per image and set (`image_seed(name, label, seed)`, in the
    `lr_seed` column), so every run is scored on identical inputs. The baseline is bicubic upscaling of the input
    for SR and the input itself for same-size restoration (`baseline_*` columns, `gain_psnr_y` over it); a
    baseline that equals the HR (a degradation that did nothing) is not a number (NaN), never infinite. The
    output is clamped and rounded to uint8 before scoring. With `run`, the outputs and the references (input,
    baseline, HR) go into its evaluation outputs for set `label` (the references once).
    Returns one row per image; `df.attrs['mean']` holds the column means, `df.attrs['baseline']` its kind.
    """
    pipe = _pipeline(degradation, scale)
    rows = []
    it = progress_bar(list(pairs), leave=False) if progress else pairs
    for p in it:
        lr_seed = None if p.lr is not None or is_benchmark_bicubic(pipe, scale) else image_seed(p.name, label, seed)
        p = degrade_pair(p, scale, pipe, lr_seed or 0)
        lr, hr = p.lr, p.hr
        base = imresize(lr, scale=scale)[: hr.shape[0], : hr.shape[1]] if scale > 1 else lr
        row: dict[str, Any] = {"image": p.name, "height": hr.shape[0], "width": hr.shape[1], "lr_seed": lr_seed}
        row["baseline_psnr_y"], row["baseline_ssim_y"] = score_uint8(base, hr, scale)
        row["baseline_psnr_rgb"] = psnr_rgb_uint8(base, hr)
        if not math.isfinite(row["baseline_psnr_y"]):
            warnings.warn(f"{label}/{p.name}: the degraded input equals the HR, so its baseline PSNR is undefined "
                          "(NaN); check the degradation", stacklevel=2)
            row["baseline_psnr_y"] = float("nan")
        if not math.isfinite(row["baseline_psnr_rgb"]):
            row["baseline_psnr_rgb"] = float("nan")
        if run is not None and not run.eval_reference(label, p.name, "hr").is_file():
            for kind, img in (("lr", lr), ("baseline", base), ("hr", hr)):
                run.save_eval_reference(label, p.name, kind, img)
        if model is not None:
            t0 = time.perf_counter()
            sr_t = infer(model, uint8_to_tensor(lr), **infer_kw)
            row["seconds"] = time.perf_counter() - t0
            sr = tensor_to_uint8(sr_t.cpu())
            if sr.shape != hr.shape:
                raise ValueError(f"{p.name}: model output {sr.shape} does not match HR {hr.shape} at scale {scale}")
            row["psnr_y"], row["ssim_y"] = score_uint8(sr, hr, scale)
            row["psnr_rgb"] = psnr_rgb_uint8(sr, hr)
            if run is not None:
                run.save_eval_output(label, p.name, sr)
        rows.append(row)
    df = pd.DataFrame(rows)
    if model is not None:
        df["gain_psnr_y"] = df["psnr_y"] - df["baseline_psnr_y"]
    df.attrs["mean"] = df.select_dtypes("number").mean().to_dict()
    df.attrs["baseline"] = baseline_kind(scale)
    return df


def evaluate_benchmark(model: nn.Module | None, set_dir: str | os.PathLike, scale: int, *, run: Run | None = None,
                       label: str | None = None, degradation: Any = None, **infer_kw: Any) -> pd.DataFrame:
    """Evaluate on a benchmark set laid out as `<Set>/HR` + `<Set>/LR_bicubic/X<s>` (its LR files when the
    degradation is plain bicubic, else its HR degraded)."""
    set_dir = find_benchmark(str(set_dir))
    pipe = _pipeline(degradation, scale)
    pairs = load_source(str(set_dir), scale, with_lr=is_benchmark_bicubic(pipe, scale))
    df = evaluate_pairs(model, pairs, scale, run=run, label=label or Path(set_dir).name, degradation=pipe,
                        **infer_kw)
    df.attrs["set"] = Path(set_dir).name
    return df


SUMMARY_KEYS = ("psnr_y", "ssim_y", "baseline_psnr_y", "baseline_ssim_y", "gain_psnr_y", "psnr_rgb",
                "baseline_psnr_rgb")


def summarize(df: pd.DataFrame, prefix: str = "") -> dict[str, Any]:
    """Mean PSNR-Y/SSIM-Y (model, baseline, gain) and PSNR-RGB (model, baseline) of an evaluation table as a flat
    dict for a run's metrics, with the baseline's kind (`<prefix>baseline`)."""
    out: dict[str, Any] = {f"{prefix}{k}": float(df[k].mean()) for k in SUMMARY_KEYS if k in df}
    if "baseline" in df.attrs:
        out[f"{prefix}baseline"] = df.attrs["baseline"]
    return out


def set_label(spec: str) -> str:
    """The label a set is recorded under: a benchmark's name, a folder's name, a slug for 'builtin:<names>', with
    its degradation after '@' ('Set5@blur_bicubic')."""
    name, _, deg = spec.partition("@")
    base = Path(name).name if "/" in name else slugify(name) if ":" in name else name
    return f"{base}@{deg}" if deg else base


def parse_sets(sets: str | Sequence[str], default: Any = None) -> dict[str, tuple[str, Any]]:
    """{label: (spec, degradation)} of a comma-separated list of sets (or a list): 'Set5, Set5@blur_bicubic,
    builtin:chelsea, data/photos/'. `<set>@<preset>` degrades the set's HR with that preset; a set without '@'
    takes `default` (None: the benchmark's bicubic LR)."""
    specs = [s.strip() for s in sets.split(",")] if isinstance(sets, str) else [str(s).strip() for s in sets]
    out = {}
    for s in [s for s in specs if s]:
        name, _, deg = s.partition("@")
        out[set_label(s)] = (name.strip(), deg.strip() or default)
    return out


def task_sets(valid: str | ImageSource, eval_sets: str, scale: int, valid_degradation: Any,
              more: dict[str, str] | None = None) -> dict[str, tuple[str, Any]]:
    """What a training run is judged on: its validation images (a spec, or the images a split held out:
    `dls.valid_source`) degraded as its validation was, then `eval_sets`, then its further validation sets (`more`:
    `dls.extra_valid_specs`, {label: spec}) degraded as its validation was, whole, under the labels their history
    columns have (one that an eval set already scores is not scored twice).

    For SR a plain set name is the published benchmark (bicubic LR); for same-size restoration (scale 1) a plain
    name has no LR to offer, so it is degraded by the validation degradation and labelled with it.
    """
    out = {"valid": (valid, valid_degradation)}
    for label, (spec, deg) in parse_sets(eval_sets).items():
        if deg is None and scale == 1:
            name = valid_degradation.get("preset") if isinstance(valid_degradation, dict) else str(valid_degradation)
            out[f"{label}@{name}"] = (spec, valid_degradation)
        else:
            out[label] = (spec, deg)
    taken = {k.lower() for k in out}
    for label, spec in (more or {}).items():
        if label.lower() not in taken:
            out[label] = (spec, valid_degradation)
    return out


def _paired_lr(degradation: Any) -> str:
    """The LR folder of a 'paired' degradation record ({'preset': 'paired', 'lr': folder}), else ''."""
    return degradation.get("lr", "") if isinstance(degradation, dict) and degradation.get("preset") == "paired" else ""


def set_pairs(spec: str | ImageSource, scale: int, degradation: Any = None) -> list[ImagePair]:
    """The image pairs of one set: 'builtin:<names>' photos or an HR folder (LR made by the degradation), else a
    benchmark set found under $LAB_BENCHMARKS / the reference data (its LR files when the degradation is bicubic);
    a 'paired' degradation record pairs the HR with its LR folder. An ImageSource (a held-out split) as it is."""
    if isinstance(spec, ImageSource):
        return spec.pairs()
    if _paired_lr(degradation):
        return load_source(spec, scale, _paired_lr(degradation))
    keep_lr = is_benchmark_bicubic(_pipeline(degradation, scale), scale)
    return load_source(spec, scale, with_lr=keep_lr)


def check_sets(specs: Sequence[str | ImageSource]) -> None:
    """ValueError for a set that is neither a folder, 'builtin:<names>' nor a benchmark this lab knows (a typo must
    not pass as a benchmark that is merely absent); images already opened (an ImageSource) pass."""
    for spec in specs:
        if not isinstance(spec, ImageSource) and not (spec.startswith("builtin") or "/" in spec or user_path(spec).exists() or spec in KNOWN_BENCHMARKS):
            raise ValueError(f"unknown evaluation set {spec!r}: not a folder, not 'builtin:<names>', and not a "
                             f"benchmark this lab knows ({', '.join(KNOWN_BENCHMARKS)}); check the spelling")


def evaluate_sets(model: nn.Module, sets: str | Sequence[str] | dict[str, Any], scale: int, *,
                  degradation: Any = None, run: Run | None = None, show: bool = True,
                  **infer_kw: Any) -> tuple[dict[str, pd.DataFrame], dict[str, Any], list[str]]:
    """Score `model` on each set ({label: (spec, degradation)} as `parse_sets` / `task_sets` give, or specs with
    `degradation` as the default); returns ({label: per-image table}, summary metrics `<label>_psnr_y` ...,
    skipped messages).

    A known benchmark that is not found is skipped with its reason (a user's clone may not have the benchmarks),
    and the summary lists it (`eval_skipped`); a name that is neither a folder, 'builtin:<names>' nor a benchmark
    this lab knows (KNOWN_BENCHMARKS) is an error (a typo must not pass as a skipped set). With `run` each table,
    the outputs and their references are recorded. `show` displays each table.
    """
    sets = dict(sets) if isinstance(sets, dict) else parse_sets(sets, degradation)
    check_sets([spec for spec, _ in sets.values()])
    tables: dict[str, pd.DataFrame] = {}
    summary: dict[str, Any] = {}
    skipped: list[str] = []
    for label, (spec, deg) in sets.items():
        try:
            pairs = set_pairs(spec, scale, deg)
        except FileNotFoundError as e:
            skipped.append(f"skipped {label}: {e}")
            print(skipped[-1])
            continue
        table = evaluate_pairs(model, pairs, scale, degradation=None if _paired_lr(deg) else deg, run=run,
                               label=label, **infer_kw)
        tables[label] = table
        summary.update(summarize(table, f"{label.lower()}_"))
        if run is not None:
            run.save_eval_table(label, table.to_dict(orient="records"))
        if show:
            _display(label, table)
    if skipped:
        summary["eval_skipped"] = skipped
    return tables, summary, skipped


def _display(label: str, table: pd.DataFrame) -> None:
    print(label)
    display(table.round(4))


def other_active_runs(run: Run | None) -> list[str]:
    """The runs other than `run` in its runs folder whose process is alive (they share the cores a timing uses)."""
    if run is None:
        return []
    return [r.name for r in scan(run.dir.parent) if r.dir != run.dir and r.effective_status() == "running"]


BUSY_CORES = 0.5  # other processes using this much CPU (in cores) beyond the cores a timing leaves idle: not comparable


class OtherCPU:
    """The CPU that processes other than this one used over a window, in cores (the machine's busy time, the
    hypervisor's steal included, less this process's own): a timing beside a foreign process is not comparable. The
    window lasts at least `min_s` (the counters tick every 10 ms, too coarse for a timing of a tenth of a second):
    a shorter one is followed by a wait."""

    def __init__(self, min_s: float = 0.0):
        self.min_s = min_s

    def __enter__(self) -> OtherCPU:
        self._me, self.cores = psutil.Process(), 0.0
        self._t0, self._sys0, self._own0 = time.perf_counter(), self._busy(), self._own()
        return self

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))

    def _own(self) -> float:
        t = self._me.cpu_times()
        return t.user + t.system

    def __exit__(self, *exc: Any) -> None:
        time.sleep(max(0.0, self.min_s - (time.perf_counter() - self._t0)))
        wall = time.perf_counter() - self._t0
        other = (self._busy() - self._sys0) - (self._own() - self._own0)
        self.cores = max(0.0, other / wall) if wall > 0 else 0.0


def record_profile(run: Run | None, model: nn.Module, size: int, device: str | torch.device = "cpu",
                   dtypes: Sequence[str] = ("fp32",), **profile_kw: Any) -> dict[str, Any]:
    """The cost profile of `model` on a (1, in_ch, size, size) input (params, GFLOPs, median forward ms per
    dtype over the repeats), with the torch threads it ran on, the load, the other runs active and the CPU other
    processes used meanwhile (`busy` when other runs were active or, timed on the CPU, other processes took more than
    the cores the timing left idle plus `BUSY_CORES`: the milliseconds are then not comparable), recorded in `run`
    when given; returns it. Prints a line."""
    in_ch = getattr(model, "in_ch", 3)
    before = other_active_runs(run)
    with OtherCPU(min_s=0.5) as other:
        prof = profile(model, (1, in_ch, size, size), device=device, dtypes=tuple(dtypes), **profile_kw)
    active = sorted(set(before) | set(other_active_runs(run)))
    idle = max(0, (os.cpu_count() or 1) - torch.get_num_threads())  # cores the timing leaves to others
    crowded = torch.device(device).type == "cpu" and other.cores >= BUSY_CORES + idle  # a GPU timing: not its cores
    prof.update(threads=torch.get_num_threads(), loadavg_1m=os.getloadavg()[0], other_runs_active=active,
                other_cpu_cores=round(other.cores, 2), busy=bool(active) or crowded)
    if run is not None:
        run.write_json("profile", prof)
    note = (f" (while {len(active)} other run(s) were active: not comparable)" if active else
            f" (while other processes used {other.cores:.1f} cores: not comparable)" if prof["busy"] else "")
    print(f"{prof['params']:,} params, {prof['gflops']:.3f} GFLOPs, {prof['ms_fp32']:.2f} ms fp32 at {size}x{size} LR "
          f"on {prof['threads']} threads{note}")
    return prof
