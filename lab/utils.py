"""Small helpers shared across the lab: atomic file writes, reference-data lookup, seeding."""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temp file + rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically (temp file + rename)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):  # 0-d torch tensors
        return o.item()
    return repr(o)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON atomically; numpy/torch scalars and paths are converted to plain values."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def reference_data_dir() -> Path | None:
    """Where the shared reference data lives: `$LAB_REFERENCE_DATA`, else `../shared/data` beside the repo, else None."""
    env = os.environ.get("LAB_REFERENCE_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(PROJECT_ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def benchmarks_dir() -> Path | None:
    """Root holding benchmark sets (`<root>/Set5/HR`, ...): `$LAB_BENCHMARKS`, else the reference data's `benchmarks/`."""
    env = os.environ.get("LAB_BENCHMARKS")
    if env and Path(env).is_dir():
        return Path(env)
    ref = reference_data_dir()
    if ref is not None and (ref / "benchmarks").is_dir():
        return ref / "benchmarks"
    return None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; library code still passes explicit generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
