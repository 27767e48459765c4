"""P4 of `lab bench`: the demo's quality per minute. The train notebook runs under papermill (`lab.execute`, the
path `make demo` takes) with the demo's parameters; the only changes are what it validates on: Set5 x2 (its
bicubic LR files, whole images) when the benchmark is found, else the demo's held-out photo (whole), so every
validation the run records is a point of the curve: PSNR-Y against the training minutes its history records
(`train_s`: training epochs alone, validations excluded). Validation never changes what trains, except that a
time-budgeted demo counts its validations in the budget: the result then says how long validating took.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from lab.bench.common import Sizes, demo_params
from lab.execute import run_notebook
from lab.params import notebook_defaults
from lab.plots import save
from lab.runs import Run
from lab.sources import find_benchmark

PUBLISHED_SET5_X2 = {"SRCNN": 36.66, "FSRCNN": 37.00, "VDSR": 37.53}  # PSNR-Y on Set5 x2, from the papers
QUICK_VALID_SIZE = 96  # --quick validates on centre crops of this many HR px (the final score: whole images)


def has_set5() -> bool:
    """Whether the Set5 benchmark is found (under $LAB_BENCHMARKS or ../shared/data/benchmarks)."""
    try:
        find_benchmark("Set5")
        return True
    except FileNotFoundError:
        return False


def quality_overrides(sizes: Sizes, set5: bool | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The demo's parameters with the bench's validation (and `--quick`'s short step budget); and notes saying
    where the parameters came from and what was scored."""
    base, source = demo_params()
    set5 = has_set5() if set5 is None else set5
    over = dict(base, eval_sets="", valid_max_size=0)
    if set5:
        over.update(valid="Set5", valid_degradation="bicubic", valid_lr="")
    if sizes.quality_steps:
        over.update(time_budget=0.0, steps=sizes.quality_steps, valid_every=max(1, sizes.quality_steps // 3),
                    save_every=0, valid_max_size=QUICK_VALID_SIZE, profile_size=0)
    valid = over.get("valid") or notebook_defaults("train")["valid"]
    scored = ("Set5 x2" if set5 else f"held-out photo {valid}") + (
        f" (validation points on {QUICK_VALID_SIZE} px centre crops; final score on whole images)"
        if sizes.quality_steps else " (whole images)")
    return over, {"params_from": source, "scored_on": scored}


def curve(run: Run) -> list[dict[str, float]]:
    """(step, training minutes, wall minutes, PSNR-Y) of every validation the run's history records."""
    return [{"step": h.get("step"), "train_minutes": h.get("train_s", h.get("elapsed_s", 0.0)) / 60,
             "wall_minutes": h.get("elapsed_s", 0.0) / 60, "psnr_y": h["psnr_y"]}
            for h in run.history if h.get("phase", "") == "" and "psnr_y" in h]


def plot_curve(points: list[dict[str, float]], bicubic: float | None, final: float | None, title: str,
               path: str | Path, published: dict[str, float] | None = None) -> Path:
    """PSNR-Y against training minutes with bicubic and the published results as horizontal lines; saved as PNG."""
    fig = Figure(figsize=(8.5, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.plot([p["train_minutes"] for p in points], [p["psnr_y"] for p in points], "o-", label="lab demo")
    if final is not None and points:
        ax.plot([points[-1]["train_minutes"]], [final], "*", ms=12, label=f"final {final:.2f} dB (whole images)")
    if bicubic is not None:
        ax.axhline(bicubic, ls=":", color="k", lw=1, label=f"bicubic {bicubic:.2f}")
    for i, (name, v) in enumerate((published or {}).items()):
        ax.axhline(v, ls="--", color=f"C{i + 2}", lw=1, label=f"{name} {v:.2f} (published)")
    ax.set(xlabel="training minutes (validations excluded)", ylabel="PSNR-Y (dB)", title=title)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return save(fig, path)


def bench_quality(sizes: Sizes, png: str | Path, root: str | Path | None = None) -> dict[str, Any]:
    """P4: run the demo (a temporary runs folder unless `root`), read its validation curve, plot it to `png`."""
    over, notes = quality_overrides(sizes)
    with tempfile.TemporaryDirectory(prefix="lab-bench-quality-") as tmp:
        run = run_notebook("train", over, name="bench-quality", root=root or tmp)
        status, metrics, points = run.status_record, run.metrics, curve(run)
        st = status.get("status")
        if st != "done":
            err = (status.get("error") or {}).get("message", "")
            return {**notes, "status": st, "error": str(err)[:500], "points": points}
    set5 = notes["scored_on"].startswith("Set5")
    final, bicubic = metrics.get("valid_psnr_y"), metrics.get("valid_baseline_psnr_y")
    published = PUBLISHED_SET5_X2 if set5 else None
    title = f"demo: PSNR-Y on {notes['scored_on'].split(' (')[0]} per training minute"
    path = plot_curve(points, bicubic, final, title, png, published)
    return {**notes, "status": st, "quick": bool(sizes.quality_steps), "final_psnr_y": final, "bicubic_psnr_y": bicubic,
            "gain_db": None if final is None or bicubic is None else final - bicubic,
            "train_minutes": metrics.get("train_minutes"), "steps": metrics.get("train_steps"),
            "time_budget": over.get("time_budget", 0.0),
            "valid_minutes": points[-1]["wall_minutes"] - points[-1]["train_minutes"] if points else None,
            "published": published, "points": points, "png": str(path),
            "params": over}
