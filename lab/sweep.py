"""Executing notebooks with papermill: one run per execution, each in its own kernel process."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lab import runs
from lab.params import notebook_path, resolve

RUNNER_PARAMS = ("run_dir",)  # set by the runner, not part of an experiment's params


def kernel_for(nb_path: str | os.PathLike) -> str:
    """The notebook's kernel if installed (`restoration-lab` after `make setup`), else this Python's `python3`."""
    import json

    from jupyter_client.kernelspec import find_kernel_specs

    name = json.loads(Path(nb_path).read_text())["metadata"].get("kernelspec", {}).get("name", "python3")
    return name if name in find_kernel_specs() else "python3"


def run_notebook(nb: str = "train", overrides: dict[str, Any] | None = None, *, name: str | None = None,
                 root: str | os.PathLike | None = None, parent: int | None = None, timeout: float | None = None,
                 kernel_name: str | None = None, log_output: bool = False) -> runs.Run:
    """Execute notebook `nb` with `overrides` into a new run directory; a failing cell marks the run failed.

    The executed notebook (partial on failure) is kept as `notebook.ipynb` in the run directory.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    nb_path = notebook_path(nb)
    params = resolve(nb_path, overrides)
    for k in RUNNER_PARAMS:
        params.pop(k, None)
    run = runs.create(params, name=name or params.get("name") or None, root=root, notebook=nb_path.name,
                      parent=parent)
    partial = run.dir / ".notebook.ipynb.partial"
    try:
        pm.execute_notebook(str(nb_path), str(partial), parameters={**params, "run_dir": str(run.dir)},
                            kernel_name=kernel_name or kernel_for(nb_path), cwd=str(nb_path.parent),
                            progress_bar=False, log_output=log_output, execution_timeout=timeout)
    except PapermillExecutionError as e:
        run.fail(f"{e.ename}: {e.evalue}", cell=e.cell_index)
        err = run.read("status.json")["error"]
        err.update(type=e.ename, traceback="\n".join(e.traceback)[-8000:], source=e.source[-2000:])
        run.set_status("failed", error=err)
    except BaseException as e:  # kernel death, timeout, Ctrl-C: the run must not stay 'running'
        run.fail(e, status="interrupted" if isinstance(e, KeyboardInterrupt) else "failed")
        if isinstance(e, KeyboardInterrupt):
            raise
    else:
        if run.status == "running":
            run.finish(None)
    finally:
        if partial.exists():
            os.replace(partial, run.dir / "notebook.ipynb")
    return run


def python_executable() -> str:
    """The interpreter running the lab (used for subprocess runners)."""
    return sys.executable
