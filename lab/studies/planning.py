"""A study's jobs at a profile: the arms' params over the base (and the profile's), the baseline at every seed,
relative data folders taken from the project root, missing data named before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from lab.params import notebook_defaults
from lab.sources import parse_data_spec
from lab.studies.jobs import ArmRun, StudyJob, StudyMeta
from lab.studies.spec import CPU, _ref, arm_overrides, load_study
from lab.sweep import ARM_KEY, expand
from lab.utils import PROJECT_ROOT, benchmarks_dir

PATH_PARAMS = ("data", "data_lr", "valid", "valid_lr")
TITLE_PARAM = "name"  # the notebooks' run-title parameter: set to the arm's title, never compared when reusing


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """`b` over `a`, dict values merged one level deep (an arm's model_kwargs add to the base's)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = {**a[k], **v} if isinstance(a.get(k), dict) and isinstance(v, dict) else v
    return out


def _absolute(value: str, data_root: Path) -> str:
    """Relative folders of a data param (also inside a weighted mix 'a/:0.7, b/:0.3', read by
    lab.sources.parse_data_spec) taken from `data_root`."""
    parts = []
    for src, weight in parse_data_spec(value):
        if "/" in src and not src.startswith("builtin") and not Path(src).is_absolute():
            src = str(data_root / src)
        parts.append(src if weight is None else f"{src}:{int(weight) if weight.is_integer() else weight!r}")
    return ", ".join(parts)


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
         overrides: dict[str, Any] | None = None) -> list[StudyJob]:
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
            after = ArmRun(ref, seed if ref == st["baseline"] else st["seeds"][0]) if ref else None
            combos.append({ARM_KEY: arm, **combo, "seed": seed})
            metas.append(StudyMeta(name=name, arm=arm, seed=seed, profile=profile or CPU, after=after, overrides=own,
                                   title=f"{name}: {arm}" + (f" (seed {seed})" if len(seeds) > 1 else "")))
    run_spec = {**spec, "base": {}, "tags": [*(spec.get("tags") or []), name],
                "timeout": prof.get("timeout", spec.get("timeout"))}
    run_spec.pop("_checked", None)
    jobs = [StudyJob.of(job, meta) for job, meta in zip(expand(run_spec, root=root, timeout=timeout, combos=combos),
                                                          metas)]
    titled = TITLE_PARAM in notebook_defaults(spec["notebook"])
    for job in jobs:
        job.name = job.study.title
        if titled:  # the notebook titles its run from this parameter (else from the model)
            job.overrides[TITLE_PARAM] = job.study.title
    return jobs


def plan_table(jobs: Sequence[StudyJob], reused: dict[int, int] | None = None) -> pd.DataFrame:
    """The planned runs as a table: arm, seed, what it waits for, the run reused (if any), its own overrides."""
    reused = reused or {}
    return pd.DataFrame([{"arm": j.study.arm, "seed": j.study.seed, "after": j.study.after.arm if j.study.after else "",
                          "reuse": f"#{reused[i]}" if i in reused else "",
                          "overrides": json.dumps(j.study.overrides)} for i, j in enumerate(jobs)])

