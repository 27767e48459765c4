"""Executing one notebook with papermill as a recorded run, each execution in its own kernel process.

- `run_notebook`: one execution in this process (the `lab run` command): `prepare_run` + `execute_run`.
- `Job`, `make_job` / `run_job`: one run in its own OS process (`python -m lab.execute --execute RUN_DIR`) with a
  whole-run timeout; what local sweep workers and Dask workers both call. A failing run is recorded, never raised.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import papermill as pm
from jupyter_client.manager import AsyncKernelManager
from papermill.exceptions import PapermillExecutionError
from traitlets import default

from lab import runs, vocab
from lab.kernelspec import kernel_of
from lab.liveness import pid_alive
from lab.params import RUNNER_PARAMS, notebook_defaults, notebook_path, resolve
from lab.utils import PROJECT_ROOT, thread_env
from lab.workspace import template_changes

KILL_GRACE_S = 20.0  # after a timeout: seconds between SIGTERM (run marked, kernel shut down) and SIGKILL
STATIC_ENV = vocab.ENV_PAPERMILL  # set for kernels the runner starts: widgets draw static PNGs there
RUNNER_ENV = vocab.ENV_RUNNER_PID  # the runner's pid, for the kernel's watchdog


class IPCKernelManager(AsyncKernelManager):
    """Kernels a runner starts talk to it over Unix sockets: no TCP ports to collide between parallel runs or to
    expose, and no 'running over TCP without encryption' warning in every run's output. Each kernel's sockets get
    their own short path in the temp folder (parallel runs share a working directory, and socket paths are limited
    to about 100 characters)."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        return os.path.join(tempfile.gettempdir(), f"lab-kernel-{uuid.uuid4().hex[:16]}-ipc")

    log_file: str | None = None  # where the kernel process's own output goes (set per run by `kernel_manager_for`)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if self.log_file and "stderr" not in kw:  # the kernel's own noise (a shutdown mid-cell) stays in the run log
            log = open(self.log_file, "ab")  # noqa: SIM115 - the kernel process holds it for its lifetime
            kw.update(stdout=log, stderr=log)
        await super()._async_launch_kernel(kernel_cmd, **kw)


def kernel_manager_for(run: runs.Run) -> type[IPCKernelManager]:
    """The kernel manager class of one run's execution: its kernel's output goes to the run's runner log."""
    return type("RunKernelManager", (IPCKernelManager,), {"log_file": str(run.runner_log)})


def kernel_for(nb_path: str | os.PathLike) -> str:
    """The notebook's kernel: `restoration-lab`, registered for this Python on first use (`lab.kernelspec`)."""
    return kernel_of(nb_path)


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
    diff = template_changes(nb_path)
    if diff:
        warnings.warn(f"{nb_path} has uncommitted changes; the run executes them and records the diff (edit "
                      "notebooks in work/, opened by `make lab`, to keep the templates clean)", stacklevel=2)
    run = runs.create(params, name=name or params.get("name") or None, root=root, notebook=nb_path.name,
                      parent=parent)
    run.update_meta(notebook_path=str(nb_path), notebook_hash=notebook_hash(nb_path), **(meta or {}),
                    **({"notebook_diff": diff[-20000:]} if diff else {}))
    return run, nb_path, params


def clean_message(ename: str, evalue: str) -> str:
    """An exception's message as a person reads it: without its type repeated in front, and without the quotes
    str() puts around a KeyError's message."""
    msg = str(evalue)
    if msg.startswith(f"{ename}: "):
        msg = msg[len(ename) + 2:]
    if ename == "KeyError" and len(msg) > 1 and msg[0] == msg[-1] and msg[0] in "'\"":
        msg = msg[1:-1]
    return msg


