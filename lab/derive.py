"""Runs made from other runs, the way our users' logs grow ("same as ##67 + one change", 000 ##72): a derived run
starts from a recorded run's params with changes on top (`lab run --from 42 -p norm none`), an extended run carries
a finished run on to a larger step budget from its last checkpoint (`lab extend 43 --steps N`), and a lineage spec
(YAML entries with an id, `from:` and the params they change) runs in dependency order (`lab sweep`).

Each derived run records its parent (the ledger's `changed` column is the difference to it) and, in its meta, the
changes it was asked for (`derived_from`, `changes`), an extension `extended_from` with the checkpoint and step.
"""

from __future__ import annotations

import datetime as _dt
import inspect
import os
import typing
import uuid
from pathlib import Path
from typing import Any, Callable

import yaml

from lab import runs
from lab.execute import make_job, run_job
from lab.logimport import STEP_PARAMS
from lab.models import MODELS
from lab.params import RESUME_PARAM, coerce, notebook_defaults, notebook_path, resolve
from lab.sweep import rerun_job, summary_table

DICT_PARAM_FOR_SHORTCUTS = "model_kwargs"  # `-p norm none` on a run whose model takes `norm` goes here
EXTENDABLE = {  # schedule -> what an extension does with it (README "Carrying a run on")
    "constant": "continues at the same LR",
    "exp_decay": "continues its decay from the step where the parent stopped (a function of the step, not of the "
                 "budget, when decay_steps is given)",
    "step": "continues its steps (a function of the step when `every` is given)",
}


def model_keywords(model: Any) -> list[str]:
    """The keyword names registered model `model` takes: its preset's, and when the preset passes `**kw` on, those
    of the class it returns (its return annotation); [] for an unknown model."""
    if not (isinstance(model, str) and model in MODELS):
        return []
    fn = MODELS[model]
    names = MODELS.accepted_kwargs(model)
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()):
        try:
            cls = typing.get_type_hints(fn).get("return")
        except (NameError, TypeError):
            cls = None
        if isinstance(cls, type):
            names += [p.name for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names]
    return names


