"""A user's own architectures, discriminators and losses without editing `lab/`: a module file or package folder
(`models_from = "my_models.py"`) whose objects register with the lab's registries (`@register_model`,
`@LOSSES.register`) is loaded for the run, and its source is copied into the run (`code/`), so `lab rerun` and
`lab evaluate` rebuild exactly that network after the file changed or was deleted.

The trust rule: code carried by a run runs only when its SHA-256 is in your trust list (`$LAB_TRUST_FILE`, default
`~/.config/restoration-lab/trusted_code.json`). Code you train with from your own files joins the list as it runs;
code in someone else's run joins it only by your consent: `lab trust 42` (which lists the files and their hash) or
`--trust` on `lab rerun`, `lab run --from` and `lab extend`. A run's code that changed since it was copied hashes
differently, so it is refused again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from lab import vocab
from lab.registry import REGISTRIES
from lab.runs import Run
from lab.utils import atomic_write_json, user_path

PARAM = "models_from"  # the notebook parameter naming the user's module
_LOADED: dict[str, tuple[str, list[tuple[Any, str]]]] = {}  # path -> (hash, (registry, name) it added)


def trust_file() -> Path:
    """Where the hashes of code you consented to run are kept."""
    return Path(os.environ.get(vocab.ENV_TRUST_FILE) or Path.home() / ".config" / "restoration-lab" /
                "trusted_code.json")


def trusted() -> set[str]:
    """The SHA-256 hashes of the code you have run or consented to run."""
    try:
        return set(json.loads(trust_file().read_text(encoding="utf-8")).get("sha256", []))
    except (OSError, ValueError, AttributeError):
        return set()


def add_trust(digest: str) -> None:
    """Add `digest` to the trust list (written by rename)."""
    atomic_write_json(trust_file(), {"sha256": sorted(trusted() | {digest})})


def read_source(path: str | os.PathLike) -> tuple[str, dict[str, bytes]]:
    """(entry, files) of a user module: a `.py` file (entry: its name), or a package folder (every `.py` under it,
    entry: `<folder>/__init__.py`); FileNotFoundError / ValueError name what is wrong."""
    p = user_path(path)
    if p.is_file():
        if p.suffix != ".py":
            raise ValueError(f"{PARAM} {str(path)!r} is not a Python file (.py) or a package folder")
        return p.name, {p.name: p.read_bytes()}
    if p.is_dir():
        if not (p / "__init__.py").is_file():
            raise ValueError(f"{PARAM} {str(path)!r} is a folder without __init__.py; give a .py file or a package")
        files = {f"{p.name}/{f.relative_to(p).as_posix()}": f.read_bytes() for f in sorted(p.rglob("*.py"))
                 if "__pycache__" not in f.parts}
        return f"{p.name}/__init__.py", files
    raise FileNotFoundError(f"{PARAM} {str(path)!r} does not exist (a .py file or a package folder)")


def code_hash(files: dict[str, bytes]) -> str:
    """SHA-256 over the files' relative paths and contents, in path order."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + files[rel] + b"\0")
    return h.hexdigest()


def _import(entry: Path, digest: str) -> ModuleType:
    """Execute the module at `entry` under a name of its own; what it registers is undone when it is loaded again,
    and a failure is one line naming the file, the error and its line."""
    key = str(entry.resolve())
    prev = _LOADED.get(key)
    if prev is not None and prev[0] == digest:
        return sys.modules[f"lab_user_{prev[0][:12]}"]
    if prev is not None:  # the file changed: its old names go
        for reg, name in prev[1]:
            reg.unregister(name)
    before = {id(r): set(r.names()) for r in REGISTRIES}
    name = f"lab_user_{digest[:12]}"
    pkg = entry.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(name, entry, submodule_search_locations=[str(entry.parent)]
                                                  if pkg else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any error of user code becomes one line naming it
        sys.modules.pop(name, None)
        tb = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename).resolve().is_relative_to(
            entry.parent.resolve())]
        where = f" (line {tb[-1].lineno} of {Path(tb[-1].filename).name})" if tb else ""
        raise ValueError(f"{PARAM} {str(entry)!r} failed to import: {type(e).__name__}: {e}{where}") from None
    added = [(r, n) for r in REGISTRIES for n in r.names() if n not in before.get(id(r), set())]
    _LOADED[key] = (digest, added)
    return module


def load(path: str | os.PathLike, run: Run | None = None) -> ModuleType:
    """Load the user's module (file or package) so its models, discriminators and losses are registered; with `run`
    copy its source into the run. Your own file joins the trust list as you run it."""
    entry, files = read_source(path)
    digest = code_hash(files)
    p = user_path(path)
    module = _import(p if p.is_file() else p / "__init__.py", digest)
    add_trust(digest)
    if run is not None:
        run.save_code(files, entry, {"sha256": digest, "source": str(p.resolve())})
    return module


def carried(run: Run) -> tuple[dict[str, Any], str] | None:
    """(record, SHA-256 of the files now in the run) of the code a run carries, or None."""
    got = run.code()
    if got is None:
        return None
    rec, files = got
    return rec, code_hash(files)


def check_trust(run: Run, trust: bool = False) -> str | None:
    """Refuse (ValueError) to run the code `run` carries unless its hash is trusted or `trust` gives consent (then
    it joins the list); returns the copied entry path, None when the run carries no code."""
    got = carried(run)
    if got is None:
        return None
    rec, digest = got
    if digest not in trusted():
        if not trust:
            raise ValueError(f"run {run.name} carries code you have not run ({', '.join(rec['files'])} in "
                             f"{run.dir / 'code'}, sha256 {digest[:12]}); read it, then consent with `lab trust "
                             f"{run.id}` or --trust")
        add_trust(digest)
    return str(run.code_entry())


def load_carried(run: Run, trust: bool = False) -> ModuleType | None:
    """Register the code `run` carries (after `check_trust`), so its network can be rebuilt; None without code."""
    entry = check_trust(run, trust)
    if entry is None:
        return None
    return _import(Path(entry), carried(run)[1])