def running_cell(executed: Path) -> int | None:
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

    `timeout` is papermill's per-cell limit. The executed notebook (partial on failure) is kept as the run's
    notebook; an earlier one (a resumed run) is kept beside it (`Run.keep_notebook`).
    """
    nb_path = Path(nb_path)
    partial = run.partial_notebook
    if partial.exists():  # a killed attempt's notebook: keep it beside the others before this one is written
        run.keep_notebook(partial, archive=True)
    saved_env = {k: os.environ.get(k) for k in (STATIC_ENV, RUNNER_ENV)}
    os.environ[STATIC_ENV] = "1"  # the kernel inherits it: widgets render static images under papermill
    os.environ[RUNNER_ENV] = str(os.getpid())  # and this: it exits when its runner is gone (lab.session)
    try:
        pm.execute_notebook(str(nb_path), str(partial), parameters={**params, "run_dir": str(run.dir)},
                            kernel_name=kernel_name or kernel_for(nb_path), cwd=str(nb_path.parent),
                            progress_bar=False, log_output=log_output,
                            execution_timeout=math.ceil(timeout) if timeout else None,
                            kernel_manager_class=kernel_manager_for(run))
    except PapermillExecutionError as e:
        run.fail(clean_message(e.ename, e.evalue), cell=e.cell_index, type=e.ename,
                 traceback="\n".join(e.traceback)[-8000:], source=e.source[-2000:])
    except BaseException as e:  # kernel death, timeout, Ctrl-C / SIGTERM: the run must not stay 'running'
        stopped = isinstance(e, KeyboardInterrupt)
        run.fail(e, cell=running_cell(partial), status="stopped" if stopped else "failed")
        if stopped:
            raise
    else:
        if run.status == "running":
            run.finish(None)
    finally:
        for k, v in saved_env.items():  # the environment exactly as it was
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if partial.exists():
            run.keep_notebook(partial)
    return run


def run_notebook(nb: str = "train", overrides: dict[str, Any] | None = None, *, name: str | None = None,
                 root: str | os.PathLike | None = None, parent: int | None = None, timeout: float | None = None,
                 kernel_name: str | None = None, log_output: bool = False) -> runs.Run:
    """Execute notebook `nb` with `overrides` into a new run directory; a failing cell marks the run failed.

    The executed notebook (partial on failure) is kept in the run directory.
    """
    run, nb_path, params = prepare_run(nb, overrides, name=name, root=root, parent=parent)
    return execute_run(run, nb_path, params, timeout=timeout, kernel_name=kernel_name, log_output=log_output)


# ---------------------------------------------------------------------------------------------------------------
# a job: one run in its own process


@dataclass
class Job:
    """One run for `run_job`: a new run of `notebook` with `overrides`, or `run_dir` to execute into. Plain values
    only, so it pickles for Dask workers and round-trips through `to_dict` / `from_dict` (JSON)."""

    notebook: str
    overrides: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    root: str = ""
    parent: int | None = None
    timeout: float | None = None
    cell_timeout: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # recorded in the run's meta (sweep, tags, rerun_of, ...)
    run_dir: str | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None  # torch/OpenMP threads of its process (and kernel); None: every core

    def recorded_meta(self) -> dict[str, Any]:
        """What the run records in its meta for this job (a study job adds its study's part)."""
        return dict(self.meta)

    def to_dict(self) -> dict[str, Any]:
        """The job as nested plain values (JSON-able)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        """The job `to_dict` gave."""
        return cls(**d)


def make_job(nb: str | os.PathLike, overrides: dict[str, Any] | None = None, *, name: str | None = None,
             root: str | os.PathLike | None = None, parent: int | None = None, timeout: float | None = None,
             cell_timeout: float | None = None, meta: dict[str, Any] | None = None,
             run_dir: str | os.PathLike | None = None, extra_params: dict[str, Any] | None = None,
             threads: int | None = None) -> Job:
    """A `Job` for `run_job`: a new run, or `run_dir` to execute into; the runs root resolved now (the worker may
    run elsewhere).

    `threads`: the torch/OpenMP threads its process (and kernel) may use, e.g. a sweep worker's share of the
    cores; None: the runtime's default (every core)."""
    return Job(notebook=str(nb), overrides=dict(overrides or {}), name=name, root=str(runs.runs_dir(root).resolve()),
               parent=parent, timeout=timeout, cell_timeout=cell_timeout, meta=dict(meta or {}),
               run_dir=str(run_dir) if run_dir else None, extra_params=dict(extra_params or {}), threads=threads)


LIVE: set[subprocess.Popen] = set()  # runner processes this process started and that have not ended
LIVE_LOCK = threading.Lock()


def stop(proc: subprocess.Popen, grace: float = KILL_GRACE_S) -> None:
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


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until process `pid` has exited (at most `timeout` seconds); whether it did."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_all(grace: float = 10.0) -> None:
    """Stop every live runner (Ctrl-C of a sweep); each records its run as stopped."""
    with LIVE_LOCK:
        live = list(LIVE)
    for p in live:
        stop(p, grace=grace)


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
    err = run.error or {}
    row = {"id": run.id, "name": run.name, "status": run.status, "seconds": seconds,
           "error": _error_text(err) if err else None,
           "error_cell": err.get("cell"), "path": str(run.dir)}
    row.update({f"metric.{k}": v for k, v in _metrics_of(run).items()})
    return row


def run_job(job: Job) -> dict[str, Any]:
    """Run one job (see `make_job`) in its own process with a whole-run timeout; returns its summary row.

    Never raises for a failing run: invalid params give status 'invalid' (no run directory), a failing cell or a
    timeout give 'failed' with the error and cell recorded in the run directory.
    """
    t0 = time.monotonic()
    try:
        if job.run_dir:
            run = runs.Run(job.run_dir)
            nb_path = Path(run.meta.get("notebook_path") or notebook_path(job.notebook))
        else:
            run, nb_path, _ = prepare_run(job.notebook, job.overrides, name=job.name, root=job.root,
                                          parent=job.parent, meta=job.recorded_meta())
    except (KeyError, ValueError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        return {"id": None, "name": job.name, "status": "invalid", "seconds": 0.0,
                "error": f"{type(e).__name__}: {msg}", "error_cell": None, "path": None}
    cmd = [sys.executable, "-m", "lab.execute", "--execute", str(run.dir), "--notebook", str(nb_path)]
    if job.cell_timeout:
        cmd += ["--cell-timeout", str(job.cell_timeout)]
    if job.extra_params:
        cmd += ["--extra", json.dumps(job.extra_params)]
    env = {**os.environ, STATIC_ENV: "1", "PYTHONUNBUFFERED": "1"}
    if job.threads:
        env.update(thread_env(job.threads))
    timeout = job.timeout
    timed_out = False
    with open(run.runner_log, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                cwd=str(PROJECT_ROOT))
        with LIVE_LOCK:
            LIVE.add(proc)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kernel = run.status_record.get("pid")  # the run's status was last written by its kernel
            stop(proc)
            if kernel and kernel != proc.pid:
                wait_gone(int(kernel), KILL_GRACE_S)  # its last writes land before the timeout is recorded
        except BaseException:
            stop(proc)
            raise
        finally:
            with LIVE_LOCK:
                LIVE.discard(proc)
    status = run.status
    if timed_out:
        run.fail(f"run exceeded its timeout of {timeout:g} s", cell=running_cell(run.notebook), type="Timeout")
    elif status == "running":  # the runner died without recording (killed, out of memory)
        run.fail(f"runner process exited with code {proc.returncode} without recording the run "
                 f"(see {run.runner_log})")
    return job_summary(run, time.monotonic() - t0)


def _execute_main(argv: Sequence[str] | None = None) -> int:
    """Entry of the runner process: execute a run directory's notebook with its recorded params."""
    ap = argparse.ArgumentParser(prog="python -m lab.execute")
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


if __name__ == "__main__":
    sys.exit(_execute_main())