def place_changes(params: dict[str, Any], changes: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The overrides that put `changes` on top of recorded `params`: a notebook parameter by name, a key of a
    mapping parameter as `model_kwargs.norm`, or a keyword the run's model takes (`norm`) into its `model_kwargs`;
    KeyError names what matches none of them."""
    out: dict[str, Any] = {}
    takes: list[str] | None = None
    for k, v in changes.items():
        head, dot, key = k.partition(".")
        if k in defaults:
            out[k] = coerce(k, v, defaults[k])
            continue
        if dot and isinstance(defaults.get(head), dict):
            model = out.get("model", params.get("model"))
            if head == DICT_PARAM_FOR_SHORTCUTS and model in MODELS and key not in model_keywords(model):
                raise KeyError(f"model {model!r} takes no {key!r}; it takes {model_keywords(model)}")
            base = dict(out.get(head, params.get(head) or {}))
            base[key] = coerce(key, v, base.get(key))
            out[head] = base
            continue
        if takes is None:
            takes = model_keywords(out.get("model", params.get("model")))
        if DICT_PARAM_FOR_SHORTCUTS in defaults and k in takes:
            base = dict(out.get(DICT_PARAM_FOR_SHORTCUTS, params.get(DICT_PARAM_FOR_SHORTCUTS) or {}))
            base[k] = coerce(k, v, base.get(k))
            out[DICT_PARAM_FOR_SHORTCUTS] = base
            continue
        model_hint = f"; model {params.get('model')!r} takes {takes}" if takes else ""
        raise KeyError(f"unknown change {k!r}: not a parameter of the notebook ({list(defaults)}), nor "
                       f"'<mapping param>.<key>'{model_hint}")
    return out


def derive_job(run_id: int | str, changes: dict[str, Any] | None = None, *, root: str | os.PathLike | None = None,
               name: str | None = None, timeout: float | None = None, cell_timeout: float | None = None,
               meta: dict[str, Any] | None = None, trust: bool = False) -> tuple[Any, list[str]]:
    """The job of a run derived from run `run_id`: its recorded params with `changes` on top, parent = it; and the
    warnings a rerun would give (code changed since). Code the parent carries runs only if trusted (or `trust`)."""
    job, warns = rerun_job(run_id, root=root, timeout=timeout, cell_timeout=cell_timeout, trust=trust)
    parent = runs.find(run_id, root)
    changes = dict(changes or {})
    defaults = notebook_defaults(job.notebook)
    placed = place_changes(parent.params, changes, defaults)
    job.overrides.update(placed)
    job.meta = {"derived_from": parent.id, "changes": changes, **(meta or {})}
    if name:
        job.name = name
    elif changes:
        job.name = f"{parent.meta.get('title') or parent.name} " + " ".join(f"{k}={v}" for k, v in changes.items())
    return job, warns


def extend_job(run_id: int | str, steps: int, *, root: str | os.PathLike | None = None,
               timeout: float | None = None, cell_timeout: float | None = None,
               trust: bool = False) -> tuple[Any, list[str]]:
    """The job that carries finished run `run_id` on to `steps` total steps: a new run (parent = it) starting from
    its last checkpoint. Refused with the reason for a schedule that is a function of the budget (one-cycle,
    cosine: extending them would restart or reshape the decay already trained), a run without a step budget, or
    a budget that is not larger."""
    parent = runs.find(run_id, root)
    p = parent.params
    had = p.get("steps") or 0
    if not had:
        raise ValueError(f"run {parent.name} trained in epochs (steps = 0); extend carries on a step budget: "
                         "train with -p steps N")
    if not isinstance(steps, int) or steps <= had:
        raise ValueError(f"--steps {steps!r} must be more than the {had} steps run {parent.name} trained")
    sched = p.get("schedule", "one_cycle")
    if sched not in EXTENDABLE:
        raise ValueError(f"run {parent.name}'s schedule {sched!r} is shaped by its budget of {had} steps, so it "
                         f"cannot be carried on without restarting it; extendable schedules: {sorted(EXTENDABLE)}; "
                         f"derive a new run instead: lab run --from {parent.id} -p steps {steps}")
    kw = dict(p.get("schedule_kwargs") or {})
    if sched == "exp_decay" and not kw.get("decay_steps"):
        kw["decay_steps"] = had  # the parent's decay spread over its budget: the same rate per step from here on
    if sched == "step" and not kw.get("every"):
        raise ValueError(f"run {parent.name}'s step schedule has no `every` (its steps were spread over the budget); "
                         "it cannot be carried on without moving them")
    spe = p.get("valid_every") or ((parent.read("data", {}) or {}).get("budget") or {}).get("steps_per_epoch")
    if not spe or had % spe:
        raise ValueError(f"run {parent.name}'s {had} steps are not whole epochs of its validation interval "
                         f"({spe or 'unrecorded'}), so its last checkpoint is not a step the longer run also reaches")
    ck = parent.checkpoint("last")
    if not ck.is_file():
        raise FileNotFoundError(f"run {parent.name} has no checkpoint to carry on from ({ck})")
    changes: dict[str, Any] = {"steps": steps, **({} if p.get("valid_every") else {"valid_every": spe})}
    if kw != (p.get("schedule_kwargs") or {}):
        changes["schedule_kwargs"] = kw
    job, warns = derive_job(parent.id, changes, root=root, timeout=timeout, cell_timeout=cell_timeout, trust=trust,
                            name=f"{parent.meta.get('title') or parent.name} steps {had}->{steps}")
    if RESUME_PARAM not in notebook_defaults(job.notebook):
        raise ValueError(f"notebook {Path(job.notebook).name} has no {RESUME_PARAM!r} parameter to start from "
                         "a checkpoint")
    job.overrides[RESUME_PARAM] = str(ck)
    job.meta["extended_from"] = {"run": parent.id, "checkpoint": str(ck), "steps_before": had}
    return job, warns


# ---------------------------------------------------------------------------------------------------------------
# lineage specs: a log's shape, run in dependency order

LINEAGE_KEYS = ("notebook", "sweep", "base", "entries", "timeout", "cell_timeout", "tags", "scale")
ENTRY_KEYS = ("id", "from", "params", "vary", "chosen", "extend", "note")


def is_lineage_spec(spec: str | os.PathLike | dict[str, Any]) -> bool:
    """Whether `spec` (a file, a name in notebooks/sweeps/ or a dict) is a lineage spec (it has `entries`)."""
    if isinstance(spec, dict):
        return "entries" in spec
    p = Path(spec)
    if not p.is_file() and not p.suffix:
        p = notebook_path("train").parent / "sweeps" / f"{p}.yaml"
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(d, dict) and "entries" in d


def load_lineage(spec: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read and check a lineage spec: `entries` each with an `id`, `from` (an earlier id; default the previous
    entry; null: the base params), `params` it changes, optional `vary` ({param: [values]}: one run each, derived
    alike), `chosen` (which varied run later entries derive from) and `note`; ValueError names a bad entry."""
    if not isinstance(spec, dict):
        p = Path(spec)
        if not p.is_file() and not p.suffix:
            p = notebook_path("train").parent / "sweeps" / f"{p}.yaml"
        if not p.is_file():
            raise FileNotFoundError(f"lineage spec {str(spec)!r} not found")
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        d.setdefault("sweep", p.stem)
    else:
        d = dict(spec)
    unknown = [k for k in d if k not in LINEAGE_KEYS]
    if unknown:
        raise ValueError(f"lineage spec: unknown key(s) {unknown}; accepted: {LINEAGE_KEYS}")
    entries = d.get("entries")
    if not (isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)):
        raise ValueError("lineage spec: 'entries' must be a non-empty list of mappings {id, from, params, note}")
    seen: dict[str, dict[str, Any]] = {}
    prev: str | None = None
    for e in entries:
        bad = [k for k in e if k not in ENTRY_KEYS]
        if bad or "id" not in e:
            raise ValueError(f"lineage entry {e!r}: needs an 'id'; unknown key(s) {bad}; accepted: {ENTRY_KEYS}")
        eid = str(e["id"])
        if eid in seen:
            raise ValueError(f"lineage entry id {eid!r} appears twice; ids must be unique (e.g. '33.2')")
        src = e.get("from", prev) if "from" in e else prev
        src = None if src is None else str(src)
        if src is not None and src not in seen:
            raise ValueError(f"lineage entry {eid!r}: from {src!r} is not an earlier entry; known: {list(seen)}")
        if src is not None and seen[src].get("vary") and not seen[src].get("chosen"):
            raise ValueError(f"lineage entry {eid!r} derives from {src!r}, which varies "
                             f"{list(seen[src]['vary'])} without a 'chosen' value; say which run it continues")
        vary = e.get("vary") or {}
        if not (isinstance(vary, dict) and all(isinstance(v, list) and v for v in vary.values())):
            raise ValueError(f"lineage entry {eid!r}: 'vary' must map params to non-empty lists of values")
        if e.get("extend") is not None and (src is None or vary or e.get("params")):
            raise ValueError(f"lineage entry {eid!r}: 'extend' carries its 'from' run on to more steps; it needs a "
                             "'from' and takes no 'params' or 'vary'")
        chosen = e.get("chosen")
        if chosen is not None and not (isinstance(chosen, dict) and all(
                k in vary and v in vary[k] for k, v in chosen.items())):
            raise ValueError(f"lineage entry {eid!r}: 'chosen' {chosen!r} must pick one value of each varied param")
        seen[eid] = {**e, "id": eid, "from": src, "params": dict(e.get("params") or {}), "vary": vary}
        prev = eid
    d["entries"] = list(seen.values())
    d.setdefault("notebook", "train")
    d["base"] = dict(d.get("base") or {})
    return d


