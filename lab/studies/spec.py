"""A study spec: a sweep spec (lab.sweep) with a `study:` section, its arms and profiles, checked with errors that
name the bad key or value and what is accepted."""

from __future__ import annotations

import json
import os
from typing import Any

from lab.params import NOTEBOOKS_DIR
from lab.studies.measures import MEASURES
from lab.sweep import ARM_KEY, combinations, load_spec

STUDIES_DIR = NOTEBOOKS_DIR / "sweeps"
REQUIRED = ("question", "log", "look_at", "metric", "baseline", "view")
OPTIONAL = ("seeds", "higher_is_better", "show", "measures", "budget", "versus", "cpu_minutes")
VIEWS = ("table", "pareto", "grid", "curves", "tradeoff")
PROFILE_KEYS = ("base", "arms", "requires", "timeout")
CPU = "cpu"  # the name of the spec's own (CPU) scale
REF = "@"  # init_from: "@<arm>" names another arm's run


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

