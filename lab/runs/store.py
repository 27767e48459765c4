"""The runs folder: run ids allocated atomically, runs created whole (a hidden folder renamed into place), found by
id or name, listed; notes by run id; the degradations notebook's preview files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lab.runs.layout import _ID_DIR, _RUN_RE, DEFAULT_RUNS_DIR, DEGRADATION_GRID, JSON_FILES
from lab.runs.run import Run, _write_image
from lab.vocab import ENV_RUNS_DIR
from lab.utils import atomic_write_json, environment, git_info, now, slugify

def runs_dir(path: str | os.PathLike | None = None) -> Path:
    """The runs root: `path`, else `$LAB_RUNS_DIR`, else `<repo>/runs`."""
    return Path(path or os.environ.get(ENV_RUNS_DIR) or DEFAULT_RUNS_DIR)


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


def save_degradation_preview(folder: str | os.PathLike, img: Any, record: dict[str, Any]) -> Path:
    """Write the degradations grid (`degradations.png`) and its sampled params into `folder` (a run's or any)."""
    folder = Path(folder)
    atomic_write_json(folder / JSON_FILES["degradation_samples"], record)
    return _write_image(folder / DEGRADATION_GRID, img)


def create(params: dict[str, Any], *, name: str | None = None, root: str | os.PathLike | None = None,
           notebook: str | None = None, parent: int | None = None) -> Run:
    """Allocate a new run directory and record params, meta (git, environment) and status=running."""
    root = runs_dir(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        n = allocate_id(root)
    except OSError as e:
        raise type(e)(e.errno, f"cannot create a run in {str(root)!r} ({e.strerror}); make it writable or choose "
                      "another runs folder with --runs or $LAB_RUNS_DIR") from None
    slug = slugify(name or params.get("name") or params.get("model") or "run")
    path = root / f"{n:04d}-{slug}"
    staging = Run(root / f".{path.name}.starting")  # filled, then renamed: no reader sees a half-made run
    staging.dir.mkdir()
    staging.write_json("params", params)
    given = name or params.get("name")
    staging.write_json("meta", {"id": n, "name": path.name, "title": given or slug, "title_given": bool(given),
                                "created": now(), "notebook": notebook, "parent": parent,
                                "git": git_info(), "env": environment()})
    staging.set_status("running")
    os.rename(staging.dir, path)
    return Run(path)


def start(params: dict[str, Any], *, run_dir: str | os.PathLike | None = None, name: str | None = None,
          parent: int | str | None = None, **kw: Any) -> Run:
    """Start a run: attach to `run_dir` when a runner created it (papermill), else create a new one.

    Attaching records `params`, the environment if missing, and the title / parent the notebook decided (a title
    the runner was given, `lab run --name`, stays the run's title; a parent given as a run number or name is looked
    up in the same runs folder).
    """
    if isinstance(parent, str):
        parent = find(parent, Path(run_dir).parent if run_dir else kw.get("root")).id
    if run_dir:
        run = Run(run_dir)
        if not run.dir.is_dir():
            raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist")
        run.write_json("params", params)
        meta = run.meta
        if "env" not in meta:
            meta.update(env=environment(), git=git_info())
        if name and not meta.get("title_given"):
            meta["title"] = name
        if parent is not None:
            meta["parent"] = parent
        run.write_json("meta", meta)
        run.set_status("running")
        return run
    return create(params, name=name, parent=parent, **kw)


def scan(root: str | os.PathLike | None = None) -> list[Run]:
    """Every run directory under the runs root, by id."""
    root = runs_dir(root)
    if not root.is_dir():
        return []
    out = []
    with os.scandir(root) as it:
        for e in it:
            if _RUN_RE.match(e.name) and not e.name.startswith(".") and e.is_dir():
                out.append(Run(e.path))
    out.sort(key=lambda r: (r.id, r.name))
    return out


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


def as_run(run: int | str | os.PathLike | Run, root: str | os.PathLike | None = None) -> Run:
    """A `Run` from a Run, a run id or name under the runs root, or a run directory path."""
    if isinstance(run, Run):
        return run
    if isinstance(run, (int, str)) and os.sep not in str(run):
        return find(run, root)
    p = Path(run)
    if not p.is_dir():
        raise FileNotFoundError(f"run directory {str(p)!r} does not exist")
    return Run(p)


def add_note(run: int | str | os.PathLike | Run, text: str = "", *, root: str | os.PathLike | None = None,
             **kw: Any) -> dict[str, Any]:
    """`Run.add_note` for a run given by id, name or path."""
    return as_run(run, root).add_note(text, **kw)


def read_notes(run: int | str | os.PathLike | Run, root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """`Run.notes` for a run given by id, name or path."""
    return as_run(run, root).notes()