def _runs_of(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, changes) of each run of an entry: one, or one per value of its `vary` lists (zipped by position
    when several params vary together, as `wd: 1e-3, 5e-4, ...` lists in a log do)."""
    vary = entry["vary"]
    if not vary:
        return [(entry["id"], dict(entry["params"]))]
    n = {len(v) for v in vary.values()}
    if len(n) > 1:
        raise ValueError(f"lineage entry {entry['id']!r}: the 'vary' lists must have equal lengths, got "
                         f"{ {k: len(v) for k, v in vary.items()} }")
    out = []
    for i in range(n.pop()):
        pick = {k: v[i] for k, v in vary.items()}
        label = entry["id"] + "/" + ",".join(f"{k}={v}" for k, v in pick.items())
        out.append((label, {**entry["params"], **pick}))
    return out


def plan(spec: str | os.PathLike | dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a lineage spec in dependency order: label, entry id, the label it derives from, its changes."""
    d = load_lineage(spec)
    picked: dict[str, str] = {}  # entry id -> the run label later entries derive from
    rows = []
    for e in d["entries"]:
        parent = picked.get(e["from"]) if e["from"] is not None else None
        for label, changes in _runs_of(e):
            rows.append({"label": label, "entry": e["id"], "from": parent, "changes": changes,
                         "extend": e.get("extend"), "note": e.get("note")})
        chosen = e.get("chosen")
        picked[e["id"]] = (e["id"] + "/" + ",".join(f"{k}={v}" for k, v in chosen.items())) if chosen else \
            rows[-1]["label"]
    return rows


