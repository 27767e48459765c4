"""Finding a study's planned runs in the ledger: the newest finished run tagged with the study whose params equal
the job's."""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pandas as pd

from lab.ledger import has_tag, is_missing
from lab.params import resolve
from lab.studies.jobs import Key, StudyJob
from lab.studies.planning import TITLE_PARAM


def _same(got: Any, want: Any) -> bool:
    """Whether a ledger cell (lists and dicts as JSON text) holds the resolved param value `want`."""
    if is_missing(got):
        return False
    if isinstance(want, (dict, list, tuple)):
        try:
            got = json.loads(got) if isinstance(got, str) else got
        except ValueError:
            return False
        return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(got == want)


def match_runs(df: pd.DataFrame, jobs: Sequence[StudyJob]) -> dict[int, pd.Series]:
    """{job index: ledger row} of the planned jobs that have a finished run: the newest done run tagged with the
    study whose params equal the job's (a job that starts from another arm: from that arm's matched run)."""
    found: dict[int, pd.Series] = {}
    if df.empty or "tags" not in df:
        return found
    done = df[df["status"] == "done"]
    ids: dict[Key, int] = {}
    # every param that any job of the study sets is compared, also where this job leaves it at its default: the
    # baseline must not match the run of an arm that differs from it only by a param the baseline does not set
    varied = sorted({k for j in jobs for k in j.overrides if k != TITLE_PARAM}
                    | ({"init_from"} if any(j.study.after for j in jobs) else set()))
    for i in sorted(range(len(jobs)), key=lambda k: jobs[k].study.after is not None):
        job = jobs[i]
        overrides = dict(job.overrides)
        after = job.study.after_key
        if after:
            if after not in ids:
                continue
            overrides["init_from"] = str(ids[after])
        want = resolve(job.notebook, overrides)
        rows = done[has_tag(done, job.study.name)]
        for k in varied:
            if rows.empty:
                break
            col = f"param.{k}"
            rows = rows[rows[col].map(lambda v, w=want[k]: _same(v, w))] if col in rows else rows.iloc[0:0]
        if not rows.empty:
            found[i] = rows.iloc[-1]
            ids[job.study.key] = int(rows.iloc[-1]["id"])
    return found

