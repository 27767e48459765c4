"""Plots over the ledger (matplotlib): training curves, a metric by a param or by a study's arm (with the noise
band), quality vs cost with the Pareto frontier (and a budget line), and a grid of several runs' outputs on the
same benchmark crop.

Every function returns a `matplotlib.figure.Figure` (built without pyplot's global state, so it works under the
Agg backend in tests and in reports); `save` writes one, `to_base64` embeds one in HTML. Plots only read what runs
wrote (through `lab.runs.Run`): histories, outputs, and the references each evaluation kept beside its outputs.
"""

from __future__ import annotations

import base64
import io
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lab import infer_records
from lab.images import read_image
from lab.runs import Run
from lab.utils import atomic_write_bytes

LOSS_KEYS = ("train_loss", "valid_loss")
QUALITY_KEYS = ("psnr_y", "valid_psnr_y", "psnr")


def _figure(w: float, h: float) -> Figure:
    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def save(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a figure as PNG (or the format of the suffix) atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def show(fig: Figure, dpi: int = 100) -> None:
    """Display a figure in a notebook as PNG (no pyplot state or inline backend needed)."""
    from IPython.display import Image, display

    display(Image(data=to_png(fig, dpi), format="png"))


def to_base64(fig: Figure, dpi: int = 100) -> str:
    """Base64 PNG of a figure, for `<img src="data:image/png;base64,...">`."""
    return base64.b64encode(to_png(fig, dpi)).decode("ascii")


def describe_metric(col: str) -> str:
    """A metric column in words, e.g. 'metric.set5_psnr_y' -> 'Set5 PSNR-Y (dB, whole images)'."""
    name = col.split(".", 1)[-1]
    for suffix, words in (("gain_psnr_y", "PSNR-Y gain over the baseline (dB"), ("baseline_psnr_y", "baseline PSNR-Y (dB"),
                          ("psnr_y", "PSNR-Y (dB"), ("ssim_y", "SSIM-Y (")):
        if name.endswith(suffix):
            where = name[: -len(suffix)].rstrip("_") or "eval"
            where = "Set5" if where == "set5" else where
            return f"{where} {words}{', ' if words.endswith('(dB') else ''}whole images)"
    return name


def _label(r: pd.Series) -> str:
    return f"#{int(r['id'])} {r.get('title') or r.get('name')}"[:40]


def _histories(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(_label(r), pd.DataFrame(Run(r["path"]).history if r.get("path") else [])) for _, r in runs.iterrows()]


def curves(runs: pd.DataFrame, loss_keys: Sequence[str] = LOSS_KEYS, quality_key: str | None = None) -> Figure:
    """Training curves of the selected runs on shared axes: losses (left, train solid / valid dashed) and the
    quality metric (right, PSNR-Y) per epoch, one color per run; a run's further validation sets (`<set>_psnr_y`)
    dashed beside its first.

    `runs`: ledger rows (needs `id` and `path`). Runs without history are listed in the legend as such.
    """
    if runs.empty:
        raise ValueError("curves: no runs selected; pass ledger rows (e.g. ledger.load().tail(5))")
    hists = _histories(runs)
    fig = _figure(11, 4)
    ax_l, ax_q = fig.subplots(1, 2)
    colors = [f"C{i % 10}" for i in range(len(hists))]
    q_used = None
    for (label, h), c in zip(hists, colors):
        if h.empty:
            ax_l.plot([], [], color=c, label=f"{label} (no history)")
            continue
        x = h["epoch"] if "epoch" in h else np.arange(len(h))
        for k, style in zip(loss_keys, ("-", "--", ":")):
            if k in h:
                ax_l.plot(x, h[k], style, color=c, marker="o", ms=3, label=f"{label} {k}" if k != loss_keys[0] else label)
        qk = quality_key or next((k for k in QUALITY_KEYS if k in h), None)
        if qk and qk in h:
            q_used = qk
            ax_q.plot(x, h[qk], color=c, marker="o", ms=3, label=label)
            more = [k for k in h.columns if k.endswith(f"_{qk}") and not k.startswith(("valid_", "train_"))]
            for k, style in zip(more, ("--", ":", "-.") * len(more)):  # the run's further validation sets
                ax_q.plot(x, h[k], style, color=c, marker="o", ms=3, label=f"{label} {k}")
    crops = sorted({int(v) for v in runs.get("param.valid_max_size", pd.Series(dtype=float)).dropna() if v})
    crop = f"centre crop of {'/'.join(map(str, crops))} px" if crops else "the validation images"
    ax_l.set(xlabel="epoch", ylabel="loss", title="loss (solid train, dashed valid)")
    ax_q.set(xlabel="epoch", ylabel="PSNR-Y (dB)" if q_used and "psnr" in q_used else (q_used or "quality"),
             title=(f"validation {q_used.replace('psnr_y', 'PSNR-Y')} during training: {crop}\n(the table's "
                    "scores use whole images)") if q_used else "no quality metric recorded")
    ax_q.title.set_fontsize(8)
    for ax in (ax_l, ax_q):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def bar_by_param(df: pd.DataFrame, metric: str, param: str) -> Figure:
    """Mean of `metric` per value of `param` (error bar: std; n above each bar), over the rows that have both.

    Short names work: `metric="valid_psnr_y"` means `metric.valid_psnr_y`, `param="loss"` means `param.loss`.
    """
    m = metric if metric in df else f"metric.{metric}"
    p = param if param in df else f"param.{param}"
    missing = [c for c in (m, p) if c not in df]
    if missing:
        raise KeyError(f"bar_by_param: no column {missing}; metrics: "
                       f"{[c[7:] for c in df if c.startswith('metric.')]}, params: "
                       f"{[c[6:] for c in df if c.startswith('param.')]}")
    sub = df[[p, m]].dropna()
    fig = _figure(max(4, 0.9 * sub[p].nunique() + 2), 3.5)
    ax = fig.subplots()
    if sub.empty:
        ax.text(0.5, 0.5, f"no runs with both {p} and {m}", ha="center", va="center", transform=ax.transAxes)
        return fig
    g = sub.groupby(sub[p].astype(str))[m].agg(["mean", "std", "count"]).sort_values("mean")
    bars = ax.bar(g.index, g["mean"], yerr=g["std"].fillna(0), capsize=3, color="C0", alpha=0.8)
    for b, n in zip(bars, g["count"]):
        ax.annotate(f"n={n}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=7,
                    xytext=(0, 2), textcoords="offset points")
    lo, hi = (g["mean"] - g["std"].fillna(0)).min(), (g["mean"] + g["std"].fillna(0)).max()
    pad = max(0.05 * (hi - lo), 0.05 * abs(hi) if hi else 0.1, 1e-3)
    ax.set_ylim(lo - 3 * pad, hi + 2 * pad)
    ax.set(xlabel=p.split(".", 1)[-1], ylabel=describe_metric(m), title=f"{describe_metric(m)} by {p.split('.', 1)[-1]}")
    ax.title.set_fontsize(9)
    ax.tick_params(axis="x", labelrotation=30)
    ax.grid(axis="y", alpha=0.3)
    return fig


def pareto_front(cost: Sequence[float], quality: Sequence[float]) -> np.ndarray:
    """Indices of the points no other point beats (lower or equal cost and higher or equal quality, one strictly),
    sorted by cost."""
    c, q = np.asarray(cost, float), np.asarray(quality, float)
    order = np.lexsort((-q, c))  # by cost, best quality first among ties
    front, best = [], -math.inf
    for i in order:
        if q[i] > best:
            front.append(i)
            best = q[i]
    return np.asarray(front, dtype=int)


def pareto(df: pd.DataFrame, quality: str = "metric.valid_psnr_y", cost: str = "cost.gflops",
           log_cost: bool | None = None, budget: float | None = None, label: str | None = None) -> Figure:
    """Quality against cost (GFLOPs, params or forward ms) for every run that has both, frontier drawn and
    labelled with run ids (or the `label` column). `log_cost` defaults to a log axis when the cost spans more than
    20x. `budget`: a vertical line at that cost, the runs over it drawn as red crosses."""
    q = quality if quality in df else f"metric.{quality}"
    c = cost if cost in df else f"cost.{cost}"
    missing = [x for x in (q, c) if x not in df]
    if missing:
        raise KeyError(f"pareto: no column {missing}; cost columns: {[x for x in df if x.startswith('cost.')]}")
    sub = df[["id", q, c] + ([label] if label and label != "id" else [])].dropna(subset=["id", q, c])
    sub = sub[sub[c] > 0] if (log_cost or log_cost is None) else sub
    fig = _figure(6, 4)
    ax = fig.subplots()
    if sub.empty:
        ax.text(0.5, 0.5, f"no runs with both {q} and {c}", ha="center", va="center", transform=ax.transAxes)
        return fig
    over = sub[c] > budget if budget is not None else pd.Series(False, index=sub.index)
    ax.scatter(sub.loc[~over, c], sub.loc[~over, q], s=18, color="C0", alpha=0.6, label="runs")
    if over.any():
        ax.scatter(sub.loc[over, c], sub.loc[over, q], s=40, color="red", marker="x", label="over budget")
    if budget is not None:
        ax.axvline(budget, color="red", ls="--", lw=1, label=f"budget {budget:g}")
    f = pareto_front(sub[c].to_numpy(), sub[q].to_numpy())
    fr = sub.iloc[f]
    ax.step(fr[c], fr[q], where="post", color="C3", lw=1.5, label="Pareto frontier")
    ax.scatter(fr[c], fr[q], s=30, color="C3", zorder=3)
    for _, r in (sub if label else fr).iterrows():
        text = str(r[label]) if label else f"#{int(r['id'])}"
        ax.annotate(text, (r[c], r[q]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    span = sub[c].max() / max(sub[c].min(), 1e-12)
    if log_cost or (log_cost is None and span > 20):
        ax.set_xscale("log")
    ax.set(xlabel=c.split(".", 1)[-1], ylabel=describe_metric(q), title=f"{describe_metric(q)} vs {c.split('.', 1)[-1]}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def arm_bars(table: pd.DataFrame, value: str, arm: str = "arm", baseline: str | None = None,
             band: float | None = None, faded: Sequence[str] = (), title: str | None = None) -> Figure:
    """One horizontal bar per row of `table` (e.g. a study's answer): `value` per `arm`, the `baseline` row
    highlighted with a band of +-`band` / 2 around it (its seed spread: the noise floor), the `faded` arms (e.g.
    those within noise) drawn pale; rows without a value are listed as such."""
    if value not in table or arm not in table:
        raise KeyError(f"arm_bars: needs columns {arm!r} and {value!r}; got {list(table.columns)}")
    fig = _figure(7, 0.35 * len(table) + 1.4)
    ax = fig.subplots()
    vals = table[value].astype(float)
    names = [str(a) for a in table[arm]]
    colors = ["C3" if a == baseline else ("0.75" if a in faded else "C0") for a in names]
    y = np.arange(len(names))[::-1]
    ax.barh(y, vals.to_numpy(), color=colors)
    ok = vals.dropna()
    lo, hi = (ok.min(), ok.max()) if not ok.empty else (0.0, 1.0)
    pad = max(0.15 * (hi - lo), 0.02 * abs(hi), 1e-3)
    ax.set_xlim(lo - pad, hi + 2 * pad)
    for yi, v in zip(y, vals):
        ax.annotate("no run" if pd.isna(v) else f"{v:.3f}", (lo - pad if pd.isna(v) else v, yi), fontsize=7,
                    xytext=(3, -3), textcoords="offset points")
    if baseline in names and band is not None and not pd.isna(band):
        b = float(vals[names.index(baseline)])
        ax.axvspan(b - band / 2, b + band / 2, color="C3", alpha=0.15, label=f"baseline seed spread {band:.3g}")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(y, names, fontsize=8)
    ax.set(xlabel=describe_metric(value), title=title or describe_metric(value))
    ax.title.set_fontsize(9)
    ax.grid(axis="x", alpha=0.3)
    return fig


def tradeoff(df: pd.DataFrame, x: str, y: str, label: str = "id") -> Figure:
    """One metric against another for the rows that have both, each point labelled by `label` (e.g. sharpness
    on clean inputs against robustness on degraded ones)."""
    missing = [c for c in (x, y, label) if c not in df]
    if missing:
        raise KeyError(f"tradeoff: no column {missing}; columns: {list(df.columns)}")
    sub = df[[x, y, label]].dropna(subset=[x, y])
    fig = _figure(6, 4)
    ax = fig.subplots()
    ax.scatter(sub[x].astype(float), sub[y].astype(float), s=24, color="C0")
    for _, r in sub.iterrows():
        ax.annotate(str(r[label]), (float(r[x]), float(r[y])), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel=describe_metric(x), ylabel=describe_metric(y), title=f"{describe_metric(y)} vs {describe_metric(x)}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    return fig


def crop(img: np.ndarray, box: Sequence[int] | None) -> np.ndarray:
    """`img[y:y+h, x:x+w]` for box (y, x, h, w), clipped to the image; None keeps the whole image."""
    if box is None:
        return img
    y, x, h, w = (int(v) for v in box)
    if h <= 0 or w <= 0:
        raise ValueError(f"crop box {tuple(box)}: height and width must be positive (y, x, h, w)")
    return img[max(y, 0): y + h, max(x, 0): x + w]


def image_grid(panels: dict[str, np.ndarray], box: Sequence[int] | None = None, cols: int | None = None,
               panel_size: float = 2.6) -> Figure:
    """A grid of same-size images (HWC uint8), each cropped to `box` (y, x, h, w) and titled by its key."""
    if not panels:
        raise ValueError("image_grid: no images; give {title: HWC uint8 array}")
    shapes = {k: v.shape[:2] for k, v in panels.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"image_grid: images differ in size {shapes}; outputs of one benchmark image at one scale "
                         "are needed")
    n = len(panels)
    cols = cols or min(n, 4)
    rows = math.ceil(n / cols)
    fig = _figure(panel_size * cols, panel_size * rows + 0.3)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (title, img) in zip(axes, panels.items()):
        ax.imshow(crop(img, box), interpolation="nearest")
        ax.set_title(title, fontsize=8)
    return fig


def run_outputs(df: pd.DataFrame, image: str, eval_set: str = "valid") -> dict[str, np.ndarray]:
    """{"#id title": output} of the runs in `df` that saved their output of `image` on `eval_set`."""
    out = {}
    for _, r in df.iterrows():
        if not r.get("path"):
            continue
        run = Run(r["path"])
        p = run.eval_output(eval_set, image)
        p = p if p.is_file() else infer_records.output_file(run, eval_set, image)  # an inference run's output
        if p is not None:
            out[_label(r)] = read_image(p)
    return out


REFERENCE_LABELS = {"lr": "LR (nearest)", "hr": "HR"}


def reference_images(run: str | os.PathLike | Run, image: str, eval_set: str,
                     size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """{"LR (nearest)", "bicubic" (or "degraded input" for same-size tasks), "HR"}: the references run `run`'s
    evaluation kept beside its output of `image` on `eval_set`. The LR is nearest-upscaled to the HR size. An
    inference run (no ground truth) gives its input's LR and bicubic, made as its outputs were (`lab.infer_records`).

    A run that kept none (or whose HR is not `size`) gives an empty dict: nothing is recomputed here.
    """
    run = run if isinstance(run, Run) else Run(run)
    paths = {k: run.eval_reference(eval_set, image, k) for k in ("lr", "baseline", "hr")}
    if not all(p.is_file() for p in paths.values()):  # an inference run has no HR: LR and bicubic of its input
        refs = infer_records.references(run, eval_set, image)
        return refs if refs and (size is None or refs["bicubic"].shape[:2] == tuple(size)) else {}
    lr, base, hr = (read_image(paths[k]) for k in ("lr", "baseline", "hr"))
    if size is not None and hr.shape[:2] != tuple(size):
        return {}
    s = max(1, round(hr.shape[0] / lr.shape[0]))
    near = np.repeat(np.repeat(lr, s, axis=0), s, axis=1)[: hr.shape[0], : hr.shape[1]]
    return {REFERENCE_LABELS["lr"]: near, "bicubic" if s > 1 else "degraded input": base, REFERENCE_LABELS["hr"]: hr}


def first_references(df: pd.DataFrame, image: str, eval_set: str,
                     size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The references of the first run in `df` that kept them for `image` on `eval_set` (see reference_images)."""
    for p in df.get("path", pd.Series(dtype=object)).dropna():
        refs = reference_images(p, image, eval_set, size)
        if refs:
            return refs
    return {}


def compare_grid(df: pd.DataFrame, image: str, eval_set: str = "valid", box: Sequence[int] | None = None,
                 references: bool = True, side: int = 96) -> Figure:
    """Several runs' outputs on the same image and crop (y, x, h, w; default: a `side`-pixel crop at the centre),
    with the baseline and HR beside them when available."""
    panels = run_outputs(df, image, eval_set)
    if panels and box is None:
        h, w = next(iter(panels.values())).shape[:2]
        box = (max(h // 2 - side // 2, 0), max(w // 2 - side // 2, 0), side, side)
    if not panels:
        raise FileNotFoundError(f"none of runs {list(df['id'])} saved an output of {image!r} on set {eval_set!r}")
    if references:
        refs = first_references(df, image, eval_set, next(iter(panels.values())).shape[:2])
        panels = {**{k: v for k, v in refs.items() if k != REFERENCE_LABELS["lr"]}, **panels}
    return image_grid(panels, box)


def samples(run_path: str | os.PathLike) -> list[Path]:
    """A run's saved sample strips in training order (its plain epochs, then its adversarial ones)."""
    return [s.path for s in Run(run_path).samples()]


__all__ = ["curves", "bar_by_param", "arm_bars", "tradeoff", "pareto", "pareto_front", "image_grid", "compare_grid", "run_outputs",
           "reference_images", "first_references", "describe_metric", "crop", "samples", "save", "show", "to_png", "to_base64"]

