"""Notebooks stay templates: JupyterLab works on per-user copies, batch runs execute the committed notebooks.

`make lab` (`lab jupyter`) opens JupyterLab on `work/` (git-ignored), where each template of `notebooks/` is copied
once and `work/runs` links to the runs folder (a run's notebook opens with a click); edits, outputs and autosaves stay in the copies, so `notebooks/` never changes by accident and `lab run` never
inherits an unsaved interactive edit. A copy is never overwritten: when its template changed since, `lab jupyter`
says so (delete the copy to take the new template). `template_changes` tells `lab run` when a committed notebook has
uncommitted edits, which it warns about and records in the run.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from lab import vocab
from lab.params import NOTEBOOKS_DIR
from lab.utils import PROJECT_ROOT

WORK_DIR = PROJECT_ROOT / "work"


def kernel_language_info() -> dict:
    """The `language_info` the lab's kernel reports: ipykernel's for this Python (the `restoration-lab` kernel is
    registered for the Python that runs the lab)."""
    from ipykernel.ipkernel import IPythonKernel

    return copy.deepcopy(IPythonKernel.language_info)


def as_working_copy(template: str | os.PathLike) -> bytes:
    """A template notebook as a working copy: the same cells, `metadata.language_info` the kernel's own. JupyterLab
    writes the kernel's `language_info` into a notebook it opens; the committed templates hold only its name (the
    rest depends on the Python), so a plain copy would show as modified as soon as it opened."""
    nb = json.loads(Path(template).read_text(encoding="utf-8"))
    nb.setdefault("metadata", {})["language_info"] = kernel_language_info()
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def working_copies(dest: str | os.PathLike = WORK_DIR, templates: str | os.PathLike = NOTEBOOKS_DIR) -> list[str]:
    """Copy each template notebook missing from `dest` into it (`as_working_copy`); returns one line per notebook
    saying what happened."""
    dest, templates = Path(dest), Path(templates)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for t in sorted(templates.glob("*.ipynb")):
        copy = dest / t.name
        if not copy.exists():
            copy.write_bytes(as_working_copy(t))
            out.append(f"{copy}: new copy of {t}")
        elif t.stat().st_mtime > copy.stat().st_mtime and as_working_copy(t) != copy.read_bytes():
            out.append(f"{copy}: yours is kept, but {t} changed since you copied it (delete your copy to take it)")
    return out


def link_runs(dest: str | os.PathLike, runs_root: str | os.PathLike) -> str | None:
    """Make `dest/runs` a link to the runs folder, so JupyterLab (rooted at `dest`) shows the runs beside the copies;
    one line saying what happened, or None when the link is already there."""
    link, target = Path(dest) / "runs", Path(runs_root).resolve()
    if link.is_symlink() and link.resolve() == target:
        return None
    if link.exists() or link.is_symlink():
        return f"{link}: left as it is (not a link to {target}); the runs are in {target}"
    target.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target, target_is_directory=True)
    return f"{link}: link to the runs in {target}"


def split_jupyter_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """`lab jupyter`'s own arguments (--dir, -h) and Jupyter's (the rest, in order; all of them after `--`)."""
    own, theirs, i = [], [], 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            theirs += argv[i + 1:]
            break
        if tok == "--dir" and i + 1 < len(argv):
            own += argv[i:i + 2]
            i += 1
        elif tok.startswith("--dir=") or tok in ("-h", "--help"):
            own.append(tok)
        else:
            theirs.append(tok)
        i += 1
    return own, theirs


def jupyter_command(root: str | os.PathLike, token: str, extra: Sequence[str] = (),
                    as_root: bool | None = None) -> list[str]:
    """The `jupyter lab` command line of `lab jupyter`: localhost, a token, rooted at `root`; `--allow-root` when
    run as root (`as_root` None: this process's user), then `extra` (any options or paths for Jupyter, a leading
    `--` dropped) in order, so a later option given there wins."""
    extra = list(extra)[1:] if list(extra)[:1] == ["--"] else list(extra)
    root_user = (hasattr(os, "geteuid") and os.geteuid() == 0) if as_root is None else as_root
    return [sys.executable, "-m", "jupyter", "lab", "--ip", "127.0.0.1", "--no-browser",
            f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
            *(["--allow-root"] if root_user and "--allow-root" not in extra else []), *extra]


def open_jupyter(work: str | os.PathLike, runs_root: str | os.PathLike, extra: Sequence[str] = ()) -> NoReturn:
    """`lab jupyter`: the working copies and the runs link made, JupyterLab started in place of this process."""
    for line in [*working_copies(work), link_runs(work, runs_root)]:
        if line:
            print(line)
    token = os.environ.get(vocab.ENV_JUPYTER_TOKEN) or secrets.token_hex(16)
    print(f"JupyterLab on your working copies in {work} (notebooks/ stays the committed templates; runs/ beside "
          f"them); open http://127.0.0.1:8888/lab?token={token} (or the port JupyterLab prints)", flush=True)
    os.execv(sys.executable, jupyter_command(work, token, extra))


def template_changes(nb_path: str | os.PathLike) -> str:
    """`git diff` of a committed notebook against HEAD ('' when unchanged, untracked, or git is absent)."""
    nb_path = Path(nb_path).resolve()
    try:
        r = subprocess.run(["git", "diff", "--no-color", "HEAD", "--", str(nb_path)], cwd=nb_path.parent,
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout if r.returncode == 0 else ""
