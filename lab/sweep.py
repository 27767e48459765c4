"""Executing notebooks with papermill: one run per execution, each in its own kernel process.

- `run_notebook`: one execution in this process (the `lab run` command).
- `load_spec` / `expand`: a sweep spec (YAML: notebook, base params, grid / list / zip of overrides) -> jobs.
- `run_job`: one job in its own OS process (`python -m lab.sweep --execute RUN_DIR`) with a whole-run timeout;
  the function local workers and Dask workers both call.
- `sweep`: every job of a spec through a local pool (`workers`) or a Dask cluster (`dask`), with a progress bar and
  a summary table; a failing run is recorded and the sweep goes on.
- `rerun` / `resume`: the same params again (parent = the old run), or the same run continued from its checkpoint.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from lab import runs
from lab.params import notebook_defaults, notebook_path, resolve

RUNNER_PARAMS = ("run_dir",)  # set by the runner, not part of an experiment's params
RESUME_PARAM = "resume"  # notebook parameter that names the checkpoint to continue from
SPEC_KEYS = ("notebook", "sweep", "name", "base", "grid", "list", "zip", "timeout", "cell_timeout", "workers")
KILL_GRACE_S = 20.0  # after a timeout: seconds between SIGTERM (run marked, kernel shut down) and SIGKILL
STATIC_ENV = "LAB_PAPERMILL"  # set for kernels the runner starts: widgets draw static PNGs there


def kernel_for(nb_path: str | os.PathLike) -> str:
    """The notebook's kernel if installed (`restoration-lab` after `make setup`), else this Python's `python3`."""
    from jupyter_client.kernelspec import find_kernel_specs

    name = json.loads(Path(nb_path).read_text())["metadata"].get("kernelspec", {}).get("name", "python3")
    return name if name in find_kernel_specs() else "python3"


def notebook_hash(nb_path: str | os.PathLike) -> str:
    """SHA-256 (16 hex) of a notebook's code cells, papermill's injected-parameters cell left out.

    An executed copy (outputs, injected cell) hashes like its source, so a run's notebook can be compared with the
    current one.
    """
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    h = hashlib.sha256()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code" or "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        src = cell.get("source", "")
        h.update(("".join(src) if isinstance(src, list) else src).encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# one run


def prepare_run(nb: str | os.PathLike = "train", overrides: dict[str, Any] | None = None, *, name: str | None = None,
                root: str | os.PathLike | None = None, parent: int | None = None,
                meta: dict[str, Any] | None = None) -> tuple[runs.Run, Path, dict[str, Any]]:
    """Resolve the params of notebook `nb` and create the run directory; returns (run, notebook path, params).

    Unknown parameter names raise KeyError before any directory is made. The meta records the notebook's path and
    code hash (for `rerun`'s change warning) and `meta` (e.g. the sweep it belongs to).
    """
    nb_path = notebook_path(nb)
    params = resolve(nb_path, overrides)
    for k in RUNNER_PARAMS:
        params.pop(k, None)
    run = runs.create(params, name=name or params.get("name") or None, root=root, notebook=nb_path.name,
                      parent=parent)
    m = run.meta
    m.update(notebook_path=str(nb_path), notebook_hash=notebook_hash(nb_path), **(meta or {}))
    run.write_json("meta.json", m)
    return run, nb_path, params


def _running_cell(executed: Path) -> int | None:
    """Index of the cell a stopped execution was in: the one papermill marks running, else the last one started
    (papermill marks an interrupted cell completed); None if unknown."""
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    last = None
    for i, cell in enumerate(nb.get("cells", [])):
        pm_meta = cell.get("metadata", {}).get("papermill", {})
        if pm_meta.get("status") == "running":
            return i
        if pm_meta.get("start_time"):
            last = i
    return last


def execute_run(run: runs.Run, nb_path: str | os.PathLike, params: dict[str, Any], *, timeout: float | None = None,
                kernel_name: str | None = None, log_output: bool = False) -> runs.Run:
    """Execute `nb_path` with `params` into the existing run directory; a failing cell marks the run failed.

    `timeout` is papermill's per-cell limit. The executed notebook (partial on failure) is kept as
    `notebook.ipynb`; an earlier one (a resumed run) is kept as `notebook.<n>.ipynb`.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    nb_path = Path(nb_path)
    partial = run.dir / ".notebook.partial.ipynb"
    old_env = os.environ.get(STATIC_ENV)
    os.environ[STATIC_ENV] = "1"  # the kernel inherits it: widgets render static images under papermill
    try:
        pm.execute_notebook(str(nb_path), str(partial), parameters={**params, "run_dir": str(run.dir)},
                            kernel_name=kernel_name or kernel_for(nb_path), cwd=str(nb_path.parent),
                            progress_bar=False, log_output=log_output, execution_timeout=timeout)
    except PapermillExecutionError as e:
        run.fail(f"{e.ename}: {e.evalue}", cell=e.cell_index)
        err = run.read("status.json")["error"]
        err.update(type=e.ename, traceback="\n".join(e.traceback)[-8000:], source=e.source[-2000:])
        run.set_status("failed", error=err)
    except BaseException as e:  # kernel death, timeout, Ctrl-C / SIGTERM: the run must not stay 'running'
        stopped = isinstance(e, KeyboardInterrupt)
        run.fail(e, cell=_running_cell(partial), status="interrupted" if stopped else "failed")
        if stopped:
            raise
    else:
        if run.status == "running":
            run.finish(None)
    finally:
        if old_env is None:
            os.environ.pop(STATIC_ENV, None)
        else:
            os.environ[STATIC_ENV] = old_env
        if partial.exists():
            final = run.dir / "notebook.ipynb"
            if final.exists():  # a resumed run: keep the earlier attempt beside it
                n = 1 + sum(1 for _ in run.dir.glob("notebook.*.ipynb"))
                os.replace(final, run.dir / f"notebook.{n}.ipynb")
            os.replace(partial, final)
    return run


def run_notebook(nb: str = "train", overrides: dict[str, Any] | None = None, *, name: str | None = None,
                 root: str | os.PathLike | None = None, parent: int | None = None, timeout: float | None = None,
                 kernel_name: str | None = None, log_output: bool = False) -> runs.Run:
    """Execute notebook `nb` with `overrides` into a new run directory; a failing cell marks the run failed.

    The executed notebook (partial on failure) is kept as `notebook.ipynb` in the run directory.
    """
    run, nb_path, params = prepare_run(nb, overrides, name=name, root=root, parent=parent)
    return execute_run(run, nb_path, params, timeout=timeout, kernel_name=kernel_name, log_output=log_output)


def python_executable() -> str:
    """The interpreter running the lab (used for subprocess runners)."""
    return sys.executable


# ---------------------------------------------------------------------------------------------------------------
# a job: one run in its own process


def make_job(nb: str | os.PathLike, overrides: dict[str, Any] | None = None, *, name: str | None = None,
             root: str | os.PathLike | None = None, parent: int | None = None, timeout: float | None = None,
             cell_timeout: float | None = None, meta: dict[str, Any] | None = None,
             run_dir: str | os.PathLike | None = None, extra_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job as a plain dict (picklable, JSON-able) for `run_job`: a new run, or `run_dir` to execute into."""
    return {"notebook": str(nb), "overrides": dict(overrides or {}), "name": name,
            "root": str(runs.runs_dir(root).resolve()), "parent": parent, "timeout": timeout,
            "cell_timeout": cell_timeout, "meta": dict(meta or {}),
            "run_dir": str(run_dir) if run_dir else None, "extra_params": dict(extra_params or {})}


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def _stop(proc: subprocess.Popen, grace: float = KILL_GRACE_S) -> None:
    """SIGTERM the runner (it records the run and shuts its kernel down), SIGKILL it after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def _metrics_of(run: runs.Run) -> dict[str, Any]:
    try:
        m = run.metrics
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _error_text(err: dict[str, Any]) -> str:
    t, m = str(err.get("type", "Error")), str(err.get("message", ""))
    return m if m.startswith(f"{t}:") else f"{t}: {m}"


def job_summary(run: runs.Run, seconds: float | None = None) -> dict[str, Any]:
    """The row a sweep reports for one run: id, name, status, error, seconds and numeric metrics."""
    st = run.read("status.json", {}) or {}
    err = st.get("error") or {}
    row = {"id": run.id, "name": run.name, "status": st.get("status"), "seconds": seconds,
           "error": _error_text(err) if err else None,
           "error_cell": err.get("cell"), "path": str(run.dir)}
    row.update({f"metric.{k}": v for k, v in _metrics_of(run).items()})
    return row


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job (see `make_job`) in its own process with a whole-run timeout; returns its summary row.

    Never raises for a failing run: invalid params give status 'invalid' (no run directory), a failing cell or a
    timeout give 'failed' with the error and cell recorded in the run directory.
    """
    t0 = time.monotonic()
    try:
        if job.get("run_dir"):
            run = runs.Run(job["run_dir"])
            nb_path = Path(run.meta.get("notebook_path") or notebook_path(job["notebook"]))
        else:
            run, nb_path, _ = prepare_run(job["notebook"], job["overrides"], name=job.get("name"),
                                          root=job["root"], parent=job.get("parent"), meta=job.get("meta"))
    except (KeyError, ValueError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        return {"id": None, "name": job.get("name"), "status": "invalid", "seconds": 0.0,
                "error": f"{type(e).__name__}: {msg}", "error_cell": None, "path": None}
    cmd = [sys.executable, "-m", "lab.sweep", "--execute", str(run.dir), "--notebook", str(nb_path)]
    if job.get("cell_timeout"):
        cmd += ["--cell-timeout", str(job["cell_timeout"])]
    if job.get("extra_params"):
        cmd += ["--extra", json.dumps(job["extra_params"])]
    env = {**os.environ, STATIC_ENV: "1", "PYTHONUNBUFFERED": "1"}
    timeout = job.get("timeout")
    timed_out = False
    with open(run.dir / "runner.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                cwd=str(Path(__file__).resolve().parent.parent))
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc)
        except BaseException:
            _stop(proc)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
    status = run.status
    if timed_out:
        time.sleep(1.5)  # the kernel exits within a second of its runner; let its last writes land first
        cell = _running_cell(run.dir / "notebook.ipynb")
        run.fail(f"run exceeded its timeout of {timeout:g} s", cell=cell)
        err = run.read("status.json")["error"]
        err["type"] = "Timeout"
        run.set_status("failed", error=err)
    elif status == "running":  # the runner died without recording (killed, out of memory)
        run.fail(f"runner process exited with code {proc.returncode} without recording the run "
                 f"(see {run.dir / 'runner.log'})")
    return job_summary(run, time.monotonic() - t0)


def _execute_main(argv: Sequence[str] | None = None) -> int:
    """Entry of the runner process: execute a run directory's notebook with its recorded params."""
    ap = argparse.ArgumentParser(prog="python -m lab.sweep")
    ap.add_argument("--execute", required=True, help="run directory to execute into")
    ap.add_argument("--notebook", required=True)
    ap.add_argument("--cell-timeout", type=float)
    ap.add_argument("--extra", help="JSON dict of params added for this execution (e.g. resume)")
    a = ap.parse_args(argv)

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, _interrupt)
    run = runs.Run(a.execute)
    params = {**run.params, **(json.loads(a.extra) if a.extra else {})}
    known = notebook_defaults(a.notebook)
    params = {k: v for k, v in params.items() if k in known}
    try:
        execute_run(run, a.notebook, params, timeout=a.cell_timeout)
    except KeyboardInterrupt:
        return 130
    return 0


# ---------------------------------------------------------------------------------------------------------------
# sweep specs


def load_spec(spec: str | os.PathLike | dict[str, Any]) -> dict[str, Any]:
    """Read and check a sweep spec (YAML file or dict); unknown keys and malformed sections raise ValueError."""
    import yaml

    if isinstance(spec, dict):
        d, stem = dict(spec), "sweep"
    else:
        p = Path(spec)
        if not p.is_file() and not p.suffix:
            p = notebook_path("train").parent / "sweeps" / f"{p}.yaml"
        if not p.is_file():
            raise FileNotFoundError(f"sweep spec {str(spec)!r} not found (a YAML file, or a name in notebooks/sweeps/)")
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
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


def run_title(spec: dict[str, Any], overrides: dict[str, Any], params: dict[str, Any], index: int) -> str:
    """Title of one sweep run: the spec's `name` template formatted with the params, else `<sweep> k=v ...`."""
    tmpl = spec.get("name")
    if tmpl and "{" in str(tmpl):
        try:
            return str(tmpl).format(**params, i=index, sweep=spec["sweep"])
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"sweep name template {tmpl!r} cannot be filled: {e}; use {{param}} or {{i}}") from None
    head = str(tmpl or spec["sweep"])
    tail = " ".join(f"{k}={_fmt(v)}" for k, v in overrides.items())
    return f"{head} {tail}".strip() if tail else f"{head} {index}"


