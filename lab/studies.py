"""Studies: the questions our users' logs ask, each a sweep spec in `notebooks/sweeps/` with a `study:` section, run
at a CPU scale in minutes and at full scale one switch away (`profile="full"`), answered from the ledger.

A study spec is a sweep spec (lab.sweep) whose `list` items are the arms (`arm: <label>` names each), plus:
  study:
    question, log, look_at   what is asked, the log entry (or paper) it comes from, what to read in the answer
    metric                   the ledger column that answers it (higher is better unless `higher_is_better: false`)
    baseline                 the arm the others are compared with; it runs at each of `seeds` (default [0, 1]) and
                             the spread of those runs is the noise floor (the other arms run at the first seed)
    view                     the plot that answers it, beside the bars of the metric: table (the bars only) |
                             pareto (metric vs the budget's cost) | grid (outputs on one crop) | curves (training)
                             | tradeoff (the metric against the first `show` column)
    show, measures, budget   more columns: ledger columns, measures taken on the outputs (MEASURES), and a cost
                             limit ({cost: cost.gflops, max: 11.1}) whose runs over it are flagged
    versus                   {arm: other arm}: arms compared with another arm than the baseline (x3 fine-tuned
                             vs x3 from scratch); the noise floor stays the baseline's. {arm: null}: a reference
                             for another arm, compared with nothing (x3 from scratch vs the x2 baseline means nothing)
    cpu_minutes              the wall time measured at the CPU scale (`lab study <name> --workers 2`)
  profiles:
    full: {base: {...}, arms: {<arm>: {...}}, requires: [data/div2k_sub, Set14], timeout: 86400}
An arm's dict params (model_kwargs, ...) are merged into the base's; a profile's `base` replaces the spec's key by
key (`model_kwargs: {}` there means the paper's model). Relative folders in data params are taken from the project
root. `init_from: "@<arm>"` starts from that arm's run of the same seed: the run waits until that one is done.

- `list_studies`, `load_study`, `plan`: a study's jobs at a profile (missing data named before anything runs),
  each run titled by its arm and tagged with the study's name (`lab ledger --tag <study>`).
- `run_study` / `execute`: runs what has no finished run yet: a finished run of the study with the same params is
  reused (`fresh=True` runs everything again), runs that wait for others go in later waves.
- `study_rows`, `answer`, `verdict`: the runs that answer a study, the table with the noise label, one sentence.
  The plots and the Markdown report are lab.study_report's.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from lab.images import read_image
from lab.ledger import has_tag, is_missing
from lab.ledger import load as load_ledger
from lab.metrics import flattest_window, hf_energy_ratio
from lab.params import NOTEBOOKS_DIR, notebook_defaults, resolve
from lab.runs import Run
from lab.sweep import ARM_KEY, combinations, expand, load_spec, run_jobs
from lab.utils import PROJECT_ROOT, benchmarks_dir

STUDIES_DIR = NOTEBOOKS_DIR / "sweeps"
REQUIRED = ("question", "log", "look_at", "metric", "baseline", "view")
OPTIONAL = ("seeds", "higher_is_better", "show", "measures", "budget", "versus", "cpu_minutes")
VIEWS = ("table", "pareto", "grid", "curves", "tradeoff")
PROFILE_KEYS = ("base", "arms", "requires", "timeout")
CPU = "cpu"  # the name of the spec's own (CPU) scale
PATH_PARAMS = ("data", "data_lr", "valid", "valid_lr")
REF = "@"  # init_from: "@<arm>" names another arm's run
TITLE_PARAM = "name"  # the notebooks' run-title parameter: set to the arm's title, never compared when reusing


# ---------------------------------------------------------------------------------------------------------------
# measures taken on a run's saved outputs (its validation image and the HR it was scored against)

def valid_pair(path: str) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """(output, HR, scale) of a run's first validation image as (1, 3, H, W) tensors in [0, 1], or None."""
    run = Run(path)
    names = run.eval_images("valid")
    if not names:
        return None
    out, hr = run.eval_output("valid", names[0]), run.eval_reference("valid", names[0], "hr")
    if not (out.is_file() and hr.is_file()):
        return None
    a, b = (torch.from_numpy(read_image(p)).permute(2, 0, 1)[None].float() / 255 for p in (out, hr))
    h, w = min(a.shape[2], b.shape[2]), min(a.shape[3], b.shape[3])
    return a[..., :h, :w], b[..., :h, :w], max(1, int(run.params.get("scale") or 1))


