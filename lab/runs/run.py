"""`Run`: one run directory and everything read from or written into it (see the package docstring for the
layout). Imports neither torch nor OpenCV at module level (the read side stays light); writers that need them import
them when called."""

from __future__ import annotations

import functools
import getpass
import json
import os
import secrets
import socket
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

from lab.liveness import HOST, STALE_AFTER_S, effective_status
from lab.runs.layout import (_RUN_RE, _SAMPLE_RE, CHECKPOINT_DIR, CLOCK_FILE, CODE_DIR, EVAL_DIR, JSON_FILES,
                             NOTEBOOK_FILE, NOTES_DIR, NOTES_FILE, PHASES, PULSE_FILE, REFERENCE_DIR, REFERENCE_KINDS,
                             RUNNER_LOG, SAMPLES_DIR, STATUSES, SUMMARY_DIR, SUMMARY_FILE, SUMMARY_SOURCES, RunRecord,
                             Sample, _prefix, checkpoint_name)
from lab.utils import JSON_ERRORS, atomic_write_bytes, atomic_write_json, now, read_json_file, read_jsonl


def _write_image(path: Path, img: Any) -> Path:
    from lab.images import write_image  # lazy: the read side stays free of torch and OpenCV

    return write_image(path, img)


_SOURCE_FILES = {JSON_FILES[k] for k in SUMMARY_SOURCES}
_SIGNED = tuple((k, JSON_FILES.get(k, k)) for k in (*SUMMARY_SOURCES, NOTES_FILE))  # what a summary's signature stats
SETTLE_WAIT_S = 0.02  # the longest a summary's writer waits for the file system's clock to pass the run's last change