def expand(spec: str | os.PathLike | dict[str, Any], *, root: str | os.PathLike | None = None,
           timeout: float | None = None) -> list[dict[str, Any]]:
    """The jobs of a sweep spec (base params + each combination), params checked against the notebook.

    A combination with unknown names raises KeyError naming it; `timeout` overrides the spec's per-run timeout.
    """
    spec = load_spec(spec)
    nb = notebook_path(spec["notebook"])
    combos = combinations(spec)
    tag = f"{spec['sweep']}-{_dt.datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    jobs = []
    for i, combo in enumerate(combos):
        overrides = {**spec["base"], **combo}
        try:
            params = resolve(nb, overrides)
        except KeyError as e:
            raise KeyError(f"sweep {spec['sweep']!r} run {i} ({combo}): {e.args[0]}") from None
        jobs.append(make_job(nb, overrides, name=run_title(spec, combo, params, i), root=root,
                             timeout=timeout if timeout is not None else spec.get("timeout"),
                             cell_timeout=spec.get("cell_timeout"),
                             meta={"sweep": {"name": spec["sweep"], "tag": tag, "index": i, "of": len(combos),
                                             "overrides": combo}}))
    return jobs


def summary_table(rows: Iterable[dict[str, Any]], metrics: Sequence[str] | None = None) -> Any:
    """The sweep's summary as a DataFrame: id, name, status, minutes, the main metrics, error."""
    import pandas as pd

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
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _map_local(jobs: list[dict[str, Any]], workers: int, on_done: Callable[[dict[str, Any]], None]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lab-sweep") as pool:
        futures = [pool.submit(run_job, j) for j in jobs]
        try:
            for f in as_completed(futures):
                on_done(f.result())
        except BaseException:  # Ctrl-C: cancel the queue, stop the runners (each records 'interrupted')
            for f in futures:
                f.cancel()
            with _LIVE_LOCK:
                live = list(_LIVE)
            for p in live:
                _stop(p, grace=10.0)
            raise


def _map_dask(jobs: list[dict[str, Any]], address: Any, on_done: Callable[[dict[str, Any]], None]) -> None:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    client = address if isinstance(address, Client) else Client(address)
    try:
        tag = uuid.uuid4().hex[:8]
        futures = [client.submit(run_job, j, pure=False, key=f"lab-run-{tag}-{i}") for i, j in enumerate(jobs)]
        for f in dask_completed(futures):
            on_done(f.result())
    finally:
        if client is not address:
            client.close()


def sweep(spec: str | os.PathLike | dict[str, Any], *, workers: int | None = None, dask: Any = None,
          root: str | os.PathLike | None = None, timeout: float | None = None, progress: bool = True,
          dry_run: bool = False) -> Any:
    """Run every combination of a sweep spec, each in its own process; returns the summary DataFrame.

    `workers` local processes at a time (default: the spec's `workers`, else 1), or `dask`: a scheduler address
    (`tcp://host:8786`) or a `dask.distributed.Client` whose workers share the runs directory. Failures are
    recorded and do not stop the sweep. `dry_run` returns the planned runs (name + overrides) without running.
    """
    import pandas as pd

    spec_d = load_spec(spec)
    jobs = expand(spec_d, root=root, timeout=timeout)
    if dry_run:
        return pd.DataFrame([{"run": i, "name": j["name"], "notebook": Path(j["notebook"]).name,
                              "overrides": json.dumps(j["meta"]["sweep"]["overrides"]), "timeout": j["timeout"]}
                             for i, j in enumerate(jobs)])
    rows: list[dict[str, Any]] = []
    bar = _progress(len(jobs), spec_d["sweep"], progress)
    lock = threading.Lock()

    def on_done(row: dict[str, Any]) -> None:
        with lock:
            rows.append(row)
            bar.update(1)
            failed = sum(r["status"] != "done" for r in rows)
            bar.set_postfix_str(f"last {row.get('name')}: {row['status']}" + (f", {failed} failed" if failed else ""))

    try:
        if dask is not None:
            _map_dask(jobs, dask, on_done)
        else:
            _map_local(jobs, workers or spec_d.get("workers") or 1, on_done)
    finally:
        bar.close()
    return summary_table(rows)


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
    if old_hash is None and (run.dir / "notebook.ipynb").is_file():
        old_hash = notebook_hash(run.dir / "notebook.ipynb")
    if old_hash is None:
        out.append(f"run {run.id} has no record of its notebook's code; cannot tell whether it changed")
    elif old_hash != notebook_hash(nb_path):
        out.append(f"notebook {nb_path.name} changed since run {run.id} (code cells differ)")
    return out


def _notebook_of(run: runs.Run) -> Path:
    meta = run.meta
    p = meta.get("notebook_path")
    if p and Path(p).is_file():
        return Path(p)
    if not meta.get("notebook"):
        raise ValueError(f"run {run.name} records no notebook; it was not made by a notebook and cannot be rerun")
    return notebook_path(meta["notebook"])


def rerun_job(run_id: int | str, *, root: str | os.PathLike | None = None, timeout: float | None = None,
              cell_timeout: float | None = None) -> tuple[dict[str, Any], list[str]]:
    """The job that re-executes run `run_id` with exactly its recorded params (parent = it), and the warnings."""
    old = runs.find(run_id, root)
    nb = _notebook_of(old)
    recorded = {k: v for k, v in old.params.items() if k not in RUNNER_PARAMS}
    known = notebook_defaults(nb)
    warn = rerun_warnings(old, nb)
    dropped = [k for k in recorded if k not in known]
    if dropped:
        warn.append(f"recorded params not in {nb.name}'s parameters cell now (derived or removed), left out: "
                    f"{dropped}")
    missing = [k for k in known if k not in recorded and k not in (*RUNNER_PARAMS, RESUME_PARAM)]
    if missing:
        warn.append(f"params of {nb.name} that run {old.id} did not record, taking today's defaults: {missing}")
    overrides = {k: v for k, v in recorded.items() if k in known}
    if RESUME_PARAM in overrides:
        overrides[RESUME_PARAM] = known[RESUME_PARAM]  # a rerun starts from scratch
    title = old.meta.get("title") or old.name
    job = make_job(nb, overrides, name=title, root=root or old.dir.parent, parent=old.id, timeout=timeout,
                   cell_timeout=cell_timeout, meta={"rerun_of": old.id})
    return job, warn


def rerun(run_id: int | str, *, root: str | os.PathLike | None = None, timeout: float | None = None,
          cell_timeout: float | None = None) -> dict[str, Any]:
    """Re-execute run `run_id` with its recorded params in a new run (parent = it); warns when code changed."""
    job, warn = rerun_job(run_id, root=root, timeout=timeout, cell_timeout=cell_timeout)
    for w in warn:
        warnings.warn(w, stacklevel=2)
    return run_job(job)


def last_checkpoint(run: runs.Run) -> Path:
    """The checkpoint a run continues from: `checkpoints/last.pth`, else the newest `.pth` there."""
    ck = run.dir / "checkpoints"
    if (ck / "last.pth").is_file():
        return ck / "last.pth"
    found = sorted(ck.glob("*.pth"), key=lambda p: p.stat().st_mtime) if ck.is_dir() else []
    if not found:
        raise FileNotFoundError(f"run {run.name} has no checkpoint in {ck} (expected last.pth, saved each epoch)")
    return found[-1]


def resume_job(run_id: int | str, *, root: str | os.PathLike | None = None, checkpoint: str | None = None,
               timeout: float | None = None, cell_timeout: float | None = None,
               force: bool = False) -> dict[str, Any]:
    """The job that continues run `run_id` in its own directory from its last checkpoint.

    The notebook must have a `resume` parameter (the checkpoint path to continue from); finished runs and runs
    whose process is alive are refused unless `force`.
    """
    from lab import ledger

    run = runs.find(run_id, root)
    row = ledger.load_run(run.dir)
    if not force and row["status"] == "done":
        raise ValueError(f"run {run.name} is done; nothing to resume (use `lab rerun {run.id}` to run it again)")
    if not force and row["status"] == "running":
        raise ValueError(f"run {run.name} is still running (pid {row.get('pid')} on {row.get('host')}); "
                         "stop it first or pass --force")
    nb = _notebook_of(run)
    if RESUME_PARAM not in notebook_defaults(nb):
        raise ValueError(f"notebook {nb.name} has no {RESUME_PARAM!r} parameter, so it cannot continue from a "
                         f"checkpoint; add `{RESUME_PARAM} = \"\"` to its parameters cell and load that checkpoint "
                         "(weights, optimizer state, epoch) before fitting the remaining epochs")
    ck = Path(checkpoint) if checkpoint else last_checkpoint(run)
    if not ck.is_file():
        raise FileNotFoundError(f"checkpoint {str(ck)!r} does not exist")
    meta = run.meta
    meta.setdefault("resumed", []).append({"time": runs.now(), "from": str(ck), "status_before": row["status"]})
    run.write_json("meta.json", meta)
    run.set_status("running")
    return make_job(nb, name=run.name, root=run.dir.parent, timeout=timeout, cell_timeout=cell_timeout,
                    run_dir=run.dir, extra_params={RESUME_PARAM: str(ck)})


def resume(run_id: int | str, **kw: Any) -> dict[str, Any]:
    """Continue an interrupted run from its last checkpoint, in its own directory (see `resume_job`)."""
    return run_job(resume_job(run_id, **kw))


if __name__ == "__main__":
    sys.exit(_execute_main())
