"""Runs started in a live kernel (JupyterLab): the record stays true without a runner watching.

`start(params, run_dir=..., nb=...)` is what a notebook calls to begin its run. Under a runner (`lab run`, a sweep:
`run_dir` set) it attaches to the run directory the runner made, and the runner records how the execution ends;
a watchdog ends the kernel (the run `interrupted`) if the runner dies without recording it.
In a live kernel it also attaches this module's hooks to the kernel, so that:
- a cell that fails marks the run `failed` with the error and the cell (its index in the notebook when the front end
  says which cell it was, its source in any case); a stop (Ctrl-C, the stop button) marks it `stopped`;
- the next cell run after a failure sets it `running` again, the earlier errors kept (the status's "errors"), so a
  fix-and-continue ends `done` with its history;
- running the start cell again closes the kernel's previous unfinished run as `stopped` (superseded), or reuses its
  directory when nothing was trained in it, so no orphan runs are left;
- the kernel shutting down (a restart) marks an unfinished run `stopped`;
- every cell executed for the run, with the outputs the kernel can capture (text, images, tables, errors), is kept
  as the run's notebook, written after each cell;
- `sync_params(run, phase)` re-reads the parameters the kernel holds when a training phase starts and records any
  change (the run's params are the params that trained; its meta's "param_changes" the history).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lab import runs
from lab.liveness import PULSE_S, pid_alive
from lab.params import collect, notebook_defaults, notebook_path

MAX_OUTPUT_CHARS = 200_000  # per cell, text and images together: a runaway print loop does not bloat the notebook
_SESSION: Session | None = None


def _ipython() -> Any:
    """The running IPython shell, or None outside one."""
    try:
        from IPython import get_ipython  # lazy: IPython is only present where there is a kernel
    except ImportError:  # pragma: no cover - IPython ships with ipykernel, a dependency
        return None
    return get_ipython()


def _interactive(ip: Any) -> bool:
    """Whether `ip` is a kernel a person drives (not papermill's, whose runner records the run)."""
    return ip is not None and getattr(ip, "kernel", None) is not None and not os.environ.get("LAB_PAPERMILL")


class _Cell:
    """One executed cell: its source, execution count, notebook cell id and the outputs captured from it."""

    def __init__(self, source: str, count: int | None, cell_id: str | None):
        self.source, self.count, self.cell_id, self.outputs, self.size = source, count, cell_id, [], 0

    def add(self, output: dict[str, Any]) -> None:
        n = len(json.dumps(output, default=str))
        if self.size + n > MAX_OUTPUT_CHARS:
            return
        did = output.get("transient", {}).get("display_id") if isinstance(output.get("transient"), dict) else None
        if did is not None:  # an updated display (a progress bar): keep its latest state only
            self.outputs = [o for o in self.outputs if o.get("transient", {}).get("display_id") != did]
        self.size += n
        self.outputs.append(output)

    def stream(self, name: str, text: str) -> None:
        if self.outputs and self.outputs[-1].get("output_type") == "stream" and self.outputs[-1]["name"] == name:
            if self.size + len(text) <= MAX_OUTPUT_CHARS:
                self.outputs[-1]["text"] += text
                self.size += len(text)
            return
        self.add({"output_type": "stream", "name": name, "text": text})

    def to_json(self) -> dict[str, Any]:
        outs = [{k: v for k, v in o.items() if k != "transient"} for o in self.outputs]
        return {"cell_type": "code", "execution_count": self.count, "metadata": {"lab_cell_id": self.cell_id},
                "source": self.source, "outputs": outs, **({"id": self.cell_id} if self.cell_id else {})}


class Session:
    """The hooks of one kernel and the run they keep true (see the module docstring)."""

    def __init__(self, ip: Any, nb: str):
        self.ip, self.nb, self.run, self.cells = ip, nb, None, []
        self.current: _Cell | None = None
        self.notebook_file = os.environ.get("JPY_SESSION_NAME")
        ip.events.register("pre_run_cell", self.pre_run_cell)
        ip.events.register("post_run_cell", self.post_run_cell)
        ip.set_custom_exc((BaseException,), self._on_error)
        self._wrap_outputs()
        atexit.register(self.shutdown)

    # -- capture
    def _wrap_outputs(self) -> None:
        pub = self.ip.display_pub
        original = pub.publish

        def publish(data, metadata=None, *args, **kwargs):
            if self.current is not None:
                out = {"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})}
                if kwargs.get("transient"):
                    out["transient"] = kwargs["transient"]
                self.current.add(out)
            return original(data, metadata, *args, **kwargs)

        pub.publish = publish
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            write = stream.write

            def tee(text, _write=write, _name=name):
                if self.current is not None and isinstance(text, str):
                    self.current.stream(_name, text)
                return _write(text)

            try:
                stream.write = tee
            except AttributeError:  # pragma: no cover - a stream that refuses attributes: outputs not captured
                pass

    def _cell_index(self, cell_id: str | None) -> int | None:
        """The index of cell `cell_id` in the notebook file the front end opened (as last saved), if known."""
        if not cell_id or not self.notebook_file or not Path(self.notebook_file).is_file():
            return None
        try:
            cells = json.loads(Path(self.notebook_file).read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            return None
        return next((i for i, c in enumerate(cells) if c.get("id") == cell_id), None)

    def _cell_id(self) -> str | None:
        kernel = getattr(self.ip, "kernel", None)
        try:
            parent = kernel.get_parent() if kernel is not None else {}
        except Exception:  # noqa: BLE001 - no parent message (a cell run from a script)
            return None
        return (parent or {}).get("metadata", {}).get("cellId")

    def pre_run_cell(self, info: Any) -> None:
        self.current = _Cell(getattr(info, "raw_cell", "") or "", self.ip.execution_count, self._cell_id())
        run = self.run
        if run is not None and run.status in ("failed", "stopped") and run.status_record.get("by_session"):
            errors = [*run.status_record.get("errors", []), run.error]
            run.set_status("running", errors=[e for e in errors if e], by_session=True)

    def post_run_cell(self, result: Any) -> None:
        cell, self.current = self.current, None
        if cell is None:
            return
        res = getattr(result, "result", None)
        if res is not None:
            data, meta = self.ip.display_formatter.format(res)
            cell.add({"output_type": "execute_result", "execution_count": cell.count, "data": data,
                      "metadata": meta})
        err = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if err is not None:
            cell.add({"output_type": "error", "ename": type(err).__name__, "evalue": str(err), "traceback": []})
        if self.run is not None:
            self.cells.append(cell)
            self.save_notebook()

    def _on_error(self, shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> Any:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        run = self.run
        if run is not None and run.status == "running":
            cell = self.current
            stopped = issubclass(etype, KeyboardInterrupt)
            index = self._cell_index(cell.cell_id if cell else None)
            run.fail(value, cell=index, status="stopped" if stopped else "failed", status_extra={"by_session": True},
                     source=(cell.source if cell else "")[-2000:], cell_id=cell.cell_id if cell else None,
                     execution_count=cell.count if cell else None)
            where = f" in cell {index}" if index is not None else ""
            print(f"[lab] run {run.name} recorded as {run.status}{where}. Fix it and run on from this cell (the run "
                  "goes on and keeps this error), or Run All again (a run that trained nothing is reused).",
                  file=sys.stderr)
        return None

    # -- the run
    def attach(self, run: runs.Run) -> None:
        """Keep `run` true from now on (the cells before it that set the parameters are included)."""
        self.run, self.cells = run, self._parameter_cells()
        self.save_notebook()

    def _parameter_cells(self) -> list[_Cell]:
        """The most recent executed cell that assigns this notebook's parameters (no outputs: they were before)."""
        names = set(notebook_defaults(self.nb))
        history = list(self.ip.user_ns.get("In", []))[1:-1]
        for count in range(len(history), 0, -1):
            src = history[count - 1]
            assigned = {ln.split("=", 1)[0].strip() for ln in src.splitlines() if "=" in ln}
            if names and len(assigned & names) >= len(names) // 2:
                return [_Cell(src, count, None)]
        return []

    def save_notebook(self) -> None:
        """Write the cells executed for the run so far as its notebook."""
        if self.run is None:
            return
        nb = {"cells": [c.to_json() for c in self.cells],
              "metadata": {"kernelspec": {"name": "restoration-lab", "display_name": "Python (restoration-lab)",
                                          "language": "python"}, "lab": {"recorded_from": "live kernel",
                                                                         "notebook": self.notebook_file}},
              "nbformat": 4, "nbformat_minor": 5}
        self.run.write_notebook(nb)

    def shutdown(self) -> None:
        """The kernel is exiting: an unfinished run stops here."""
        run = self.run
        if run is not None and run.status == "running":
            run.fail("the kernel shut down (restart or close) before the run finished", status="stopped",
                     status_extra={"by_session": True})


def keep_alive(run: runs.Run, runner: int | None = None, every_s: float = 1.0) -> threading.Thread:
    """A daemon thread of the kernel running `run`: it beats the run's pulse every PULSE_S seconds (other hosts tell
    a live run by it) and, in a kernel a runner started, records the run `interrupted` and ends the kernel when the
    runner process dies (killed, out of memory), so an orphaned kernel never keeps a dead run 'running'."""
    def watch() -> None:
        last = 0.0
        while runner is None or pid_alive(runner):
            if time.monotonic() - last >= PULSE_S:
                try:
                    if run.status in ("done", "diverged"):  # finished: nothing left to keep alive
                        return
                    run.pulse()
                except OSError:  # the folder went away
                    return
                last = time.monotonic()
            time.sleep(every_s)
        if run.status == "running":
            run.fail(f"the runner process {runner} died (killed?) while the run was going on", status="interrupted")
        os._exit(1)

    t = threading.Thread(target=watch, name="lab-keep-alive", daemon=True)
    t.start()
    return t


def start(params: dict[str, Any], *, run_dir: str | os.PathLike | None = None, nb: str = "train",
          **kw: Any) -> runs.Run:
    """Begin a notebook's run (see the module docstring): attach to a runner's run directory, or create one and
    keep it true from this live kernel."""
    global _SESSION
    ip = _ipython()
    if run_dir or not _interactive(ip):
        run = runs.start(params, run_dir=run_dir, **kw)
        runner = os.environ.get("LAB_RUNNER_PID", "")
        if run_dir and runner.isdigit():
            keep_alive(run, int(runner))
        return run
    if _SESSION is None or _SESSION.ip is not ip:
        _SESSION = Session(ip, nb)
    _SESSION.nb = nb
    old = _SESSION.run
    reuse = None
    if old is not None and old.status in ("running", "failed", "stopped"):
        if not old.history and not old.checkpoints():
            reuse = old
        else:
            old.fail("superseded: the start cell ran again", status="stopped", status_extra={"by_session": True})
    run = runs.start(params, run_dir=reuse.dir, **{k: v for k, v in kw.items() if k in ("name", "parent")}) \
        if reuse is not None else runs.start(params, **kw)
    if reuse is not None:
        run.update_meta(reused=[*run.meta.get("reused", []), runs.now()])
    run.update_meta(interactive=True, notebook_path=str(notebook_path(nb)))
    _SESSION.attach(run)
    keep_alive(run)
    return run


def session() -> Session | None:
    """This kernel's session, if a run was started in it."""
    return _SESSION


def sync_params(run: runs.Run | None, phase: str) -> dict[str, Any] | None:
    """At the start of `phase`: the parameters the live kernel holds now; recorded as the run's params (with the
    change history in the run's meta) when they differ from what was recorded. None outside a live session."""
    s = _SESSION
    if run is None or s is None or s.run is None or s.run.dir != run.dir:
        return None
    now = collect(s.ip.user_ns, s.nb)
    before = run.params
    changed = {k: [before.get(k), v] for k, v in now.items() if before.get(k, v) != v or k not in before}
    if changed:
        run.update_meta(param_changes=[*run.meta.get("param_changes", []),
                                       {"time": runs.now(), "phase": phase, "changed": changed}])
        run.write_json("params", {**before, **now})
    return now
