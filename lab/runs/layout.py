"""The names of a run directory's files (the layout the package docstring describes), and the small types runs
hand out."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lab.utils import PROJECT_ROOT

STATUSES = ("running", "done", "failed", "stopped", "diverged", "interrupted")
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"
_ID_DIR = ".ids"
_RUN_RE = re.compile(r"^\.?(\d{4,})-")  # a leading dot: a run being created (renamed into place when complete)

JSON_FILES = {  # key -> file, for Run.read / Run.write_json
    "params": "params.json", "meta": "meta.json", "status": "status.json", "history": "history.json",
    "metrics": "metrics.json", "profile": "profile.json", "degradation": "degradation.json",
    "init_from": "init_from.json", "guard_events": "guard_events.json", "data": "data.json",
    "degradation_samples": "degradation_samples.json", "code": "code.json",
}
CODE_DIR = "code"  # a copy of the user code a run loaded (models_from), so it can be rebuilt after the file changed
SUMMARY_DIR = "summary"  # its own folder: writing the summary leaves the run directory's stamp as it was
SUMMARY_FILE = "summary.json"  # what a ledger row reads, in one file (see `lab.runs.Run.write_summary`)
CLOCK_FILE = ".clock"  # in SUMMARY_DIR: touched to read the file system's clock (`Run.write_summary`)
SUMMARY_SOURCES = ("meta", "params", "status", "metrics", "profile", "init_from")  # + the notes
PULSE_FILE = "pulse"  # touched by the running kernel every few seconds (lab.liveness.PULSE_S)
NOTES_DIR = "notes"  # one JSON file per note
NOTES_FILE = "notes.jsonl"  # the single append-only file of runs recorded before notes had a folder (still read)
RUNNER_LOG = "runner.log"
NOTEBOOK_FILE = "notebook.ipynb"
CHECKPOINT_DIR, SAMPLES_DIR, EVAL_DIR, REFERENCE_DIR = "checkpoints", "samples", "eval", "reference"
CHECKPOINT_KINDS = ("last", "best", "final")
PHASES = ("", "gan")  # training phases: generator (or plain) training, then the adversarial one
REFERENCE_KINDS = ("lr", "baseline", "hr")
DEGRADATION_GRID = "degradations.png"


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
    pulse: float | None = None


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