class Run:
    """One run directory and everything read from or written into it."""

    def __init__(self, path: str | os.PathLike):
        self._d = os.fspath(path)  # the ledger's reads join strings: pathlib costs more than the stats at 10,000 runs
        self.name = os.path.basename(self._d.rstrip(os.sep) or self._d)
        m = _RUN_RE.match(self.name)
        if not m:
            raise ValueError(f"{self._d!r} is not a run directory (expected NNNN-<slug>)")
        self.id = int(m.group(1))

    @functools.cached_property
    def dir(self) -> Path:
        """The run directory (made when first asked: the ledger's scan of 10,000 runs never needs it)."""
        return Path(self._d)

    def __repr__(self) -> str:
        return f"Run({self.name!r}, status={self.status!r})"

    def _path(self, name: str) -> Path:
        return self.dir / JSON_FILES.get(name, name)

    # -- JSON files
    def read(self, name: str, default: Any = None) -> Any:
        """A JSON file of this run by key ('params', 'status', ... see JSON_FILES) or file name; `default` if absent,
        a ValueError naming the run, the file and the fix if it is corrupt."""
        try:
            return read_json_file(self._path(name))
        except FileNotFoundError:
            return default
        except JSON_ERRORS as e:
            raise self.corrupt(self._path(name).name, " ".join(str(e).split())) from None

    def _read_object(self, name: str) -> dict[str, Any]:
        """A JSON file that must hold an object ({} if absent)."""
        obj = self.read(name, {})
        if not isinstance(obj, dict):
            raise self.corrupt(self._path(name).name, f"a JSON {type(obj).__name__}, not an object")
        return obj

    def corrupt(self, file: str, what: str) -> ValueError:
        """The error for a corrupt file of this run: which run, which file, what is wrong, what to do."""
        return ValueError(f"run {self.name}: {file} is corrupt ({what}); repair it by hand, or move "
                          f"{str(self.dir)!r} out of the runs folder (or delete it): the ledger skips it meanwhile")

    def write_json(self, name: str, obj: Any) -> Path:
        """Write a JSON file of this run (key or file name) atomically; the summary follows a file it holds."""
        path = atomic_write_json(self._path(name), obj)
        if name in SUMMARY_SOURCES or name in _SOURCE_FILES:
            self.write_summary()
        return path

    # -- the summary a ledger row reads (see the package docstring)
    def _sources(self) -> dict[str, Any]:
        """(inode, mtime ns, size) of each summarised file (None when absent) and the note files' names."""
        sig: dict[str, Any] = {}
        d = self._d
        for k, file in _SIGNED:
            try:
                st = os.stat(f"{d}/{file}")
                sig[k] = [st.st_ino, st.st_mtime_ns, st.st_size]
            except FileNotFoundError:
                sig[k] = None
        try:
            sig[NOTES_DIR] = sorted(n for n in os.listdir(f"{d}/{NOTES_DIR}") if n.endswith(".json"))
        except (FileNotFoundError, NotADirectoryError):
            sig[NOTES_DIR] = []
        return sig

    def _fs_clock(self) -> int:
        """The file system's time now (ns), from a probe file it stamps: the clock a change's mtime comes from
        (another host's clock on a network share); -1 when the probe cannot be touched."""
        probe = f"{self._d}/{SUMMARY_DIR}/{CLOCK_FILE}"
        try:
            try:
                os.utime(probe)
            except FileNotFoundError:
                os.close(os.open(probe, os.O_WRONLY | os.O_CREAT, 0o666))
            return os.stat(probe).st_mtime_ns
        except OSError:
            return -1

    def write_summary(self) -> bool:
        """Rewrite the summary from the files it summarises, with their signatures (inode, mtime, size; the note
        files' names); False when the run cannot be summarised (a file missing or corrupt: readers then read the
        files themselves).

        The signatures are taken before the files are read, so a file replaced meanwhile leaves a summary readers
        refuse. The summary also records the run's `stamp` once the file system's clock has moved past it: files
        come, go and are replaced by rename into the run directory or its notes folder, so any later such change
        gives a later mtime and a new stamp; a reader that finds the stamp unchanged stats only the files that
        existed (an edit in place changes a file's mtime) and needs no listing and no call for absent ones. The stamp
        is taken before the clock is read and the files after it, so a change between the two is in the summary.
        On a coarse clock the writer waits for the next tick (up to SETTLE_WAIT_S); if the clock still has not
        moved, the summary goes without a stamp and readers check every signature.
        """
        os.makedirs(f"{self._d}/{SUMMARY_DIR}", exist_ok=True)  # before the stamp: making it changes the run's mtime
        stamp, clock = self.stamp(), self._fs_clock()
        deadline = time.monotonic() + SETTLE_WAIT_S
        while clock <= max(stamp[1], stamp[2]) and time.monotonic() < deadline:
            time.sleep(0.001)
            stamp, clock = self.stamp(), self._fs_clock()
        sig = self._sources()
        try:
            rec = self.record(summary=False)
        except (ValueError, OSError):
            return False
        meta = {k: v for k, v in rec.meta.items() if k != "env"}
        atomic_write_json(f"{self._d}/{SUMMARY_DIR}/{SUMMARY_FILE}", {
            "version": 2, "stamp": list(stamp) if clock > max(stamp[1], stamp[2]) else None, "sources": sig,
            "meta": meta, "params": rec.params, "status": rec.status, "metrics": rec.metrics, "profile": rec.profile,
            "notes": rec.notes, "init_from": rec.init_from})
        return True

    def stamp(self) -> tuple[int, int, int]:
        """(inode, mtime ns) of the run directory and the mtime ns of its notes folder (0 without one): every file
        of the run is written by rename into one of the two, so a changed file changes the stamp (a reader's
        cache key; two stats)."""
        st = os.stat(self._d)
        try:
            notes = os.stat(f"{self._d}/{NOTES_DIR}").st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            notes = 0
        return st.st_ino, st.st_mtime_ns, notes

    def _summary(self, stamp: tuple[int, int, int] | None = None) -> RunRecord | None:
        """The record the summary holds while the run is unchanged since it was written, else None: its stamp still
        the run's (`stamp`, when the caller just took it) and each file that existed unchanged, or, without a stamp,
        every signature the same. A run written before summaries had their folder keeps its summary.json beside
        its files (signatures only)."""
        for file, version in ((f"{SUMMARY_DIR}/{SUMMARY_FILE}", 2), (SUMMARY_FILE, 1)):
            try:
                s = read_json_file(f"{self._d}/{file}")
            except (OSError, *JSON_ERRORS):
                continue
            if not isinstance(s, dict) or s.get("version") != version or not isinstance(s.get("sources"), dict):
                continue
            if s.get("stamp") is not None and s["stamp"] == list(stamp if stamp is not None else self.stamp()):
                ok = self._files_unchanged(s["sources"])
            else:
                ok = s["sources"] == self._sources()
            if ok:
                status = s["status"]
                return RunRecord(s["meta"], s["params"], status, s["metrics"], s["profile"], s["notes"],
                                 s["init_from"], self.last_pulse() if status.get("status") == "running" else None)
        return None

    def _files_unchanged(self, sig: dict[str, Any]) -> bool:
        """Each summarised file that existed still has its signature (the stamp vouches that none came or went)."""
        d = self._d
        for k, file in _SIGNED:
            old = sig.get(k)
            if old is None:
                continue
            try:
                st = os.stat(f"{d}/{file}")
            except OSError:
                return False
            if [st.st_ino, st.st_mtime_ns, st.st_size] != old:
                return False
        return True

    @property
    def params(self) -> dict[str, Any]:
        return self._read_object("params")

    @property
    def meta(self) -> dict[str, Any]:
        return self._read_object("meta")

    @property
    def status_record(self) -> dict[str, Any]:
        """status.json as a dict (empty when absent)."""
        return self._read_object("status")

    @property
    def status(self) -> str | None:
        return self.status_record.get("status")

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.read("history", [])
        return h if isinstance(h, list) else []

    @property
    def metrics(self) -> dict[str, Any]:
        return self._read_object("metrics")

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
        return effective_status(st, now_s, stale_after, self.last_pulse()) if st else None

    def record(self, summary: bool = True, stamp: tuple[int, int, int] | None = None) -> RunRecord:
        """meta, params, status (required), metrics, profile and notes in one read (from the summary while it
        matches the files, with `summary`; `stamp`: the run's, when the caller just took it); ValueError when the run
        is corrupt or half-written (the ledger reports it and goes on)."""
        if summary:
            rec = self._summary(stamp)
            if rec is not None:
                return rec
        got = []
        for k in ("meta", "params", "status"):
            try:
                got.append(read_json_file(self._path(k)))
            except FileNotFoundError as e:
                raise ValueError(f"half-written run: {Path(e.filename).name} is missing") from None
            except JSON_ERRORS as e:
                raise ValueError(f"corrupt JSON in {self._path(k).name}: {' '.join(str(e).split())}") from None
        meta, params, status = got
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
                         init if isinstance(init, dict) else None,
                         self.last_pulse() if status.get("status") == "running" else None)

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

    def pulse(self) -> None:
        """Touch the pulse file: a heartbeat that never rewrites status.json (safe from any thread)."""
        p = self.dir / PULSE_FILE
        p.touch()
        os.utime(p)

    def last_pulse(self) -> float | None:
        """POSIX time of the latest pulse, or None."""
        try:
            return (self.dir / PULSE_FILE).stat().st_mtime
        except FileNotFoundError:
            return None

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

        Each note is its own file, written to a temp name and renamed into place, so concurrent writers (several
        shells, a notebook, processes on other hosts of a network file system where locks may not work) never
        interleave or lose a note; names start with the time in ns, so they read back in order. `verdict=""`
        clears the verdict.
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
        note = f"{time.time_ns():020d}-{HOST}-{os.getpid()}-{secrets.token_hex(4)}.json"
        atomic_write_bytes(self.dir / NOTES_DIR / note, json.dumps(rec, ensure_ascii=False).encode("utf-8"))
        self.write_summary()
        return rec

    def notes(self) -> list[dict[str, Any]]:
        """Every note record, oldest first (an unreadable one is skipped)."""
        out = read_jsonl(self.dir / NOTES_FILE)
        d = self.dir / NOTES_DIR
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            try:
                rec = read_json_file(p)
            except (OSError, *JSON_ERRORS):
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    # -- checkpoints
    # -- user code a run carries (lab.user_code)

    def save_code(self, files: dict[str, bytes], entry: str, record: dict[str, Any]) -> Path:
        """Copy the user code a run loaded into `code/` (relative paths kept) with its record (`code.json`: entry,
        hash, where it came from) and mark the meta, so the ledger shows the run carries code; returns the entry."""
        for rel, data in files.items():
            atomic_write_bytes(self.dir / CODE_DIR / rel, data)
        self.write_json("code", {**record, "entry": entry, "files": sorted(files)})
        self.update_meta(code={"entry": entry, "sha256": record.get("sha256")})
        return self.dir / CODE_DIR / entry

    def code(self) -> tuple[dict[str, Any], dict[str, bytes]] | None:
        """The record and the files (relative path -> bytes) of the code the run carries; None when it carries none."""
        rec = self.read("code")
        if not isinstance(rec, dict):
            return None
        return rec, {rel: (self.dir / CODE_DIR / rel).read_bytes() for rel in rec.get("files", [])}

    def code_entry(self) -> Path | None:
        """The copied module (or package `__init__.py`) the run loaded; None when it carries no code."""
        rec = self.read("code")
        return self.dir / CODE_DIR / rec["entry"] if isinstance(rec, dict) and rec.get("entry") else None

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

    def keep_notebook(self, executed: str | os.PathLike, archive: bool = False) -> Path:
        """Move an executed notebook into place, an earlier attempt's kept as notebook.<n>.ipynb; `archive` files
        `executed` itself as the next notebook.<n>.ipynb (a killed attempt's, found when the run resumes)."""
        def next_slot() -> Path:
            return self.dir / f"notebook.{1 + sum(1 for _ in self.dir.glob('notebook.*.ipynb'))}.ipynb"

        final = self.notebook
        if archive:
            if final.exists():
                os.replace(final, next_slot())
            target = next_slot()
            os.replace(executed, target)
            return target
        if final.exists():
            os.replace(final, next_slot())
        os.replace(executed, final)
        return final

    @property
    def runner_log(self) -> Path:
        """The log of the process that executed this run."""
        return self.dir / RUNNER_LOG
