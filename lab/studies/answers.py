"""The answer to a study: its runs in the ledger with the measures, the table per arm with the noise label, and
one sentence."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lab.ledger import is_missing
from lab.studies.jobs import StudyJob
from lab.studies.matching import match_runs
from lab.studies.measures import measure
from lab.studies.planning import plan
from lab.studies.spec import arm_overrides, load_study


def study_rows(df: pd.DataFrame, spec: dict[str, Any], jobs: Sequence[StudyJob] | None = None) -> pd.DataFrame:
    """The ledger rows that answer a study (one per planned job with a finished run), with `arm`, `seed` and the
    study's measures added."""
    spec = load_study(spec)
    jobs = plan(spec) if jobs is None else jobs
    recs = []
    for i, row in sorted(match_runs(df, jobs).items()):
        m = jobs[i].study
        recs.append({**row.to_dict(), "arm": m.arm, "seed": m.seed,
                     **measure(row["path"], spec["study"]["measures"])})
    return pd.DataFrame(recs)


def short(col: str) -> str:
    """A ledger column without its `metric.` / `param.` / `measure.` prefix (cost columns keep theirs)."""
    return col if col.startswith("cost.") else col.split(".", 1)[-1]


def answer(df: pd.DataFrame, spec: str | dict[str, Any], jobs: Sequence[StudyJob] | None = None,
           rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table that answers a study: per arm (in the spec's order) the runs, the mean of the metric, its delta
    to the baseline and a label: 'baseline', 'better' / 'worse' when |delta| exceeds the spread of the baseline's
    seeds, 'within noise' when it does not, 'no noise estimate' with fewer than two baseline runs, 'no run' when
    the arm has no finished run, 'reference' for an arm only others are compared with (`versus: {arm: null}`);
    then the `show` columns, the measures and, with a budget, 'over budget'.
    `df` is the ledger; `rows` (from `study_rows`) saves finding the runs again."""
    spec = load_study(spec)
    st = spec["study"]
    metric = st["metric"]
    rows = study_rows(df, spec, jobs) if rows is None else rows
    if rows.empty:
        rows = pd.DataFrame(columns=["id", "arm", metric])
    extra = [c for c in (*st["show"], *(f"measure.{m}" for m in st["measures"]),
                         *([st["budget"]["cost"]] if st["budget"] else []))]
    extra = list(dict.fromkeys(c for c in extra if c != metric))
    out = []
    for arm in arm_overrides(spec):
        sub = rows[rows["arm"] == arm]
        vals = pd.to_numeric(sub[metric], errors="coerce").dropna() if metric in sub else pd.Series(dtype=float)
        rec = {"arm": arm, "runs": ", ".join(f"#{int(i)}" for i in sub["id"]) if not sub.empty else "",
               "n": len(vals), short(metric): vals.mean() if len(vals) else np.nan}
        for c in extra:
            num = pd.to_numeric(sub[c], errors="coerce") if c in sub else pd.Series(dtype=float)
            rec[short(c)] = num.mean() if num.notna().any() else np.nan
        out.append(rec)
    table = pd.DataFrame(out)
    m = short(metric)
    base_runs = rows[rows["arm"] == st["baseline"]]
    base_vals = pd.to_numeric(base_runs[metric], errors="coerce").dropna() if metric in base_runs else []
    spread = float(np.ptp(base_vals)) if len(base_vals) >= 2 else np.nan
    sign = 1 if st["higher_is_better"] else -1
    mean = dict(zip(table["arm"], table[m]))
    vs = [None if a == st["baseline"] else st["versus"].get(a, st["baseline"]) for a in table["arm"]]
    table.insert(4, "vs", vs)
    table.insert(5, "delta", [np.nan if v is None else mean[a] - mean[v] for a, v in zip(table["arm"], vs)])
    labels = []
    for _, r in table.iterrows():
        if r["arm"] == st["baseline"]:
            labels.append("baseline")
        elif is_missing(r["vs"]):
            labels.append("reference")  # `versus: {arm: null}`: another arm's reference, compared with nothing
        elif is_missing(r[m]):
            labels.append("no run")
        elif is_missing(r["delta"]):
            labels.append(f"no run of {r['vs']}")
        elif math.isnan(spread):
            labels.append("no noise estimate")
        elif abs(r["delta"]) <= spread:
            labels.append("within noise")
        else:
            labels.append("better" if sign * r["delta"] > 0 else "worse")
    table.insert(6, "label", labels)
    if st["budget"]:
        cost = table[short(st["budget"]["cost"])]
        table["over budget"] = [None if is_missing(v) else bool(v > st["budget"]["max"]) for v in cost]
    table.attrs.update(study=spec["sweep"], metric=metric, baseline=st["baseline"], spread=spread,
                       higher_is_better=st["higher_is_better"], question=st["question"], runs=int(table["n"].sum()))
    return table


def verdict(table: pd.DataFrame) -> str:
    """One honest sentence from an answer table: the arm with the largest gain over its reference and whether
    that is beyond the baseline's seed spread, or that nothing moved beyond it, or what is missing for an answer."""
    a = table.attrs
    m, base, spread = short(a["metric"]), a["baseline"], a["spread"]
    ran = table[table[m].notna()]
    if base not in set(ran["arm"]):
        return f"No answer yet: the baseline '{base}' has no finished run ({len(ran)} of {len(table)} arms ran)."
    others = ran[(ran["arm"] != base) & ran["delta"].notna()]
    if others.empty:
        return f"No answer yet: no arm has a finished run beside its reference ('{base}' or its `versus` arm)."
    gain = others["delta"] * (1 if a["higher_is_better"] else -1)
    best = others.loc[gain.idxmax()]
    said = (f"'{best['arm']}' gains most" if gain.max() > 0 else f"no arm beats its reference; '{best['arm']}' comes "
            "closest") + f": {m} {best[m]:.3f}, {best['delta']:+.3f} vs '{best['vs']}'"
    said = said[0].upper() + said[1:]
    if math.isnan(spread):
        return f"{said}; with fewer than two finished baseline seeds there is no noise estimate to judge it by."
    real = others[others["label"].isin(["better", "worse"])]
    if real.empty:
        return (f"No arm moved {m} beyond the noise: every delta is within the baseline's seed spread ({spread:.3f}); "
                f"{said}.")
    better = ", ".join(f"'{x}'" for x in real[real["label"] == "better"]["arm"]) or "none"
    worse = ", ".join(f"'{x}'" for x in real[real["label"] == "worse"]["arm"]) or "none"
    return (f"{said} (baseline seed spread {spread:.3f}); beyond the noise better: {better}, worse: {worse}; "
            f"{len(others) - len(real)} of {len(others)} compared arms are within noise.")
