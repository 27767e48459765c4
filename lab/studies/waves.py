"""Running a study: the jobs without a finished run, in waves (a run that starts from another arm's run goes once
that one is done), then the answer from the ledger."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lab.ledger import load as load_ledger
from lab.runs import Run
from lab.studies.answers import answer, verdict
from lab.studies.jobs import Key, StudyJob, StudyMeta
from lab.studies.matching import match_runs
from lab.studies.planning import plan
from lab.studies.spec import load_study
from lab.sweep import run_jobs


def run_waves(jobs: list[StudyJob], *, workers: int = 2, reuse: dict[int, int] | None = None,
              progress: bool = True) -> list[dict[str, Any]]:
    """Run the jobs (of one or several studies) not in `reuse` ({job index: run id}) on `workers` processes, in
    waves: a job that starts from another arm's run ('@arm') goes once that run is done, with its id; when that
    run failed it is not run (status 'skipped'). Returns the summary rows (lab.sweep.run_jobs), each with the arm's
    `title`."""
    ids: dict[Key, int] = {jobs[i].study.key: rid for i, rid in (reuse or {}).items()}
    by_title = {j.name: j.study for j in jobs}
    pending, failed, rows = [i for i in range(len(jobs)) if i not in (reuse or {})], set(), []
    while pending:
        wave, waiting = [], []
        for i in pending:
            dep = jobs[i].study.after_key
            if dep is None or dep in ids:
                if dep is not None:
                    jobs[i].overrides["init_from"] = str(ids[dep])
                wave.append(i)
            elif dep in failed or not any(jobs[k].study.key == dep for k in pending):
                failed.add(jobs[i].study.key)
                rows.append({"id": None, "name": jobs[i].name, "title": jobs[i].name, "status": "skipped",
                             "seconds": 0.0, "error": f"starts from {dep[1]} (seed {dep[2]}), which did not finish",
                             "error_cell": None, "path": None})
            else:
                waiting.append(i)
        got = run_jobs([jobs[i] for i in wave], workers=workers, progress=progress,
                       desc=", ".join(sorted({jobs[i].study.name for i in wave}))) if wave else []
        for row in got:
            study = _recorded_study(row) if row.get("path") else by_title.get(row["name"])
            if study is None:
                continue
            row["title"] = study.title
            if row["status"] == "done":
                ids[study.key] = int(row["id"])
            else:
                failed.add(study.key)
        rows += got
        pending = waiting
    return rows


def _recorded_study(row: dict[str, Any]) -> StudyMeta | None:
    """The study metadata a finished job's run recorded (None for a run of no study)."""
    d = Run(row["path"]).meta.get("study")
    return StudyMeta.from_dict(d) if d else None


@dataclass
class StudyResult:
    """What `run_study` did: the plan, the runs reused and run, the answer, its verdict and the wall time."""

    spec: dict[str, Any]
    jobs: list[StudyJob]
    reused: dict[int, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    answer: pd.DataFrame | None = None
    verdict: str = ""
    minutes: float = 0.0


def run_study(study: str | os.PathLike | dict[str, Any], *, workers: int | None = None, profile: str | None = None,
              root: str | os.PathLike | None = None, dry_run: bool = False, fresh: bool = False,
              progress: bool = True, timeout: float | None = None,
              data_root: str | os.PathLike | None = None) -> StudyResult:
    """Run a study (the runs it has no finished run for yet, unless `fresh`) and answer it from the ledger.
    `dry_run`: the plan only (which runs would be reused), nothing executed."""
    spec = load_study(study)
    jobs = plan(spec, profile, root=root, data_root=data_root, timeout=timeout)
    found = {} if fresh else match_runs(load_ledger(root, warn=False), jobs)
    res = StudyResult(spec, jobs, {i: int(r["id"]) for i, r in found.items()})
    if dry_run:
        return res
    t0 = time.monotonic()
    res.rows = run_waves(jobs, workers=int(workers or spec.get("workers") or 2), reuse=res.reused,
                       progress=progress)
    res.minutes = (time.monotonic() - t0) / 60
    res.answer = answer(load_ledger(root, warn=False), spec, jobs)
    res.verdict = verdict(res.answer)
    return res

