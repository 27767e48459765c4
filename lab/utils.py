"""Small helpers shared across the lab: atomic file writes, fast JSON reads, time stamps, provenance (git,
environment), reference-data lookup, seeding. Imports neither torch nor OpenCV at module level."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import random
import re
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from lab.vocab import ENV_BENCHMARKS, ENV_REFERENCE_DATA

try:  # orjson parses run files about 3x faster; plain json otherwise
    import orjson as _orjson
except ImportError:  # pragma: no cover - optional
    _orjson = None

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: a runs folder shared by a team stays readable by it


def atomic_write_bytes(path: str | os.PathLike, data: bytes, sync: bool = True) -> Path:
    """Write `data` to `path` through a temp file + rename, so readers never see half a file (a failed write, a
    full disk included, leaves the previous file as it was). The file gets the usual mode (0666 less the umask),
    not the temp file's 0600. `sync=False` skips the fsync, for a file that can be rebuilt if a crash truncates it."""
    return atomic_write_with(path, lambda f: f.write(data), sync)


def atomic_write_with(path: str | os.PathLike, write: Callable[[BinaryIO], Any], sync: bool = True) -> Path:
    """`atomic_write_bytes` with the content written by `write(file)` (e.g. `pickle.dump` streaming into it, not a
    whole copy in memory first)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if sync:
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


_READ_CHUNK = 1 << 16  # a 1 MiB read buffer cost an mmap, two page faults and a munmap per small file


def read_bytes(path: Path | str) -> bytes:
    """A whole small file through raw os calls (several times cheaper than open() for thousands of files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            b = os.read(fd, _READ_CHUNK)
            if not b:
                break
            chunks.append(b)
            if len(b) < _READ_CHUNK:
                break
        return b"".join(chunks)
    finally:
        os.close(fd)


if _orjson is not None:
    def _loads(data: bytes) -> Any:
        try:
            return _orjson.loads(data)
        except _orjson.JSONDecodeError:  # NaN / Infinity (written for diverged runs) are not strict JSON
            return json.loads(data)

    JSON_ERRORS: tuple[type[BaseException], ...] = (_orjson.JSONDecodeError, UnicodeDecodeError, ValueError)
else:  # pragma: no cover - optional
    def _loads(data: bytes) -> Any:
        return json.loads(data)

    JSON_ERRORS = (json.JSONDecodeError, UnicodeDecodeError, ValueError)


def read_json_file(path: str | os.PathLike) -> Any:
    """A JSON file (FileNotFoundError if absent; a JSON_ERRORS exception if corrupt)."""
    return _loads(read_bytes(path))


def slugify(text: str, max_len: int = 40) -> str:
    """Lower-case, dash-separated, filesystem-safe version of `text`."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return s[:max_len].strip("-") or "run"


def parse_time(s: Any) -> float | None:
    """POSIX seconds of an ISO-8601 string (None if absent or unreadable)."""
    if not s or not isinstance(s, str):
        return None
    try:
        return _dt.datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


def now() -> str:
    """Current local time as ISO-8601 with seconds and offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, in order; a torn or unreadable line is skipped; [] if absent."""
    try:
        data = read_bytes(path)
    except FileNotFoundError:
        return []
    out = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:  # a torn line (a writer killed mid-write)
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


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


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def threads_per_process(num_processes: int) -> int:
    """CPU threads for each of `num_processes` processes sharing this machine: usable cores split evenly, >= 1."""
    return max(1, usable_cores() // max(1, num_processes))


THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")  # torch and OpenMP read them at start


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that give a child process (and its kernel) `threads` torch/OpenMP threads."""
    return {k: str(int(threads)) for k in THREAD_ENV}


def environment() -> dict[str, Any]:
    """Versions, threads and device of this process, for reproducing a run."""
    import torch  # lazy: this module stays torch-free for the read side (ledger, `lab ledger`)

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cuda": torch.cuda.is_available(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    for mod in ("fastai", "torchvision", "cv2", "pandas", "papermill"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional package
            env[mod] = None
    return env


def reference_data_dir() -> Path | None:
    """Where the shared reference data lives: `$LAB_REFERENCE_DATA`, else `../shared/data` beside the repo, else None."""
    env = os.environ.get(ENV_REFERENCE_DATA)
    candidates = [Path(env)] if env else []
    candidates.append(PROJECT_ROOT.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


def user_path(path: str | os.PathLike) -> Path:
    """A path a user gave (a data folder, a checkpoint): as given when it exists, else taken from the project root
    when it exists there. Notebooks run in notebooks/ or work/, while the README's commands (and `lab data
    prepare`) write relative to the project root, so `-p data data/div2k_sub` must mean the same everywhere."""
    p = Path(path).expanduser()
    if p.exists() or p.is_absolute() or not (PROJECT_ROOT / p).exists():
        return p
    return PROJECT_ROOT / p


def benchmarks_dir() -> Path | None:
    """Root holding benchmark sets (`<root>/Set5/HR`, ...): `$LAB_BENCHMARKS`, else the reference data's `benchmarks/`."""
    env = os.environ.get(ENV_BENCHMARKS)
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
