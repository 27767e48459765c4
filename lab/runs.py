"""Run directories: atomic ids, resolved params, environment, status, history, checkpoints, samples.

Layout of `runs/NNNN-<slug>/`:
  params.json     the full resolved params
  meta.json       id, name, created, notebook, parent, git commit/dirty, environment
  status.json     status (running | done | failed | diverged | interrupted), heartbeat, pid, host, error
  history.json    one record per epoch
  metrics.json    the final summary
  checkpoints/    lab checkpoints (weights + model_name + model_kwargs + params)
  samples/        sample images;  eval/  benchmark tables and SR outputs;  notebook.ipynb  the executed notebook
Every file is written through a temp file + rename, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import socket
import subprocess
import traceback
from pathlib import Path
from typing import Any

from lab.utils import PROJECT_ROOT, atomic_write_json, read_json

STATUSES = ("running", "done", "failed", "diverged", "interrupted")
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"
_ID_DIR = ".ids"
_RUN_RE = re.compile(r"^(\d{4,})-")


def now() -> str:
    """Current local time as ISO-8601 with seconds and offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def slugify(text: str, max_len: int = 40) -> str:
    """Lower-case, dash-separated, filesystem-safe version of `text`."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return s[:max_len].strip("-") or "run"


def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """The runs root: `path`, else `$LAB_RUNS_DIR`, else `<repo>/runs`."""
    return Path(path or os.environ.get("LAB_RUNS_DIR") or DEFAULT_RUNS_DIR)


def allocate_id(root: str | os.PathLike) -> int:
    """Reserve the next run number under `root` with an atomic mkdir, so concurrent starts never collide."""
    ids = Path(root) / _ID_DIR
    ids.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name) for p in ids.iterdir() if p.name.isdigit()]
    taken += [int(m.group(1)) for p in Path(root).iterdir() if (m := _RUN_RE.match(p.name))]
    n = max(taken, default=0) + 1
    while True:
        try:
            (ids / f"{n:04d}").mkdir()
            return n
        except FileExistsError:
            n += 1


def git_info(cwd: str | os.PathLike = PROJECT_ROOT) -> dict[str, Any]:
    """The git commit and dirty flag of the code that runs (None where git or the repo is absent)."""
    def _git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def environment() -> dict[str, Any]:
    """Versions, threads and device of this process, for reproducing a run."""
    import numpy
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": numpy.__version__,
        "cuda": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    for mod in ("fastai", "torchvision", "cv2", "pandas", "papermill"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional package
            env[mod] = None
    return env


class Run:
    """One run directory and the writes a run makes into it."""

    def __init__(self, path: str | os.PathLike):
        self.dir = Path(path)
        m = _RUN_RE.match(self.dir.name)
        if not m:
            raise ValueError(f"{str(self.dir)!r} is not a run directory (expected NNNN-<slug>)")
        self.id = int(m.group(1))
        self.name = self.dir.name

    def __repr__(self) -> str:
        return f"Run({self.name!r}, status={self.status!r})"

    # -- reading
    def read(self, fname: str, default: Any = None) -> Any:
        """A JSON file of this run, or `default` if it does not exist."""
        p = self.dir / fname
        return read_json(p) if p.exists() else default

    @property
    def params(self) -> dict[str, Any]:
        return self.read("params.json", {})

    @property
    def meta(self) -> dict[str, Any]:
        return self.read("meta.json", {})

    @property
    def status(self) -> str | None:
        return self.read("status.json", {}).get("status")

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.read("history.json", [])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.read("metrics.json", {})

    # -- writing
    def write_json(self, fname: str, obj: Any) -> Path:
        """Write a JSON file into the run directory atomically."""
        return atomic_write_json(self.dir / fname, obj)

    def set_status(self, status: str, **extra: Any) -> None:
        """Record the run's status with a heartbeat; `extra` (e.g. error) is kept beside it."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; accepted: {STATUSES}")
        old = self.read("status.json", {})
        rec = {**{k: v for k, v in old.items() if k in ("started",)}, "status": status, "updated": now(),
               "heartbeat": now(), "pid": os.getpid(), "host": socket.gethostname(), **extra}
        rec.setdefault("started", now())
        if status != "running":
            rec["finished"] = now()
        self.write_json("status.json", rec)

    def heartbeat(self, **extra: Any) -> None:
        """Refresh the heartbeat (the ledger uses it to spot runs whose process died)."""
        rec = self.read("status.json", {})
        rec.update(heartbeat=now(), pid=os.getpid(), host=socket.gethostname(), **extra)
        self.write_json("status.json", rec)

    def log_epoch(self, record: dict[str, Any]) -> None:
        """Append one epoch's record to history.json and beat the heart."""
        hist = self.history
        hist.append(dict(record))
        self.write_json("history.json", hist)
        self.heartbeat(epoch=record.get("epoch"))

    def update_params(self, **kw: Any) -> None:
        """Add derived values to the recorded params (e.g. the resolved degradation config)."""
        self.write_json("params.json", {**self.params, **kw})

    def save_checkpoint(self, model: Any, name: str = "model.pth", **extra: Any) -> Path:
        """Save a lab checkpoint (weights + model_name + model_kwargs + params) under checkpoints/."""
        from lab.models import save_checkpoint

        return save_checkpoint(self.dir / "checkpoints" / name, model, params=self.params, run=self.name, **extra)

    def weights_checkpoint(self) -> Path:
        """The checkpoint to take this run's weights from: best.pth, else final.pth, else last.pth."""
        ck = self.dir / "checkpoints"
        for f in ("best.pth", "final.pth", "last.pth"):
            if (ck / f).is_file():
                return ck / f
        found = sorted(p.name for p in ck.glob("*.pth")) if ck.is_dir() else []
        raise FileNotFoundError(f"run {self.name} has no best/final/last checkpoint in {ck} (found: {found or 'none'})")

    def save_image(self, relpath: str, img: Any) -> Path:
        """Save an image (uint8 HWC array or float tensor) under the run directory."""
        from lab.images import write_image

        return write_image(self.dir / relpath, img)

    def finish(self, metrics: dict[str, Any] | None = None, status: str = "done") -> None:
        """Write metrics.json and mark the run done (or `status`)."""
        if metrics is not None:
            self.write_json("metrics.json", metrics)
        self.set_status(status)

    def fail(self, error: BaseException | str, cell: int | None = None, status: str = "failed") -> None:
        """Mark the run failed, recording the error (type, message, traceback) and the failing cell if known."""
        if isinstance(error, BaseException):
            err = {"type": type(error).__name__, "message": str(error),
                   "traceback": "".join(traceback.format_exception(error))[-8000:]}
        else:
            err = {"type": "Error", "message": str(error)}
        if cell is not None:
            err["cell"] = cell
        self.set_status(status, error=err)


