"""Run directories: atomic ids, and the one `Run` class that knows (reads and writes) every file in a run directory.

Layout of `runs/NNNN-<slug>/` (no other module names these files; everyone asks `Run`):
  params.json              the full resolved params: what trained
  meta.json                id, name, title, created, notebook (+ its path and code hash), parent, git commit/dirty,
                           environment; a sweep's name and index, resumed attempts
  status.json              status (running | done | failed | diverged | interrupted), started, finished, heartbeat,
                           pid, host, epoch; on failure the error (type, message, traceback, cell, source)
  history.json             one record per training epoch (`phase` 'gan' for the adversarial phase)
  metrics.json             the final summary (PSNR/SSIM per evaluated set, baseline, gain, cost, minutes)
  notes.jsonl              notes, tags and verdicts people attached: append-only, one JSON record per line
  profile.json             the cost profile (params, GFLOPs, forward ms in fp32 / bf16)
  degradation.json         the resolved degradation config the data loader used
  data.json                the step budget, the training sources (images, weights) and the validation degradation
  init_from.json           the weights a fine-tuned run started from
  guard_events.json        what the divergence guard caught
  runner.log               output of the process that executed the notebook
  notebook.ipynb           the executed notebook; earlier attempts of a resumed run as notebook.1.ipynb, ...
  checkpoints/             [<phase>_]{last,best,final}.pth: lab checkpoints (weights + model_name + model_kwargs +
                           params); last.pth also holds the optimizer state and epoch for `lab resume`
  samples/                 [<phase>_]epoch_NNN.png: LR | SR | HR strips of the first validation image
  eval/<set>.json          per-image scores of one evaluated set
  eval/<set>/<image>.png   the model's outputs on that set
  eval/<set>/reference/{lr,baseline,hr}/<image>.png   the inputs, baseline and ground truth they were scored against
  degradations.png, degradation_samples.json          the degradations notebook's static grid and sampled params
Every file is written through a temp file + rename, so a reader never sees half a file.

This module imports neither torch nor OpenCV: the read side (ledger, `lab ledger`) loads thousands of runs without
them, and the few writers that need them (checkpoints, images) import them when called.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from lab.liveness import HOST, STALE_AFTER_S, effective_status
from lab.utils import (JSON_ERRORS, PROJECT_ROOT, append_line, atomic_write_bytes, atomic_write_json, environment,
                       git_info, now, read_json_file, read_jsonl, slugify)

STATUSES = ("running", "done", "failed", "stopped", "diverged", "interrupted")
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"
_ID_DIR = ".ids"
_RUN_RE = re.compile(r"^(\d{4,})-")

JSON_FILES = {  # key -> file, for Run.read / Run.write_json
    "params": "params.json", "meta": "meta.json", "status": "status.json", "history": "history.json",
    "metrics": "metrics.json", "profile": "profile.json", "degradation": "degradation.json",
    "init_from": "init_from.json", "guard_events": "guard_events.json", "data": "data.json",
    "degradation_samples": "degradation_samples.json",
}
NOTES_FILE = "notes.jsonl"
RUNNER_LOG = "runner.log"
NOTEBOOK_FILE = "notebook.ipynb"
CHECKPOINT_DIR, SAMPLES_DIR, EVAL_DIR, REFERENCE_DIR = "checkpoints", "samples", "eval", "reference"
CHECKPOINT_KINDS = ("last", "best", "final")
PHASES = ("", "gan")  # training phases: generator (or plain) training, then the adversarial one
REFERENCE_KINDS = ("lr", "baseline", "hr")
DEGRADATION_GRID = "degradations.png"


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


class Sample(NamedTuple):
    """One saved sample strip: its training phase ('' or 'gan'), epoch and file."""

    phase: str
    epoch: int
    path: Path


@dataclass
class RunRecord:
    """What the ledger reads of one run, read once: the files that make a row."""

    meta: dict[str, Any]
    params: dict[str, Any]
    status: dict[str, Any]
    metrics: dict[str, Any]
    profile: dict[str, Any] | None
    notes: list[dict[str, Any]]
    init_from: dict[str, Any] | None = None


def _write_image(path: Path, img: Any) -> Path:
    from lab.images import write_image  # lazy: see the module docstring

    return write_image(path, img)


def _check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"unknown training phase {phase!r}; accepted: {PHASES}")
    return phase


def _prefix(phase: str) -> str:
    return f"{_check_phase(phase)}_" if phase else ""


def checkpoint_name(kind: str = "last", phase: str = "") -> str:
    """File name of a run checkpoint: `last.pth`, `gan_best.pth`, ..."""
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"unknown checkpoint {kind!r}; accepted: {CHECKPOINT_KINDS}")
    return f"{_prefix(phase)}{kind}.pth"


def sibling_checkpoint(path: str | os.PathLike, kind: str = "last", phase: str = "") -> Path:
    """The checkpoint of `kind`/`phase` beside checkpoint `path` (e.g. the adversarial phase's `gan_last.pth`)."""
    return Path(path).with_name(checkpoint_name(kind, phase))


_SAMPLE_RE = re.compile(r"^(?:(?P<phase>[a-z]+)_)?epoch_(?P<epoch>\d+)\.png$")


class Run:
    """One run directory and everything read from or written into it."""

    def __init__(self, path: str | os.PathLike):
        self.dir = Path(path)
        m = _RUN_RE.match(self.dir.name)
        if not m:
            raise ValueError(f"{str(self.dir)!r} is not a run directory (expected NNNN-<slug>)")
        self.id = int(m.group(1))
        self.name = self.dir.name

    def __repr__(self) -> str:
        return f"Run({self.name!r}, status={self.status!r})"

    def _path(self, name: str) -> Path:
        return self.dir / JSON_FILES.get(name, name)

    # -- JSON files
    def read(self, name: str, default: Any = None) -> Any:
        """A JSON file of this run by key ('params', 'status', ... see JSON_FILES) or file name; `default` if absent."""
        try:
            return read_json_file(self._path(name))
        except FileNotFoundError:
            return default

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON file of this run (key or file name) atomically."""
        return atomic_write_json(self._path(name), obj)

    @property
    def params(self) -> dict[str, Any]:
        return self.read("params", {})

    @property
    def meta(self) -> dict[str, Any]:
        return self.read("meta", {})

    @property
    def status_record(self) -> dict[str, Any]:
        """status.json as a dict (empty when absent)."""
        return self.read("status", {}) or {}

    @property
    def status(self) -> str | None:
        return self.status_record.get("status")

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.read("history", [])
        return h if isinstance(h, list) else []

    @property
    def metrics(self) -> dict[str, Any]:
        return self.read("metrics", {})

    @property
    def profile(self) -> dict[str, Any] | None:
        return self.read("profile")

    def update_meta(self, **kw: Any) -> dict[str, Any]:
        """Merge `kw` into meta.json; returns the new meta."""
        meta = {**self.meta, **kw}
        self.write_json("meta", meta)
        return meta

    def update_params(self, **kw: Any) -> None:
        """Add derived values to the recorded params (e.g. the resolved degradation config)."""
        self.write_json("params", {**self.params, **kw})

    def effective_status(self, now_s: float | None = None, stale_after: float = STALE_AFTER_S) -> str | None:
        """The status to show: 'running' only while its process lives (see `effective_status`)."""
        st = self.status_record
        return effective_status(st, now_s, stale_after) if st else None

    def record(self) -> RunRecord:
        """meta, params, status (required), metrics, profile and notes in one read; ValueError when the run is
        corrupt or half-written (the ledger reports it and goes on)."""
        try:
            meta, params, status = (read_json_file(self._path(k)) for k in ("meta", "params", "status"))
        except FileNotFoundError as e:
            raise ValueError(f"half-written run: {Path(e.filename).name} is missing") from None
        except JSON_ERRORS as e:
            raise ValueError(f"corrupt JSON: {e}") from None
        if not (isinstance(meta, dict) and isinstance(params, dict) and isinstance(status, dict)):
            raise ValueError("corrupt run: meta/params/status must be JSON objects")
        try:
            metrics = read_json_file(self._path("metrics"))
        except FileNotFoundError:
            metrics = {}
        except JSON_ERRORS as e:
            raise ValueError(f"corrupt metrics.json: {e}") from None
        if not isinstance(metrics, dict):
            raise ValueError("corrupt metrics.json: not a JSON object")
        try:
            profile = read_json_file(self._path("profile"))
        except (FileNotFoundError, *JSON_ERRORS):
            profile = None
        init = self.read("init_from") if params.get("init_from") else None
        return RunRecord(meta, params, status, metrics, profile if isinstance(profile, dict) else None, self.notes(),
                         init if isinstance(init, dict) else None)

    # -- status
    def set_status(self, status: str, **extra: Any) -> None:
        """Record the run's status with a heartbeat; `extra` (e.g. error) is kept beside it."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; accepted: {STATUSES}")
        old = self.status_record
        rec = {**{k: v for k, v in old.items() if k in ("started", "errors")}, "status": status, "updated": now(),
               "heartbeat": now(), "pid": os.getpid(), "host": socket.gethostname(), **extra}
        rec.setdefault("started", now())
        if status != "running":
            rec["finished"] = now()
        self.write_json("status", rec)

    def heartbeat(self, **extra: Any) -> None:
        """Refresh the heartbeat (the ledger uses it to spot runs whose process died)."""
        rec = self.status_record
        rec.update(heartbeat=now(), pid=os.getpid(), host=socket.gethostname(), **extra)
        self.write_json("status", rec)

    def log_epoch(self, record: dict[str, Any]) -> None:
        """Append one epoch's record to history.json and beat the heart."""
        hist = self.history
        hist.append(dict(record))
        self.write_json("history", hist)
        self.heartbeat(epoch=record.get("epoch"), step=record.get("step"))

    def truncate_history(self, phase: str, from_epoch: int) -> int:
        """Drop the history records of `phase` from epoch `from_epoch` on (a resumed run retrains those epochs);
        returns how many were dropped."""
        hist = self.history
        keep = [h for h in hist if h.get("phase", "") != phase or int(h.get("epoch", -1)) < from_epoch]
        if len(keep) != len(hist):
            self.write_json("history", keep)
        return len(hist) - len(keep)

    def finish(self, metrics: dict[str, Any] | None = None, status: str = "done") -> None:
        """Write metrics.json and mark the run done (or `status`)."""
        if metrics is not None:
            self.write_json("metrics", metrics)
        self.set_status(status)

    def fail(self, error: BaseException | str, cell: int | None = None, status: str = "failed",
             status_extra: dict[str, Any] | None = None, **details: Any) -> None:
        """Mark the run failed (or `status`), recording the error (type, message, traceback) and the failing cell
        if known; `details` (e.g. type, traceback, source of a notebook cell) replace or add fields of the error
        record, `status_extra` fields of the status record."""
        if isinstance(error, BaseException):
            err = {"type": type(error).__name__, "message": str(error),
                   "traceback": "".join(traceback.format_exception(error))[-8000:]}
        else:
            err = {"type": "Error", "message": str(error)}
        if cell is not None:
            err["cell"] = cell
        err.update(details)
        self.set_status(status, error=err, **(status_extra or {}))

    @property
    def error(self) -> dict[str, Any] | None:
        """The recorded error of a failed run (type, message, cell, ...), or None."""
        err = self.status_record.get("error")
        return err if isinstance(err, dict) else ({"type": "Error", "message": str(err)} if err else None)

    # -- notes
    def add_note(self, text: str = "", *, tags: Sequence[str] = (), untag: Sequence[str] = (),
                 verdict: str | None = None, author: str | None = None) -> dict[str, Any]:
        """Append a note (text, tags to add/remove, verdict) to notes.jsonl; returns the record.

        One `write` of one line on an O_APPEND descriptor (`lab.utils.append_line`), so concurrent writers (several
        shells, a notebook, processes on other hosts of a shared file system) never interleave or lose a note.
        `verdict=""` clears the verdict.
        """
        tags = [t.strip() for t in tags if t and t.strip()]
        untag = [t.strip() for t in untag if t and t.strip()]
        bad = [t for t in [*tags, *untag] if "," in t]
        if bad:
            raise ValueError(f"tags {bad} contain ','; give several tags as separate --tag options")
        if not (text or tags or untag or verdict is not None):
            raise ValueError("nothing to record: give a note text, --tag, --untag or --verdict")
        try:
            user = author or getpass.getuser()
        except (KeyError, OSError):
            user = None
        rec: dict[str, Any] = {"time": now(), "author": user, "host": HOST}
        if text:
            rec["text"] = str(text)
        if tags:
            rec["tags"] = tags
        if untag:
            rec["untag"] = untag
        if verdict is not None:
            rec["verdict"] = str(verdict).strip()
        append_line(self.dir / NOTES_FILE, json.dumps(rec, ensure_ascii=False))
        return rec

    def notes(self) -> list[dict[str, Any]]:
        """Every note record, oldest first (a torn or unreadable line is skipped)."""
        return read_jsonl(self.dir / NOTES_FILE)

    # -- checkpoints
    def checkpoint(self, kind: str = "last", phase: str = "") -> Path:
        """Path of a checkpoint of this run (`kind` last | best | final, `phase` '' | 'gan'); it may not exist."""
        return self.dir / CHECKPOINT_DIR / checkpoint_name(kind, phase)

    def checkpoints(self) -> list[Path]:
        """The checkpoint files this run has, oldest first."""
        d = self.dir / CHECKPOINT_DIR
        return sorted(d.glob("*.pth"), key=lambda p: p.stat().st_mtime) if d.is_dir() else []

    def save_checkpoint(self, payload: dict[str, Any], kind: str = "last", phase: str = "") -> Path:
        """Write a checkpoint payload (`lab.models.checkpoint_payload(...)`) with this run's params and name added."""
        import io

        import torch  # lazy: see the module docstring

        buf = io.BytesIO()
        torch.save({**payload, "params": self.params, "run": self.name}, buf)
        return atomic_write_bytes(self.checkpoint(kind, phase), buf.getvalue())

    @property
    def had_gan_phase(self) -> bool:
        """Whether this run trained an adversarial phase (it saved a checkpoint of it)."""
        return self.checkpoint("last", "gan").is_file()

    def weights_checkpoint(self, phase: str | None = None) -> Path:
        """The checkpoint to take this run's weights from (to fine-tune or evaluate).

        `phase=None`: the run's result: for a run with an adversarial phase its final generator (final, else the
        adversarial phase's last), else best, final, last. 'gan': the adversarial generator (refused for a run
        without that phase). 'pretrain' (or ''): the plain phase's weights: best, else last (never final, which
        follows the adversarial phase when there was one).
        """
        if phase not in (None, "", "gan", "pretrain"):
            raise ValueError(f"unknown phase {phase!r} to take weights from; accepted: 'gan', 'pretrain'")
        if phase == "gan" and not self.had_gan_phase:
            raise FileNotFoundError(f"run {self.name} has no adversarial phase to take weights from; use "
                                    f"'{self.id}:pretrain' or '{self.id}'")
        if phase == "gan" or (phase is None and self.had_gan_phase):
            order = [("final", ""), ("last", "gan")]
        elif phase is None:
            order = [("best", ""), ("final", ""), ("last", "")]
        else:
            order = [("best", ""), ("last", "")]
        for kind, ph in order:
            if self.checkpoint(kind, ph).is_file():
                return self.checkpoint(kind, ph)
        found = [p.name for p in self.checkpoints()]
        raise FileNotFoundError(f"run {self.name} has no {' or '.join(checkpoint_name(k, p) for k, p in order)} in "
                                f"{self.dir / CHECKPOINT_DIR} (found: {found or 'none'})")

    def resume_checkpoint(self) -> Path:
        """The checkpoint a run continues from: last.pth, else the newest checkpoint it has."""
        if self.checkpoint("last").is_file():
            return self.checkpoint("last")
        found = self.checkpoints()
        if not found:
            raise FileNotFoundError(f"run {self.name} has no checkpoint in {self.dir / CHECKPOINT_DIR} "
                                    "(expected last.pth, saved each epoch)")
        return found[-1]

    # -- samples
    def save_sample(self, img: Any, epoch: int, phase: str = "") -> Path:
        """Save an epoch's sample strip (uint8 HWC or float tensor)."""
        return _write_image(self.dir / SAMPLES_DIR / f"{_prefix(phase)}epoch_{int(epoch):03d}.png", img)

    def samples(self, phase: str | None = None) -> list[Sample]:
        """The sample strips saved so far, in training order (the plain phase's epochs, then the adversarial
        phase's); `phase` keeps one phase."""
        d = self.dir / SAMPLES_DIR
        out = []
        for p in (d.iterdir() if d.is_dir() else ()):
            m = _SAMPLE_RE.match(p.name)
            if m and (m.group("phase") or "") in PHASES:
                out.append(Sample(m.group("phase") or "", int(m.group("epoch")), p))
        out.sort(key=lambda s: (PHASES.index(s.phase), s.epoch))
        return [s for s in out if phase is None or s.phase == phase]

    # -- evaluation outputs
    def save_eval_table(self, label: str, records: list[dict[str, Any]]) -> Path:
        """Per-image scores of evaluated set `label`."""
        return atomic_write_json(self.dir / EVAL_DIR / f"{label}.json", records)

    def eval_table(self, label: str) -> list[dict[str, Any]] | None:
        """The per-image scores of set `label`, or None."""
        return self.read(f"{EVAL_DIR}/{label}.json")

    def eval_sets(self) -> list[str]:
        """Labels of the sets whose outputs this run saved."""
        d = self.dir / EVAL_DIR
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def eval_output(self, label: str, image: str) -> Path:
        """Where the model's output of `image` on set `label` is (it may not exist)."""
        return self.dir / EVAL_DIR / label / f"{image}.png"

    def save_eval_output(self, label: str, image: str, img: Any) -> Path:
        """Save the model's output of `image` on set `label`."""
        return _write_image(self.eval_output(label, image), img)

    def eval_images(self, label: str) -> list[str]:
        """Names of the images whose outputs this run saved for set `label`."""
        d = self.dir / EVAL_DIR / label
        return sorted(p.stem for p in d.glob("*.png")) if d.is_dir() else []

    def eval_reference(self, label: str, image: str, kind: str) -> Path:
        """Where the reference `kind` ('lr' input, 'baseline' output, 'hr' ground truth) of an image is kept."""
        if kind not in REFERENCE_KINDS:
            raise ValueError(f"unknown reference {kind!r}; accepted: {REFERENCE_KINDS}")
        return self.dir / EVAL_DIR / label / REFERENCE_DIR / kind / f"{image}.png"

    def save_eval_reference(self, label: str, image: str, kind: str, img: Any) -> Path:
        """Keep a reference image (what an output was scored against) once."""
        return _write_image(self.eval_reference(label, image, kind), img)

    # -- notebooks and logs
    @property
    def notebook(self) -> Path:
        """The executed notebook of this run (it may not exist)."""
        return self.dir / NOTEBOOK_FILE

    def write_notebook(self, nb: dict[str, Any]) -> Path:
        """Write the run's notebook (nbformat 4 JSON), e.g. the cells a live kernel executed for it."""
        return atomic_write_json(self.notebook, nb)

    @property
    def partial_notebook(self) -> Path:
        """Where an execution writes its notebook while it runs."""
        return self.dir / ".notebook.partial.ipynb"

    def keep_notebook(self, executed: str | os.PathLike) -> Path:
        """Move an executed notebook into place; an earlier attempt's is kept as notebook.<n>.ipynb."""
        final = self.notebook
        if final.exists():
            n = 1 + sum(1 for _ in self.dir.glob("notebook.*.ipynb"))
            os.replace(final, self.dir / f"notebook.{n}.ipynb")
        os.replace(executed, final)
        return final

    @property
    def runner_log(self) -> Path:
        """The log of the process that executed this run."""
        return self.dir / RUNNER_LOG

    def save_degradation_preview(self, img: Any, record: dict[str, Any]) -> Path:
        """The degradations notebook's static grid and the params it sampled."""
        return save_degradation_preview(self.dir, img, record)


def save_degradation_preview(folder: str | os.PathLike, img: Any, record: dict[str, Any]) -> Path:
    """Write the degradations grid (`degradations.png`) and its sampled params into `folder` (a run's or any)."""
    folder = Path(folder)
    atomic_write_json(folder / JSON_FILES["degradation_samples"], record)
    return _write_image(folder / DEGRADATION_GRID, img)


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
    run.write_json("params", params)
    run.write_json("meta", {"id": n, "name": run.name, "title": name or params.get("name") or slug,
                            "created": now(), "notebook": notebook, "parent": parent,
                            "git": git_info(), "env": environment()})
    run.set_status("running")
    return run


def start(params: dict[str, Any], *, run_dir: str | os.PathLike | None = None, name: str | None = None,
          parent: int | None = None, **kw: Any) -> Run:
    """Start a run: attach to `run_dir` when a runner created it (papermill), else create a new one.

    Attaching records `params`, the environment if missing, and the title / parent the notebook decided.
    """
    if run_dir:
        run = Run(run_dir)
        if not run.dir.is_dir():
            raise FileNotFoundError(f"run directory {str(run_dir)!r} does not exist")
        run.write_json("params", params)
        meta = run.meta
        if "env" not in meta:
            meta.update(env=environment(), git=git_info())
        if name:
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
            if _RUN_RE.match(e.name) and e.is_dir():
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
