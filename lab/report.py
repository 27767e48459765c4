"""Reports of the ledger: Markdown in the experiment-log form people keep by hand, CSV, and a standalone HTML
report with the plots embedded."""

from __future__ import annotations

import datetime as _dt
import html
import os
from pathlib import Path
from typing import Any

import pandas as pd

from lab import plots
from lab.ledger import is_missing, view
from lab.runs import Run
from lab.utils import atomic_write_text


def _result_lines(r: pd.Series) -> list[str]:
    """Results of one row: per evaluated set, PSNR-Y / SSIM-Y and the gain over the set's baseline."""
    out = []
    for c in [c for c in r.index if c.startswith("metric.") and c.endswith("_psnr_y") and "bicubic" not in c
              and "baseline" not in c and "gain" not in c]:
        if is_missing(r[c]):
            continue
        pre = c[len("metric."):-len("psnr_y")]
        s = f"{pre.rstrip('_') or 'eval'} PSNR-Y {r[c]:.2f} dB"
        ss = r.get(f"metric.{pre}ssim_y")
        if not is_missing(ss):
            s += f" / SSIM {ss:.4f}"
        g = r.get(f"metric.{pre}gain_psnr_y")
        if not is_missing(g):  # runs made before baselines were named compared with bicubic
            s += f" ({g:+.2f} dB vs {_get(r, f'metric.{pre}baseline') or 'bicubic'})"
        out.append(s)
    extra = []
    if not is_missing(r.get("metric.train_minutes")):
        extra.append(f"{r['metric.train_minutes']:.1f} min training")
    elif not is_missing(r.get("duration_s")):
        extra.append(f"{r['duration_s'] / 60:.1f} min")
    for col, unit in (("cost.params", " params"), ("cost.gflops", " GFLOPs"), ("cost.forward_ms", " ms/forward")):
        if not is_missing(r.get(col)):
            v = r[col]
            extra.append(f"{int(v):,}{unit}" if col == "cost.params" else f"{v:.3g}{unit}")
    if extra:
        out.append(", ".join(extra))
    return out


def _get(r: pd.Series, key: str) -> Any:
    """r[key], with NaN / NA / missing as None."""
    v = r.get(key)
    return None if is_missing(v) else v


def _data_text(r: pd.Series) -> str:
    """The data a run used in one phrase: `builtin (valid builtin:chelsea), bicubic x2, patch 48`."""
    data, valid, lr = _get(r, "param.data"), _get(r, "param.valid"), _get(r, "param.data_lr")
    parts = []
    if data:
        parts.append(str(data) + (f" + LR {lr}" if lr else "") + (f" (valid {valid})" if valid else ""))
    deg, scale, patch = _get(r, "param.degradation"), _get(r, "param.scale"), _get(r, "param.patch_size")
    tail = " ".join(x for x in (str(deg) if deg else "", f"x{scale}" if scale else "") if x)
    if tail:
        parts.append(tail)
    if patch:
        parts.append(f"patch {patch}")
    return ", ".join(parts)


def to_markdown(df: pd.DataFrame, path: str | os.PathLike | None = None) -> str:
    """The ledger in the experiment-log form people keep by hand (`#id : name : date`, data, changes, results,
    verdict); written to `path` when given."""
    blocks = []
    for _, r in df.iterrows():
        date = r["date"].strftime("%Y-%m-%d %H:%M") if not is_missing(r.get("date")) else "?"
        title = _get(r, "title") or r["name"]
        head = f"#{r['id']} : {title} : {date}"
        if _get(r, "verdict"):
            head += f" ({r['verdict']})"
        lines = [f"## {head}", ""]
        data = _data_text(r)
        if data:
            lines.append(f"- data: {data}")
        model, kw = _get(r, "param.model"), _get(r, "param.model_kwargs")
        if model:
            lines.append(f"- model: {model}" + (f" {kw}" if kw and kw != "{}" else ""))
        if _get(r, "changed"):
            lines.append(f"- what changed: {r['changed']}")
        res = _result_lines(r)
        status = r.get("status")
        if status != "done":
            err = r.get("error")
            cell = r.get("error_cell")
            where = f" in cell {int(cell)}" if not is_missing(cell) else ""
            res.insert(0, f"**{status}**" + (f"{where}: {err}" if not is_missing(err) and err else ""))
        if res:
            lines.append(f"- results: {'; '.join(res)}")
        if _get(r, "notes"):
            lines.append(f"- notes: {r['notes']}")
        if _get(r, "tags"):
            lines.append(f"- tags: {r['tags']}")
        lines.append(f"- verdict: {_get(r, 'verdict') or '—'}")
        if _get(r, "git_commit"):
            lines.append(f"- code: {str(r['git_commit'])[:10]}{' (dirty)' if r.get('git_dirty') else ''}, "
                         f"{r.get('notebook')}, run dir `{r['name']}`")
        blocks.append("\n".join(lines))
    text = "# Experiment log\n\n" + "\n\n".join(blocks) + "\n"
    if path is not None:
        atomic_write_text(path, text)
    return text


