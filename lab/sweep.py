"""Sweeps, reruns and resumes: many recorded runs of a notebook, each executed in its own process (`lab.execute`).

- `load_spec` / `expand`: a sweep spec (YAML: notebook, base params, grid / list / zip of overrides) -> jobs. A list
  item may name its combination with `arm: <label>` (a label, not a parameter: it titles the runs); `tags` are
  given to every run (kept in its meta, shown by the ledger); `study` and `profiles` are a study's (lab.studies).
- `sweep` / `run_jobs`: jobs through a local pool (`workers`) or a Dask cluster (`dask`), with a progress bar and
  a summary table; a failing run is recorded and the sweep goes on.
- `rerun` / `resume`: the same params again (parent = the old run), or the same run continued from its checkpoint.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import os
import sys
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
import yaml
from tqdm.auto import tqdm

from lab import runs, user_code
from lab.checks import check_names
from lab.execute import Job, make_job, notebook_hash, run_job, stop_all
from lab.params import EXECUTION_PARAMS, RESUME_PARAM, RUNNER_PARAMS, coerce, notebook_defaults, notebook_path, resolve
from lab.sources import data_changes
from lab.utils import threads_per_process

SPEC_KEYS = ("notebook", "sweep", "name", "base", "grid", "list", "zip", "timeout", "cell_timeout", "workers", "tags",
             "study", "profiles", "entries", "scale")  # entries, scale: a lineage spec's (lab.derive)
ARM_KEY = "arm"  # a list item's label (not a parameter)


def _check_sections(d: dict[str, Any]) -> None:
    """The shapes of the optional sections: tags a list of strings, study a mapping, profiles a mapping of them,
    a list item's `arm` a non-empty string."""
    tags = d.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) and t and "," not in t
                                                                for t in tags)):
        raise ValueError(f"sweep spec: 'tags' must be a list of strings without ',', got {tags!r}")
    if "study" in d and not isinstance(d["study"], dict):
        raise ValueError("sweep spec: 'study' must be a mapping (question, log, look_at, metric, baseline, view; "
                         "see lab.studies)")
    prof = d.get("profiles")
    if prof is not None and not (isinstance(prof, dict) and all(isinstance(v, dict) for v in prof.values())):
        raise ValueError("sweep spec: 'profiles' must map profile names to mappings, e.g. {full: {base: {...}}}")
    for item in d.get("list") or []:
        if ARM_KEY in item and not (isinstance(item[ARM_KEY], str) and item[ARM_KEY].strip()):
            raise ValueError(f"sweep spec: a list item's {ARM_KEY!r} must be a non-empty label, got {item!r}")



