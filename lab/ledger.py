"""The results ledger: every run directory as one row of a pandas DataFrame; broken runs are reported, never fatal."""

from __future__ import annotations

import json
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from lab.runs import _RUN_RE, runs_dir

BASE_COLUMNS = ("id", "name", "title", "date", "status", "notebook", "git_commit", "git_dirty", "parent")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _effective_status(status: dict[str, Any]) -> str:
    """'running' runs whose process is gone (same host) are reported as 'interrupted'."""
    s = status.get("status", "unknown")
    if s == "running" and status.get("host") == socket.gethostname() and status.get("pid"):
        if not _pid_alive(int(status["pid"])):
            return "interrupted"
    return s


def _read(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _flatten(prefix: str, d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, (list, tuple, dict)):
            v = json.dumps(v)
        out[f"{prefix}{k}"] = v
    return out


def load_run(path: str | os.PathLike) -> dict[str, Any]:
    """One run directory as a flat row; raises ValueError when it is corrupt or half-written."""
    path = Path(path)
    m = _RUN_RE.match(path.name)
    if not m:
        raise ValueError(f"{path.name!r} is not a run directory name (NNNN-<slug>)")
    try:
        meta = _read(path / "meta.json")
        params = _read(path / "params.json")
        status = _read(path / "status.json")
    except FileNotFoundError as e:
        raise ValueError(f"half-written run: {Path(e.filename).name} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"corrupt JSON: {e}") from None
    metrics_p = path / "metrics.json"
    try:
        metrics = _read(metrics_p) if metrics_p.exists() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"corrupt metrics.json: {e}") from None
    git = meta.get("git") or {}
    row: dict[str, Any] = {
        "id": int(m.group(1)), "name": path.name, "title": meta.get("title"), "date": meta.get("created"),
        "status": _effective_status(status), "notebook": meta.get("notebook"), "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"), "parent": meta.get("parent"), "started": status.get("started"),
        "finished": status.get("finished"), "error": (status.get("error") or {}).get("message"),
        "error_cell": (status.get("error") or {}).get("cell"), "path": str(path),
    }
    row.update(_flatten("param.", params))
    row.update(_flatten("metric.", metrics))
    return row


def load(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """All runs under `root` (default `runs/`) as a DataFrame, one row per run, sorted by id.

    Corrupt or half-written run directories are skipped with a warning and listed in `df.attrs['problems']`.
    """
    root = runs_dir(root)
    rows, problems = [], []
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if not p.is_dir() or not _RUN_RE.match(p.name):
                continue
            try:
                rows.append(load_run(p))
            except ValueError as e:
                problems.append({"run": p.name, "problem": str(e)})
    for pr in problems:
        warnings.warn(f"ledger: skipped {pr['run']}: {pr['problem']}", stacklevel=2)
    df = pd.DataFrame(rows, columns=None if rows else list(BASE_COLUMNS))
    if rows:
        df = df.sort_values("id").reset_index(drop=True)
        df["date"] = pd.to_datetime(df["date"], utc=True, errors="coerce")
    df.attrs["problems"] = problems
    return df


DEFAULT_VIEW = ("id", "name", "status", "param.model", "param.scale", "param.epochs", "metric.valid_psnr_y",
                "metric.set5_psnr_y", "metric.set5_gain_psnr_y", "metric.set5_ssim_y", "metric.train_minutes")


def view(df: pd.DataFrame, columns: tuple[str, ...] | list[str] = DEFAULT_VIEW) -> pd.DataFrame:
    """The ledger columns people read first (those present), with short names."""
    cols = [c for c in columns if c in df.columns]
    return df[cols].rename(columns=lambda c: c.split(".", 1)[-1])