def to_csv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """The ledger as CSV (every column; dates in ISO-8601), written atomically."""
    return atomic_write_text(path, df.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z"))


def _pick_cost(df: pd.DataFrame) -> str | None:
    for c in ("cost.gflops", "cost.forward_ms", "cost.params"):
        if c in df and df[c].notna().sum() >= 2:
            return c
    return None


def _pick_quality(df: pd.DataFrame) -> str | None:
    for c in ("metric.set5_psnr_y", "metric.valid_psnr_y"):
        if c in df and df[c].notna().any():
            return c
    cands = [c for c in df if c.startswith("metric.") and c.endswith("psnr_y") and df[c].notna().any()]
    return cands[0] if cands else None


def to_html(df: pd.DataFrame, path: str | os.PathLike, *, title: str = "Restoration Lab — results ledger",
            curves: int = 8, group_by: str = "param.model") -> Path:
    """A standalone HTML report: the experiment-log table plus plots embedded as base64 PNGs (no external files).

    Plots: training curves of the last `curves` runs with history, the quality metric grouped by `group_by`, and
    quality vs cost with the Pareto frontier when cost columns are present.
    """
    figs: list[tuple[str, str]] = []
    quality = _pick_quality(df)
    with_hist = [r for _, r in df.iterrows() if r.get("path") and Run(r["path"]).history]
    if with_hist:
        sel = pd.DataFrame(with_hist[-curves:])
        figs.append(("Training curves", plots.to_base64(plots.curves(sel))))
    if quality and group_by in df and df[quality].notna().sum() >= 1:
        figs.append((f"{quality} by {group_by}", plots.to_base64(plots.bar_by_param(df, quality, group_by))))
    cost = _pick_cost(df)
    if quality and cost:
        figs.append((f"{quality} vs {cost}", plots.to_base64(plots.pareto(df, quality, cost))))
    table = view(df).copy()
    if "date" in df:
        table.insert(2, "date", df["date"].dt.strftime("%Y-%m-%d %H:%M"))
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}"
             ".failed,.interrupted,.diverged{color:#b00}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(df)} runs; generated {_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}.</p>"]
    for cap, b64 in figs:
        parts.append(f"<h2>{html.escape(cap)}</h2><img alt='{html.escape(cap)}' src='data:image/png;base64,{b64}'>")
    parts.append("<h2>Runs</h2>")
    parts.append(table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}", escape=True))
    parts.append("<h2>Experiment log</h2>")
    for block in to_markdown(df).split("\n## ")[1:]:
        head, *rest = block.splitlines()
        parts.append(f"<h3>{html.escape(head)}</h3><ul>"
                     + "".join(f"<li>{html.escape(x[2:])}</li>" for x in rest if x.startswith("- ")) + "</ul>")
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts))


def export(df: pd.DataFrame, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write the ledger as Markdown, CSV or HTML, chosen by `fmt` or the file suffix (.md, .csv, .html)."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    if fmt in ("md", "markdown"):
        to_markdown(df, path)
        return Path(path)
    if fmt == "csv":
        return to_csv(df, path)
    if fmt in ("html", "htm"):
        return to_html(df, path)
    raise ValueError(f"export format {fmt!r} not supported; accepted: md, csv, html (or a file ending in one)")
