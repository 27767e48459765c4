"""A study's plots and report: the metric per arm with the noise band and the plot of its view (lab.plots), the
Markdown report in the form of the users' hand-written logs (`lab export <file>.md --study <name>`), and the
notebook display (notebooks/studies.ipynb). What is plotted and reported comes from the rest of lab.studies."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from matplotlib.figure import Figure

from lab import plots
from lab.ledger import is_missing
from lab.ledger import load as load_ledger
from lab.metrics import flattest_window
from lab.runs import Run
from lab.studies.answers import answer, short, study_rows, verdict
from lab.studies.jobs import StudyJob
from lab.studies.measures import valid_pair
from lab.studies.planning import plan
from lab.studies.spec import CPU, load_study
from lab.utils import atomic_write_text


def figures(df: pd.DataFrame, spec: str | dict[str, Any], jobs: Sequence[StudyJob] | None = None,
            rows: pd.DataFrame | None = None) -> dict[str, Figure]:
    """The study's plots: 'answer' (the metric per arm, the baseline's noise band) and its view: 'pareto' (metric vs
    the budget's cost, the budget line), 'curves' (training curves, one run per arm) or 'grid' (the arms' outputs
    on one crop of the validation image, the flattest region when the study measures checkerboards)."""
    spec = load_study(spec)
    st = spec["study"]
    rows = study_rows(df, spec, jobs) if rows is None else rows
    table = answer(df, spec, rows=rows)
    m = short(st["metric"])
    figs = {"answer": plots.arm_bars(table, m, baseline=st["baseline"], band=table.attrs["spread"],
                                     faded=list(table[table["label"] == "within noise"]["arm"]),
                                     title=f"{spec['sweep']}: {m} per arm")}
    first = rows.drop_duplicates("arm") if not rows.empty else rows
    if first.empty:
        return figs
    if st["view"] == "pareto":
        cost = st["budget"]["cost"] if st["budget"] else "cost.gflops"
        figs["pareto"] = plots.pareto(first, st["metric"], cost, budget=st["budget"]["max"] if st["budget"] else
                                      None, label="arm")
    elif st["view"] == "curves":
        figs["curves"] = plots.curves(first)
    elif st["view"] == "tradeoff":
        figs["tradeoff"] = plots.tradeoff(first, st["metric"], st["show"][0], label="arm")
    elif st["view"] == "grid":
        pair = valid_pair(first.iloc[0]["path"])
        names = Run(first.iloc[0]["path"]).eval_images("valid")
        if pair and names:
            box = None
            if "checkerboard" in st["measures"]:
                y, x = flattest_window(pair[1], 32, border=pair[2])
                box = (max(y - 16, 0), max(x - 16, 0), 64, 64)
            figs["grid"] = plots.compare_grid(first, names[0], "valid", box=box)
    return figs


def _md_table(table: pd.DataFrame) -> str:
    def cell(v: Any, col: str) -> str:
        if is_missing(v):
            return ""
        if isinstance(v, float) and v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        if isinstance(v, float):
            return f"{v:+.3f}" if col == "delta" else f"{v:.3g}" if v and abs(v) < 1e-3 else f"{v:.3f}"
        return str(v).replace("|", "\\|")

    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r[c], c) for c in cols) + " |" for _, r in table.iterrows()]
    return "\n".join(lines)


def report_markdown(spec: str | dict[str, Any], table: pd.DataFrame, images: dict[str, str],
                    rows: pd.DataFrame, planned: int, profile: str | None = None) -> str:
    """A study as an entry of the users' hand-written logs: question, source, scale, runs, the answer table, the
    plots (`images`: name -> relative path) and the verdict."""
    spec = load_study(spec)
    st = spec["study"]
    first = rows.iloc[0] if not rows.empty else {}
    scale = ", ".join(f"{k} {first.get(f'param.{k}')}" for k in ("data", "valid", "degradation", "scale",
                                                                  "patch_size", "batch_size", "steps")
                      if not is_missing(first.get(f"param.{k}")))
    dates = pd.to_datetime(rows["date"]) if "date" in rows else pd.Series(dtype="datetime64[ns, UTC]")
    when = f"{dates.min():%Y-%m-%d} .. {dates.max():%Y-%m-%d}" if not dates.empty else "no runs yet"
    commits = sorted({str(c)[:10] for c in rows.get("git_commit", pd.Series(dtype=object)).dropna()})
    lines = [f"# Study {spec['sweep']} : {when} : profile {profile or CPU}", "",
             f"- question: {st['question']}", f"- source (a log and its entries, paraphrased): {st['log']}",
             f"- look at: {st['look_at']}",
             f"- data / scale: {scale or '—'}",
             f"- runs: {table.attrs['runs']} finished of {planned} planned"
             + (f"; code {', '.join(commits)}" if commits else "")
             + (f"; CPU wall time {st['cpu_minutes']} min" if st["cpu_minutes"] else ""),
             "", "## Results", "", _md_table(table), ""]
    lines += [f"![{name}]({rel})" for name, rel in images.items()]
    lines += ["", f"- verdict: {verdict(table)}", ""]
    return "\n".join(lines)


def write_report(study: str | os.PathLike | dict[str, Any], path: str | os.PathLike, *,
                 root: str | os.PathLike | None = None, profile: str | None = None) -> Path:
    """Write a study's Markdown report to `path`, its plots as PNGs beside it (`<stem>_<plot>.png`)."""
    spec = load_study(study)
    path = Path(path)
    df = load_ledger(root, warn=False)
    jobs = plan(spec, profile, root=root)
    rows = study_rows(df, spec, jobs)
    table = answer(df, spec, rows=rows)
    images = {}
    for name, fig in figures(df, spec, rows=rows).items():
        images[name] = plots.save(fig, path.with_name(f"{path.stem}_{name}.png")).name
    return atomic_write_text(path, report_markdown(spec, table, images, rows, len(jobs), profile))


def show(study: str | os.PathLike | dict[str, Any], *, root: str | os.PathLike | None = None,
         profile: str | None = None) -> pd.DataFrame:
    """Display a study in a notebook: question, answer table, verdict and plots (PNG); returns the table."""
    from IPython.display import Markdown, display  # lazy: only notebooks display

    spec = load_study(study)
    st = spec["study"]
    df = load_ledger(root, warn=False)
    rows = study_rows(df, spec, plan(spec, profile, root=root))
    table = answer(df, spec, rows=rows)
    display(Markdown(f"**{spec['sweep']}**: {st['question']}  \n*Source:* {st['log']}  \n*Look at:* {st['look_at']}"))
    display(table)
    display(Markdown(f"**Verdict:** {verdict(table)}"))
    for fig in figures(df, spec, rows=rows).values():
        plots.show(fig)
    return table