def load_spec(spec: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read and check a sweep spec (YAML file or dict); unknown keys and malformed sections raise ValueError."""
    if isinstance(spec, dict):
        d, stem = dict(spec), "sweep"
    else:
        p = Path(spec)
        if not p.is_file() and not p.suffix:
            p = notebook_path("train").parent / "sweeps" / f"{p}.yaml"
        if not p.is_file():
            raise FileNotFoundError(f"sweep spec {str(spec)!r} not found (a YAML file, or a name in notebooks/sweeps/)")
        try:
            d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            raise ValueError(f"sweep spec {p} is not valid YAML{at}: {getattr(e, 'problem', None) or e}; a spec holds "
                             "plain values only (YAML tags such as !!python/... are refused)") from None
        if not isinstance(d, dict):
            raise ValueError(f"sweep spec {p} must be a YAML mapping with keys {SPEC_KEYS}")
        stem = p.stem
    unknown = [k for k in d if k not in SPEC_KEYS]
    if unknown:
        raise ValueError(f"sweep spec: unknown key(s) {unknown}; accepted: {SPEC_KEYS}")
    d.setdefault("notebook", "train")
    d["base"] = dict(d.get("base") or {})
    d["sweep"] = str(d.get("sweep") or stem)
    if "grid" in d and not (isinstance(d["grid"], dict) and all(isinstance(v, list) for v in d["grid"].values())):
        raise ValueError("sweep spec: 'grid' must map parameter names to lists of values")
    if "list" in d and not (isinstance(d["list"], list) and all(isinstance(v, dict) for v in d["list"])):
        raise ValueError("sweep spec: 'list' must be a list of {param: value} mappings")
    if "zip" in d:
        z = d["zip"]
        if not (isinstance(z, dict) and all(isinstance(v, list) for v in z.values())):
            raise ValueError("sweep spec: 'zip' must map parameter names to lists of values")
        lengths = {k: len(v) for k, v in z.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"sweep spec: 'zip' lists must have equal lengths, got {lengths}")
    _check_sections(d)
    return d


def combinations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The override dicts of a spec: grid (cartesian) x zip (element-wise) x list, each section optional."""
    parts: list[list[dict[str, Any]]] = []
    if spec.get("grid"):
        keys = list(spec["grid"])
        parts.append([dict(zip(keys, vals)) for vals in itertools.product(*(spec["grid"][k] for k in keys))])
    if spec.get("zip"):
        keys = list(spec["zip"])
        parts.append([dict(zip(keys, vals)) for vals in zip(*(spec["zip"][k] for k in keys))])
    if spec.get("list"):
        parts.append([dict(x) for x in spec["list"]])
    out = []
    for combo in itertools.product(*parts):
        merged: dict[str, Any] = {}
        for c in combo:
            merged.update(c)
        out.append(merged)
    return out


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def run_title(spec: dict[str, Any], overrides: dict[str, Any], params: dict[str, Any], index: int,
              arm: str | None = None) -> str:
    """Title of one sweep run: the spec's `name` template formatted with the params (and `{arm}`), else
    `<sweep> <arm>` for a labelled combination, else `<sweep> k=v ...`."""
    tmpl = spec.get("name")
    if tmpl and "{" in str(tmpl):
        try:
            return str(tmpl).format(**params, i=index, sweep=spec["sweep"], arm=arm or "")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"sweep name template {tmpl!r} cannot be filled: {e}; use {{param}} or {{i}}") from None
    head = str(tmpl or spec["sweep"])
    tail = arm or " ".join(f"{k}={_fmt(v)}" for k, v in overrides.items())
    return f"{head} {tail}".strip() if tail else f"{head} {index}"


def expand(spec: str | os.PathLike | dict[str, Any], *, root: str | os.PathLike | None = None,
           timeout: float | None = None, combos: list[dict[str, Any]] | None = None) -> list[Job]:
    """The jobs of a sweep spec (base params + each combination, or each of `combos`), params checked against the
    notebook.

    A combination with unknown names raises KeyError naming it; `timeout` overrides the spec's per-run timeout.
    """
    spec = load_spec(spec)
    nb = notebook_path(spec["notebook"])
    combos = combinations(spec) if combos is None else combos
    tag = f"{spec['sweep']}-{_dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    jobs = []
    for i, combo in enumerate(combos):
        combo = dict(combo)
        arm = combo.pop(ARM_KEY, None)
        overrides = {**spec["base"], **combo}
        try:
            params = check_names(resolve(nb, overrides))
        except KeyError as e:
            raise KeyError(f"sweep {spec['sweep']!r} run {i} ({combo}): {e.args[0]}") from None
        except ValueError as e:
            raise ValueError(f"sweep {spec['sweep']!r} run {i} ({combo}): {e}") from None
        meta: dict[str, Any] = {"sweep": {"name": spec["sweep"], "tag": tag, "index": i, "of": len(combos),
                                          "overrides": combo, **({ARM_KEY: arm} if arm else {})}}
        if spec.get("tags"):
            meta["tags"] = list(spec["tags"])
        jobs.append(make_job(nb, overrides, name=run_title(spec, combo, params, i, arm), root=root,
                             timeout=timeout if timeout is not None else spec.get("timeout"),
                             cell_timeout=spec.get("cell_timeout"), meta=meta))
    return jobs