def checkerboard(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """High-frequency energy of the output over the HR's in the HR's flattest 32 px window (lab.metrics): a grid
    pattern adds energy where the image should be flat, so compare arms (below 1 the output is smoother there
    than the HR, whose grain counts too: a blurry x4 output reads far below 1 with or without a grid)."""
    y, x = flattest_window(hr, 32, border=scale)
    return float(hf_energy_ratio(sr[..., y:y + 32, x:x + 32], hr[..., y:y + 32, x:x + 32])[0])


def sharpness(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> float:
    """High-frequency energy of the whole output over the HR's (border cropped): below 1 blurrier than the
    ground truth, 1 as detailed, above 1 more (noise, hallucinated texture). A proxy for LPIPS, which needs
    ImageNet weights the lab does not have: it sees blur, it cannot tell true detail from invented detail."""
    c = (..., slice(scale, -scale), slice(scale, -scale))
    return float(hf_energy_ratio(sr[c], hr[c])[0])


MEASURES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], float]] = {
    "checkerboard": checkerboard, "sharpness": sharpness}


def measure(path: str, names: Sequence[str]) -> dict[str, float]:
    """The named MEASURES of a run's validation output ({} when it saved none)."""
    pair = valid_pair(path) if names else None
    return {f"measure.{n}": MEASURES[n](*pair) for n in names} if pair else {}


# ---------------------------------------------------------------------------------------------------------------
# specs

def list_studies() -> list[str]:
    """Names of the study specs in notebooks/sweeps/ (sweep specs with a `study:` section)."""
    return [p.stem for p in sorted(STUDIES_DIR.glob("*.yaml")) if "study" in load_spec(p)]


def _label(combo: dict[str, Any]) -> str:
    return " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in combo.items() if k != "seed")