def scaled(changes: dict[str, Any], scale: dict[str, Any] | None) -> dict[str, Any]:
    """`changes` at a spec's CPU scale: the step counts it names (`scale.params`, default `STEP_PARAMS`) divided by
    `scale.divide_steps_by` (at least 1 step)."""
    f = (scale or {}).get("divide_steps_by") or 1
    names = (scale or {}).get("params") or STEP_PARAMS
    if not (isinstance(f, (int, float)) and f >= 1):
        raise ValueError(f"lineage spec: scale.divide_steps_by must be a number >= 1, got {f!r}")

    def div(v: Any) -> Any:
        return max(1, round(v / f)) if isinstance(v, (int, float)) and not isinstance(v, bool) and v else v

    out = dict(changes)
    for k, v in changes.items():
        if k in names:
            out[k] = div(v)
        elif isinstance(v, dict):
            out[k] = {kk: div(vv) if f"{k}.{kk}" in names else vv for kk, vv in v.items()}
    return out


def _job_of(d: dict[str, Any], r: dict[str, Any], src: dict[str, Any] | None, root: Any, timeout: float | None,
            meta: dict[str, Any]) -> dict[str, Any]:
    """The job of one planned lineage run: from the base params, derived from `src`'s run, or `src` extended."""
    title = f"{d.get('sweep', 'lineage')} {r['label']}"
    kw = {"root": root, "timeout": timeout or d.get("timeout"), "cell_timeout": d.get("cell_timeout")}
    changes = scaled(r["changes"], d.get("scale"))
    if r.get("extend") is not None:
        job, _ = extend_job(src["id"], scaled({"extend": r["extend"]}, d.get("scale"))["extend"], **kw)
        job.name, job.meta = title, {**job.meta, **meta}
        return job
    if src is not None:
        return derive_job(src["id"], changes, name=title, meta=meta, **kw)[0]
    nb = notebook_path(d["notebook"])
    placed = place_changes(resolve(nb, d["base"]), changes, notebook_defaults(nb))
    return make_job(nb, {**d["base"], **placed}, name=title, meta=meta, **kw)


def run_lineage(spec: str | os.PathLike | dict[str, Any], *, root: str | os.PathLike | None = None,
                timeout: float | None = None, dry_run: bool = False,
                on_done: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Run a lineage spec entry by entry in dependency order, each run derived from the run of its `from` entry
    (the first from the base params), step counts at the spec's CPU `scale`; a run whose parent did not finish is
    recorded as skipped, not run. Returns the summary table (`dry_run`: the plan, params checked)."""
    import pandas as pd

    d = load_lineage(spec)
    rows = plan(d)
    if dry_run:
        nb = notebook_path(d["notebook"])
        defaults, chain = notebook_defaults(nb), {}
        for r in rows:  # every change names a parameter or a keyword of the model it applies to
            before = chain[r["from"]] if r["from"] else resolve(nb, d["base"])
            try:
                chain[r["label"]] = {**before, **place_changes(before, scaled(r["changes"], d.get("scale")), defaults)}
            except KeyError as e:
                raise KeyError(f"lineage entry {r['label']!r}: {e.args[0]}") from None
        return pd.DataFrame([{"run": r["label"], "from": r["from"] or "(base)",
                              "changes": scaled(r["changes"], d.get("scale")) if r.get("extend") is None else
                              {"extend to steps": scaled({"extend": r["extend"]}, d.get("scale"))["extend"]},
                              "note": r["note"]} for r in rows])
    tag = f"{d.get('sweep', 'lineage')}-{_dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    made: dict[str, dict[str, Any]] = {}
    out = []
    for r in rows:
        meta = {"lineage": {"spec": d.get("sweep"), "tag": tag, "entry": r["entry"], "run": r["label"],
                            "from": r["from"], "note": r["note"]}, **({"tags": list(d["tags"])} if d.get("tags")
                                                                       else {})}
        src = made.get(r["from"]) if r["from"] else None
        if r["from"] and (src is None or src["status"] != "done"):
            row = {"name": r["label"], "status": "skipped", "seconds": 0.0, "id": None, "error_cell": None,
                   "error": f"its parent {r['from']} did not finish"}
        else:
            row = run_job(_job_of(d, r, src, root, timeout, meta))
        made[r["label"]] = row
        out.append(row)
        if on_done is not None:
            on_done(row)
    return summary_table(out)