def summary_table(rows: Iterable[dict[str, Any]], metrics: Sequence[str] | None = None) -> Any:
    """The sweep's summary as a DataFrame: id, name, status, minutes, the main metrics, error."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return df
    if metrics is None:
        prefer = ("metric.valid_psnr_y", "metric.set5_psnr_y", "metric.valid_ssim_y", "metric.train_minutes")
        metrics = [c for c in prefer if c in df] or [c for c in df if c.startswith("metric.")][:4]
    df["minutes"] = df["seconds"].astype(float) / 60
    for c in ("id", "error_cell"):
        df[c] = pd.array([None if v is None or v != v else int(v) for v in df[c]], dtype="Int64")
    cols = [c for c in ("id", "name", "status", "minutes", *metrics, "error_cell", "error") if c in df]
    out = df[cols].rename(columns=lambda c: c.split(".", 1)[-1])
    if "id" in out:
        out = out.sort_values("id", na_position="last").reset_index(drop=True)
    return out


def _progress(total: int, desc: str, enabled: bool) -> Any:
    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def share_cores(jobs: list[Job], workers: int) -> int:
    """Give each job of a local pool of `workers` its share of this machine's cores (torch and OpenMP threads),
    recorded in the run's meta (`sweep.threads`); returns the share. Without it every worker would use every core
    and the processes would fight over them (slower, and timings no one can compare)."""
    share = threads_per_process(workers)
    for j in jobs:
        j.threads = share
        j.meta.setdefault("sweep", {})["threads"] = share
    return share


def _map_local(jobs: list[Job], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lab-sweep") as pool:
        futures = [pool.submit(run_job, j) for j in jobs]
        try:
            for f in as_completed(futures):
                on_done(f.result())
        except BaseException:  # Ctrl-C: cancel the queue, stop the runners (each records 'stopped')
            for f in futures:
                f.cancel()
            stop_all(grace=10.0)
            raise


def _map_dask(jobs: list[Job], address: Any, on_done: Callable[[dict[str, Any]], None],
              security: Any = None) -> None:
    from dask.distributed import Client  # lazy: dask is only needed for --dask
    from dask.distributed import as_completed as dask_completed

    client = address if isinstance(address, Client) else Client(address, security=security)
    try:
        tag = uuid.uuid4().hex[:8]
        futures = [client.submit(run_job, j, pure=False, key=f"lab-run-{tag}-{i}") for i, j in enumerate(jobs)]
        for f in dask_completed(futures):
            on_done(f.result())
    finally:
        if client is not address:
            client.close()


def tls_security(ca_file: str, cert: str, key: str | None = None) -> Any:
    """A `distributed.security.Security` for a client of a TLS Dask cluster (encryption required)."""
    from distributed.security import Security  # lazy: dask is only needed for --dask

    return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def sweep(spec: str | os.PathLike | dict[str, Any], *, workers: int | None = None, dask: Any = None,
          root: str | os.PathLike | None = None, timeout: float | None = None, progress: bool = True,
          dry_run: bool = False, security: Any = None) -> Any:
    """Run every combination of a sweep spec, each in its own process; returns the summary DataFrame.

    `workers` local processes at a time (default: the spec's `workers`, else 1), or `dask`: a scheduler address
    (`tcp://host:8786`, `tls://host:8786`) or a `dask.distributed.Client` whose workers share the runs directory;
    `security` is a `distributed.security.Security` for a TLS cluster (see `tls_security`). Failures are
    recorded and do not stop the sweep. `dry_run` returns the planned runs (name + overrides) without running.
    """
    import pandas as pd

    spec_d = load_spec(spec)
    if "entries" in spec_d:
        raise ValueError(f"{spec_d['sweep']!r} is a lineage spec (entries derived from one another): run it with "
                         "`lab sweep` or lab.derive.run_lineage")
    jobs = expand(spec_d, root=root, timeout=timeout)
    refs = sorted({j.name for j in jobs if str(j.overrides.get("init_from", "")).startswith("@")})
    if refs and not dry_run:
        raise ValueError(f"sweep {spec_d['sweep']!r}: {refs} start from another arm's run (init_from '@<arm>'), "
                         f"which only a study resolves; run it with `lab study {spec_d['sweep']}`")
    if dry_run:
        return pd.DataFrame([{"run": i, "name": j.name, "notebook": Path(j.notebook).name,
                              "overrides": json.dumps(j.meta["sweep"]["overrides"]), "timeout": j.timeout}
                             for i, j in enumerate(jobs)])
    n = int(workers or spec_d.get("workers") or 1)
    return summary_table(run_jobs(jobs, workers=n, dask=dask, progress=progress, desc=spec_d["sweep"],
                                  security=security))


def run_jobs(jobs: list[Job], *, workers: int = 1, dask: Any = None, progress: bool = True,
             desc: str = "runs", security: Any = None) -> list[dict[str, Any]]:
    """Run jobs (see `lab.execute.make_job`) on `workers` local processes, each given its share of the cores, or on
    a Dask cluster; returns their summary rows in the order they finished. Failures are rows, never raised."""
    rows: list[dict[str, Any]] = []
    bar = _progress(len(jobs), desc, progress)
    lock = threading.Lock()

    def on_done(row: dict[str, Any]) -> None:
        with lock:
            rows.append(row)
            bar.update(1)
            failed = sum(r["status"] != "done" for r in rows)
            bar.set_postfix_str(f"last {row.get('name')}: {row['status']}" + (f", {failed} failed" if failed else ""))

    try:
        if dask is not None:
            _map_dask(jobs, dask, on_done, security)
        else:
            share_cores(jobs, workers)
            _map_local(jobs, workers, on_done)
    finally:
        bar.close()
    return rows


# ---------------------------------------------------------------------------------------------------------------
# rerun and resume


def rerun_warnings(run: runs.Run, nb_path: str | os.PathLike | None = None) -> list[str]:
    """What differs between the code that made `run` and the code now: git commit, dirty tree, notebook cells."""
    meta = run.meta
    out = []
    then = (meta.get("git") or {}).get("commit")
    now_git = runs.git_info()
    if then and now_git.get("commit") and then != now_git["commit"]:
        out.append(f"git commit changed since run {run.id}: {then[:10]} -> {now_git['commit'][:10]}")
    if (meta.get("git") or {}).get("dirty"):
        out.append(f"run {run.id} was made from a working tree with uncommitted changes")
    if now_git.get("dirty"):
        out.append("the working tree has uncommitted changes now")
    nb_path = Path(nb_path) if nb_path else _notebook_of(run)
    old_hash = meta.get("notebook_hash")
    if old_hash is None and run.notebook.is_file():
        old_hash = notebook_hash(run.notebook)
    if old_hash is None:
        out.append(f"run {run.id} has no record of its notebook's code; cannot tell whether it changed")
    elif old_hash != notebook_hash(nb_path):
        out.append(f"notebook {nb_path.name} changed since run {run.id} (code cells differ)")
    return out


def data_warnings(run: runs.Run) -> tuple[list[str], list[str]]:
    """What differs between the training files `run` recorded (its data record's fingerprints) and its data spec's files
    now, as (changes, what cannot be told): a rerun trains on the files as they are."""
    p = run.params
    try:
        recorded = (run.read("data", {}) or {}).get("sources")
    except ValueError as e:
        return [], [f"cannot tell whether run {run.id}'s training data changed: {e}"]
    if not isinstance(p.get("data"), str) or not isinstance(recorded, list) or not recorded:
        return [], []
    if not all(isinstance(r, dict) and r.get("fingerprint") for r in recorded):
        return [], [f"run {run.id} records no fingerprint of its training data; cannot tell whether {p['data']!r} "
                    "changed"]
    changes = data_changes(recorded, p["data"], int(p.get("scale") or 2), p.get("data_lr") or "",
                           filters=p.get("data_filters") or None)
    return [f"{w}: the rerun trains on the files as they are now, run {run.id} did not" for w in changes], []


def _notebook_of(run: runs.Run) -> Path:
    meta = run.meta
    p = meta.get("notebook_path")
    if p and Path(p).is_file():
        return Path(p)
    if not meta.get("notebook"):
        raise ValueError(f"run {run.name} records no notebook; it was not made by a notebook and cannot be rerun")
    return notebook_path(meta["notebook"])


def rerun_job(run_id: int | str, *, root: str | os.PathLike | None = None, timeout: float | None = None,
              cell_timeout: float | None = None, trust: bool = False) -> tuple[Job, list[str]]:
    """The job that re-executes run `run_id` with exactly its recorded params (parent = it), and the warnings. A run
    that carries its own code (`lab.user_code`) is rebuilt from its copy, which runs only if trusted (or `trust`)."""
    old = runs.find(run_id, root)
    nb = _notebook_of(old)
    recorded = {k: v for k, v in old.params.items() if k not in RUNNER_PARAMS}
    known = notebook_defaults(nb)
    data_changed, data_unknown = data_warnings(old)
    warn = rerun_warnings(old, nb) + data_changed + data_unknown
    dropped = [k for k in recorded if k not in known]
    if dropped:
        warn.append(f"recorded params not in {nb.name}'s parameters cell now (derived or removed), left out: "
                    f"{dropped}")
    missing = [k for k in known if k not in recorded and k not in EXECUTION_PARAMS]
    if missing:
        warn.append(f"params of {nb.name} that run {old.id} did not record, taking today's defaults: {missing}")
    overrides = {k: v for k, v in recorded.items() if k in known}
    if RESUME_PARAM in overrides:
        overrides[RESUME_PARAM] = known[RESUME_PARAM]  # a rerun starts from scratch
    code = user_code.check_trust(old, trust)
    if code is not None and user_code.PARAM in known:
        overrides[user_code.PARAM] = code  # the copy it trained with, not the file as it is now
    title = old.meta.get("title") or old.name
    job = make_job(nb, overrides, name=title, root=root or old.dir.parent, parent=old.id, timeout=timeout,
                   cell_timeout=cell_timeout, meta={"rerun_of": old.id,
                                                  **({"data_changed": data_changed} if data_changed else {})})
    return job, warn


def rerun(run_id: int | str, *, root: str | os.PathLike | None = None, timeout: float | None = None,
          cell_timeout: float | None = None) -> dict[str, Any]:
    """Re-execute run `run_id` with its recorded params in a new run (parent = it); warns when code changed."""
    job, warn = rerun_job(run_id, root=root, timeout=timeout, cell_timeout=cell_timeout)
    for w in warn:
        warnings.warn(w, stacklevel=2)
    return run_job(job)


def resume_job(run_id: int | str, *, root: str | os.PathLike | None = None, checkpoint: str | None = None,
               timeout: float | None = None, cell_timeout: float | None = None,
               force: bool = False, changes: dict[str, Any] | None = None) -> Job:
    """The job that continues run `run_id` in its own directory from its last checkpoint.

    The notebook must have a `resume` parameter (the checkpoint path to continue from); finished runs and runs
    whose process is alive are refused unless `force`. `changes` (the learning rate or schedule only) apply from
    the checkpoint on, recorded in the meta's `param_changes` with the step they took effect.
    """
    run = runs.find(run_id, root)
    status, st = run.effective_status(), run.status_record
    if not force and status == "done":
        raise ValueError(f"run {run.name} is done; nothing to resume (use `lab rerun {run.id}` to run it again)")
    if not force and status == "running":
        raise ValueError(f"run {run.name} is still running (pid {st.get('pid')} on {st.get('host')}); "
                         "stop it first or pass --force")
    nb = _notebook_of(run)
    if RESUME_PARAM not in notebook_defaults(nb):
        raise ValueError(f"notebook {nb.name} has no {RESUME_PARAM!r} parameter, so it cannot continue from a "
                         f"checkpoint; add `{RESUME_PARAM} = \"\"` to its parameters cell and load that checkpoint "
                         "(weights, optimizer state, epoch) before fitting the remaining epochs")
    ck = Path(checkpoint) if checkpoint else run.resume_checkpoint()
    if not ck.is_file():
        raise FileNotFoundError(f"checkpoint {str(ck)!r} does not exist")
    known = notebook_defaults(nb)
    bad = [k for k in (changes or {}) if k not in RESUME_CHANGES or k not in known]
    if bad:
        raise ValueError(f"lab resume -p {bad[0]}: a resumed run keeps what it trained with except "
                         f"{list(RESUME_CHANGES)}; derive a new run for other changes (lab run --from {run.id} -p ...)")
    typed = {k: coerce(k, v, known[k]) for k, v in (changes or {}).items()}
    now_changed = {k: [run.params.get(k), v] for k, v in typed.items() if run.params.get(k) != v}
    if now_changed:
        run.update_meta(param_changes=[*run.meta.get("param_changes", []),
                                       {"time": runs.now(), "phase": "resume", "step": _resume_step(run),
                                        "changed": now_changed}])
    run.update_meta(resumed=[*run.meta.get("resumed", []),
                             {"time": runs.now(), "from": str(ck), "status_before": status}])
    run.set_status("running")
    return make_job(nb, name=run.name, root=run.dir.parent, timeout=timeout, cell_timeout=cell_timeout,
                    run_dir=run.dir, extra_params={RESUME_PARAM: str(ck), **typed})


RESUME_CHANGES = ("lr", "schedule", "schedule_kwargs")  # what `lab resume -p` may change mid-run


def _resume_step(run: runs.Run) -> int | None:
    """The optimizer step a resumed run continues from: its last recorded step of the plain phase (the checkpoint
    is saved after a validation), None when nothing was recorded."""
    steps = [h.get("step") for h in run.history if not h.get("phase") and isinstance(h.get("step"), int)]
    return steps[-1] if steps else None


def resume(run_id: int | str, **kw: Any) -> dict[str, Any]:
    """Continue an interrupted or stopped run from its last checkpoint, in its own directory (see `resume_job`)."""
    return run_job(resume_job(run_id, **kw))