def arm_overrides(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{arm: its overrides} in the spec's order; an arm is named by its `arm:` label, else by its overrides."""
    out: dict[str, dict[str, Any]] = {}
    for combo in combinations(spec):
        combo = dict(combo)
        name = combo.pop(ARM_KEY, None) or _label(combo) or spec["sweep"]
        if name in out:
            raise ValueError(f"study {spec['sweep']!r}: two arms are named {name!r}; give each list item its own "
                             f"{ARM_KEY!r} label")
        out[name] = combo
    return out


def _ref(overrides: dict[str, Any]) -> str | None:
    v = overrides.get("init_from")
    return v[len(REF):] if isinstance(v, str) and v.startswith(REF) else None


def load_study(study: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """A study spec (a name in notebooks/sweeps/, a YAML path or a dict), checked; its `study` section with the
    defaults filled in. Errors name the bad key or value and what is accepted."""
    if isinstance(study, dict) and "study" in study and study.get("_checked"):
        return study
    try:
        spec = load_spec(study)
    except FileNotFoundError:
        raise FileNotFoundError(f"study {str(study)!r} not found: not a YAML file, and not one of "
                                f"{', '.join(list_studies())} (notebooks/sweeps/)") from None
    name = spec["sweep"]
    st = spec.get("study")
    if not st:
        raise ValueError(f"{name!r} is a sweep spec without a 'study' section; studies: {', '.join(list_studies())}")
    unknown = [k for k in st if k not in REQUIRED + OPTIONAL]
    missing = [k for k in REQUIRED if not st.get(k)]
    if unknown or missing:
        raise ValueError(f"study {name!r}: " + "; ".join(
            ([f"unknown key(s) {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else []))
            + f"; a study section has {REQUIRED} and optionally {OPTIONAL}")
    st = {"seeds": [0, 1], "higher_is_better": True, "show": [], "measures": [], "budget": None, "versus": {},
          "cpu_minutes": None, **st}
    if st["view"] not in VIEWS:
        raise ValueError(f"study {name!r}: view {st['view']!r} unknown; accepted: {', '.join(VIEWS)}")
    seeds = st["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and s >= 0 for s in seeds)
            and len(set(seeds)) == len(seeds)):
        raise ValueError(f"study {name!r}: seeds must be a list of distinct ints >= 0, e.g. [0, 1]; got {seeds!r}")
    bad = [m for m in st["measures"] if m not in MEASURES]
    if bad:
        raise ValueError(f"study {name!r}: unknown measure(s) {bad}; accepted: {', '.join(MEASURES)}")
    b = st["budget"]
    if b is not None and not (isinstance(b, dict) and set(b) == {"cost", "max"} and isinstance(b["max"], (int, float))):
        raise ValueError(f"study {name!r}: budget must be {{cost: <ledger column>, max: <number>}}, got {b!r}")
    arms = arm_overrides(spec)
    stray = [a for a in [st["baseline"], *st["versus"], *st["versus"].values()] if a is not None and a not in arms]
    if stray:
        raise ValueError(f"study {name!r}: baseline / versus name(s) {stray} that are not arms; arms: {list(arms)}")
    if st["view"] == "tradeoff" and not st["show"]:
        raise ValueError(f"study {name!r}: view 'tradeoff' plots the metric against the first `show` column; "
                         "give `show`")
    for arm, ov in arms.items():
        ref = _ref(ov)
        if ref is not None and (ref not in arms or _ref(arms[ref]) is not None):
            raise ValueError(f"study {name!r}: arm {arm!r} starts from {REF}{ref}, which is not an arm that runs "
                             f"on its own; arms: {[a for a in arms if _ref(arms[a]) is None]}")
    for pname, prof in (spec.get("profiles") or {}).items():
        extra = [k for k in prof if k not in PROFILE_KEYS]
        stray = [a for a in prof.get("arms") or {} if a not in arms]
        if extra or stray or not isinstance(prof.get("requires", []), list):
            raise ValueError(f"study {name!r} profile {pname!r}: unknown key(s) {extra}, unknown arm(s) {stray}; "
                             f"a profile has {PROFILE_KEYS} (requires: a list of folders or benchmark names)")
    return {**spec, "study": st, "_checked": True}


# ---------------------------------------------------------------------------------------------------------------
# planning

def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`b` over `a`, dict values merged one level deep (an arm's model_kwargs add to the base's)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = {**a[k], **v} if isinstance(a.get(k), dict) and isinstance(v, dict) else v
    return out


def _absolute(value: str, data_root: Path) -> str:
    """Relative folders of a data param (also inside a weighted mix 'a/:0.7, b/:0.3') taken from `data_root`."""
    parts = []
    for part in value.split(","):
        part = part.strip()
        head, sep, weight = part.rpartition(":")
        path, tail = (head, f":{weight}") if sep and weight.replace(".", "", 1).isdigit() else (part, "")
        if "/" in path and not path.startswith("builtin") and not Path(path).is_absolute():
            path = str(data_root / path)
        parts.append(path + tail)
    return ", ".join(p for p in parts if p)


def check_requires(requires: Sequence[str], data_root: str | os.PathLike | None = None,
                   what: str = "this study") -> None:
    """FileNotFoundError naming every missing folder (relative to `data_root`, default the project root) or
    benchmark set (a name: `<benchmarks>/<name>/HR`), with where each should be."""
    root, bench = Path(data_root or PROJECT_ROOT), benchmarks_dir()
    missing = []
    for r in requires:
        if "/" in r:
            if not (root / r).exists():
                missing.append(f"{r} (looked in {root / r}; see data/README.md, e.g. `lab data prepare "
                               f"DIV2K_train_HR {r}`)")
        elif bench is None or not (bench / r / "HR").is_dir():
            missing.append(f"{r} (a benchmark set: <benchmarks>/{r}/HR, benchmarks "
                           f"{'at ' + str(bench) if bench else 'not found'}; set $LAB_BENCHMARKS)")
    if missing:
        raise FileNotFoundError(f"{what} needs data that is not here: " + "; ".join(missing))


def _profile(spec: dict[str, Any], profile: str | None) -> dict[str, Any]:
    if profile in (None, "", CPU):
        return {}
    profiles = spec.get("profiles") or {}
    if profile not in profiles:
        raise KeyError(f"study {spec['sweep']!r} has no profile {profile!r}; profiles: {[CPU, *profiles]}")
    return profiles[profile]


def plan(study: str | os.PathLike | dict[str, Any], profile: str | None = None, *,
         root: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
         timeout: float | None = None, arms: Sequence[str] | None = None,
         overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The jobs of a study at `profile` (None: the CPU scale): each arm once, the baseline at every seed, each run
    titled `<study>: <arm>` and tagged with the study. `arms` keeps some (with the arms they start from);
    `overrides` go over every run (dicts merged), e.g. a tiny budget for a test."""
    spec = load_study(study)
    st, prof = spec["study"], _profile(spec, profile)
    name, data_root = spec["sweep"], Path(data_root or PROJECT_ROOT)
    check_requires(prof.get("requires") or [], data_root, f"study {name!r} at profile {profile!r}")
    all_arms = arm_overrides(spec)
    chosen = list(arms) if arms else list(all_arms)
    unknown = [a for a in chosen if a not in all_arms]
    if unknown:
        raise KeyError(f"study {name!r} has no arm(s) {unknown}; arms: {list(all_arms)}")
    chosen += [r for a in chosen if (r := _ref(all_arms[a])) and r not in chosen]
    base = {**spec["base"], **(prof.get("base") or {})}
    combos, metas = [], []
    for arm in [a for a in all_arms if a in chosen]:
        own = _merge(all_arms[arm], (prof.get("arms") or {}).get(arm) or {})
        combo = _merge(_merge(base, own), overrides or {})
        for k in PATH_PARAMS:
            if isinstance(combo.get(k), str) and combo[k]:
                combo[k] = _absolute(combo[k], data_root)
        seeds = st["seeds"] if arm == st["baseline"] else st["seeds"][:1]
        for seed in seeds:
            ref = _ref(own)
            after = {"arm": ref, "seed": seed if ref == st["baseline"] else st["seeds"][0]} if ref else None
            combos.append({ARM_KEY: arm, **combo, "seed": seed})
            metas.append({"name": name, "arm": arm, "seed": seed, "profile": profile or CPU, "after": after,
                          "overrides": own, "title": f"{name}: {arm}" + (f" (seed {seed})" if len(seeds) > 1 else "")})
    run_spec = {**spec, "base": {}, "tags": [*(spec.get("tags") or []), name],
                "timeout": prof.get("timeout", spec.get("timeout"))}
    run_spec.pop("_checked", None)
    jobs = expand(run_spec, root=root, timeout=timeout, combos=combos)
    titled = TITLE_PARAM in notebook_defaults(spec["notebook"])
    for job, meta in zip(jobs, metas):
        job["name"] = meta["title"]
        job["meta"]["study"] = meta
        if titled:  # the notebook titles its run from this parameter (else from the model)
            job["overrides"][TITLE_PARAM] = meta["title"]
    return jobs


def plan_table(jobs: Sequence[dict[str, Any]], reused: dict[int, int] | None = None) -> pd.DataFrame:
    """The planned runs as a table: arm, seed, what it waits for, the run reused (if any), its own overrides."""
    reused = reused or {}
    return pd.DataFrame([{"arm": j["meta"]["study"]["arm"], "seed": j["meta"]["study"]["seed"],
                          "after": (j["meta"]["study"]["after"] or {}).get("arm") or "",
                          "reuse": f"#{reused[i]}" if i in reused else "",
                          "overrides": json.dumps(j["meta"]["study"]["overrides"])} for i, j in enumerate(jobs)])


# ---------------------------------------------------------------------------------------------------------------
# finding a study's runs in the ledger

def _same(got: Any, want: Any) -> bool:
    """Whether a ledger cell (lists and dicts as JSON text) holds the resolved param value `want`."""
    if is_missing(got):
        return False
    if isinstance(want, (dict, list, tuple)):
        try:
            got = json.loads(got) if isinstance(got, str) else got
        except ValueError:
            return False
        return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(got == want)


def _key(job: dict[str, Any]) -> tuple[str, str, int]:
    m = job["meta"]["study"]
    return m["name"], m["arm"], m["seed"]


def _after(job: dict[str, Any]) -> tuple[str, str, int] | None:
    m = job["meta"]["study"]
    return (m["name"], m["after"]["arm"], m["after"]["seed"]) if m.get("after") else None


def match_runs(df: pd.DataFrame, jobs: Sequence[dict[str, Any]]) -> dict[int, pd.Series]:
    """{job index: ledger row} of the planned jobs that have a finished run: the newest done run tagged with the
    study whose params equal the job's (a job that starts from another arm: from that arm's matched run)."""
    found: dict[int, pd.Series] = {}
    if df.empty or "tags" not in df:
        return found
    done = df[df["status"] == "done"]
    ids: dict[tuple[str, str, int], int] = {}
    # every param that any job of the study sets is compared, also where this job leaves it at its default: the
    # baseline must not match the run of an arm that differs from it only by a param the baseline does not set
    varied = sorted({k for j in jobs for k in j["overrides"] if k != TITLE_PARAM}
                    | ({"init_from"} if any(_after(j) for j in jobs) else set()))
    for i in sorted(range(len(jobs)), key=lambda k: _after(jobs[k]) is not None):
        job = jobs[i]
        overrides = dict(job["overrides"])
        if _after(job):
            if _after(job) not in ids:
                continue
            overrides["init_from"] = str(ids[_after(job)])
        want = resolve(job["notebook"], overrides)
        rows = done[has_tag(done, job["meta"]["study"]["name"])]
        for k in varied:
            if rows.empty:
                break
            col = f"param.{k}"
            rows = rows[rows[col].map(lambda v, w=want[k]: _same(v, w))] if col in rows else rows.iloc[0:0]
        if not rows.empty:
            found[i] = rows.iloc[-1]
            ids[_key(job)] = int(rows.iloc[-1]["id"])
    return found


# ---------------------------------------------------------------------------------------------------------------
# running

def execute(jobs: list[dict[str, Any]], *, workers: int = 2, reuse: dict[int, int] | None = None,
            progress: bool = True) -> list[dict[str, Any]]:
    """Run the jobs (of one or several studies) not in `reuse` ({job index: run id}) on `workers` processes, in
    waves: a job that starts from another arm's run ('@arm') goes once that run is done, with its id; when that
    run failed it is not run (status 'skipped'). Returns the summary rows (lab.sweep.run_jobs), each with the arm's
    `title`."""
    ids = {_key(jobs[i]): rid for i, rid in (reuse or {}).items()}
    by_title = {j["name"]: j for j in jobs}
    pending, failed, rows = [i for i in range(len(jobs)) if i not in (reuse or {})], set(), []
    while pending:
        wave, waiting = [], []
        for i in pending:
            dep = _after(jobs[i])
            if dep is None or dep in ids:
                if dep is not None:
                    jobs[i]["overrides"]["init_from"] = str(ids[dep])
                wave.append(i)
            elif dep in failed or not any(_key(jobs[k]) == dep for k in pending):
                failed.add(_key(jobs[i]))
                rows.append({"id": None, "name": jobs[i]["name"], "title": jobs[i]["name"], "status": "skipped",
                             "seconds": 0.0, "error": f"starts from {dep[1]} (seed {dep[2]}), which did not finish",
                             "error_cell": None, "path": None})
            else:
                waiting.append(i)
        got = run_jobs([jobs[i] for i in wave], workers=workers, progress=progress,
                       desc=", ".join(sorted({jobs[i]["meta"]["study"]["name"] for i in wave}))) if wave else []
        for row in got:
            job = {"meta": Run(row["path"]).meta} if row.get("path") else by_title.get(row["name"])
            if job is None or "study" not in job["meta"]:
                continue
            row["title"] = job["meta"]["study"]["title"]
            if row["status"] == "done":
                ids[_key(job)] = int(row["id"])
            else:
                failed.add(_key(job))
        rows += got
        pending = waiting
    return rows


@dataclass
class StudyResult:
    """What `run_study` did: the plan, the runs reused and run, the answer, its verdict and the wall time."""

    spec: dict[str, Any]
    jobs: list[dict[str, Any]]
    reused: dict[int, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    answer: pd.DataFrame | None = None
    verdict: str = ""
    minutes: float = 0.0


def run_study(study: str | os.PathLike | dict[str, Any], *, workers: int | None = None, profile: str | None = None,
              root: str | os.PathLike | None = None, dry_run: bool = False, fresh: bool = False,
              progress: bool = True, timeout: float | None = None,
              data_root: str | os.PathLike | None = None) -> StudyResult:
    """Run a study (the runs it has no finished run for yet, unless `fresh`) and answer it from the ledger.
    `dry_run`: the plan only (which runs would be reused), nothing executed."""
    spec = load_study(study)
    jobs = plan(spec, profile, root=root, data_root=data_root, timeout=timeout)
    found = {} if fresh else match_runs(load_ledger(root, warn=False), jobs)
    res = StudyResult(spec, jobs, {i: int(r["id"]) for i, r in found.items()})
    if dry_run:
        return res
    t0 = time.monotonic()
    res.rows = execute(jobs, workers=int(workers or spec.get("workers") or 2), reuse=res.reused,
                       progress=progress)
    res.minutes = (time.monotonic() - t0) / 60
    res.answer = answer(load_ledger(root, warn=False), spec, jobs)
    res.verdict = verdict(res.answer)
    return res


# ---------------------------------------------------------------------------------------------------------------
# the answer

def study_rows(df: pd.DataFrame, spec: dict[str, Any], jobs: Sequence[dict[str, Any]] | None = None) -> pd.DataFrame:
    """The ledger rows that answer a study (one per planned job with a finished run), with `arm`, `seed` and the
    study's measures added."""
    spec = load_study(spec)
    jobs = plan(spec) if jobs is None else jobs
    recs = []
    for i, row in sorted(match_runs(df, jobs).items()):
        m = jobs[i]["meta"]["study"]
        recs.append({**row.to_dict(), "arm": m["arm"], "seed": m["seed"],
                     **measure(row["path"], spec["study"]["measures"])})
    return pd.DataFrame(recs)


def short(col: str) -> str:
    """A ledger column without its `metric.` / `param.` / `measure.` prefix (cost columns keep theirs)."""
    return col if col.startswith("cost.") else col.split(".", 1)[-1]


def answer(df: pd.DataFrame, spec: str | dict[str, Any], jobs: Sequence[dict[str, Any]] | None = None,
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