def create(params: dict[str, Any], *, name: str | None = None, root: str | os.PathLike | None = None,
           notebook: str | None = None, parent: int | None = None) -> Run:
    """Allocate a new run directory and record params, meta (git, environment) and status=running."""
    root = runs_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    n = allocate_id(root)
    slug = slugify(name or params.get("name") or params.get("model") or "run")
    path = root / f"{n:04d}-{slug}"
    path.mkdir()
    run = Run(path)
    run.write_json("params.json", params)
    run.write_json("meta.json", {"id": n, "name": run.name, "title": name or params.get("name") or slug,
                                 "created": now(), "notebook": notebook, "parent": parent,
                                 "git": git_info(), "env": environment()})
    run.set_status("running")
    return run


def start(params: dict[str, Any], *, run_dir: str | os.PathLike | None = None, **kw: Any) -> Run:
    """Start a run: attach to `run_dir` when a runner created it (papermill), else create a new one."""
    if run_dir:
        run = Run(run_dir)
        if not run.dir.is_dir():
            raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist")
        run.write_json("params.json", params)
        meta = run.meta
        if "env" not in meta:
            meta.update(env=environment(), git=git_info())
            run.write_json("meta.json", meta)
        run.set_status("running")
        return run
    return create(params, **kw)


def find(run_id: int | str, root: str | os.PathLike | None = None) -> Run:
    """The run with number `run_id` (or directory name) under the runs root."""
    root = runs_dir(root)
    if isinstance(run_id, str) and not run_id.isdigit():
        p = root / run_id
        if p.is_dir():
            return Run(p)
        raise FileNotFoundError(f"no run named {run_id!r} in {root}")
    n = int(run_id)
    for p in root.glob(f"{n:04d}-*"):
        if p.is_dir():
            return Run(p)
    raise FileNotFoundError(f"no run with id {n} in {root}")
