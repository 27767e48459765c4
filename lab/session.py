"""Runs started from a notebook, and the opt-in IPython extension that keeps a live kernel's run true.

`start(params, run_dir=..., nb=...)` is what a notebook calls to begin its run; it returns a `Session` (the run, and
what the kernel holds) that the notebook passes on to `lab.training` (`fit(..., session=s)`). Nothing in the
library reads kernel state by itself.

Under a runner (`lab run`, a sweep: `run_dir` set) `start` attaches to the run directory the runner made; the
runner records how the execution ends. A watchdog thread beats the run's pulse and, when the runner process dies
without recording the end, records the run `interrupted`, interrupts the running cell and asks its own kernel to
shut down (a shutdown request on the kernel's control channel, as a front end sends one).

In a live kernel (JupyterLab) `start` loads the extension (`%load_ext lab.session` loads it beforehand;
`%unload_ext lab.session` removes every hook). Its contract, for the run most recently started in the kernel:
- it uses IPython's `pre_run_cell` / `post_run_cell` events and ipykernel's output hooks (`register_hook` of the
  display publisher and of the output streams); it replaces no function and installs no exception handler;
- a cell that fails marks the run `failed` with the error and the cell (its index in the notebook file the front
  end opened, its source in any case); a stop (Ctrl-C, the stop button) marks it `stopped`;
- the next cell run after a failure sets it `running` again, the earlier errors kept (the status's "errors"), so a
  fix-and-continue ends `done` with its history;
- running the start cell again closes the kernel's previous unfinished run as `stopped` (superseded), or reuses its
  directory when nothing was trained in it, so no orphan runs are left;
- the kernel exiting (a restart) marks an unfinished run `stopped`;
- the run's notebook (`Run.notebook`) is the cells executed for it with their outputs (text, images, tables,
  errors): first the parameters cell (the cell tagged `parameters` in the notebook file, found by its cell id, else by its saved
  source), then every cell from the start cell on, until the next run's parameters cell; it is written only while
  the run's status was last written by this kernel, so an attempt another process ran (`lab resume`) is never
  overwritten;
- `Session.sync_params(phase)` re-reads the parameters the kernel holds when a training phase starts and records any
  change (the run's params are the params that trained; its meta's "param_changes" the history).
"""

from __future__ import annotations

import _thread
import atexit
import collections
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from lab import runs, vocab
from lab.liveness import PULSE_S, pid_alive
from lab.params import NOTEBOOKS_DIR, collect, notebook_path

MAX_OUTPUT_CHARS = 200_000  # per cell, text and images together: a runaway print loop does not bloat the notebook
RECENT_CELLS = 50  # executed cells remembered before a run starts (its parameters cell is among them)
SHUTDOWN_GRACE_S = 20.0  # after asking its kernel to shut down, the watchdog sends SIGTERM if it is still alive
_ATTR = "_lab_capture"  # where the extension keeps its state on the shell it is loaded into


def _ipython() -> Any:
    """The running IPython shell, or None outside one."""
    try:
        from IPython import get_ipython  # lazy: IPython is only present where there is a kernel
    except ImportError:  # pragma: no cover - IPython ships with ipykernel, a dependency
        return None
    return get_ipython()


def _interactive(ip: Any) -> bool:
    """Whether `ip` is a kernel a person drives (not papermill's, whose runner records the run)."""
    return ip is not None and getattr(ip, "kernel", None) is not None and not os.environ.get(vocab.ENV_PAPERMILL)


def _owned(run: runs.Run) -> bool:
    """Whether this process wrote the run's status last (so its recording is the run's current attempt)."""
    st = run.status_record
    return st.get("pid") == os.getpid() and st.get("host") == socket.gethostname()


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

    def to_json(self, index: int) -> dict[str, Any]:
        outs = [{k: v for k, v in o.items() if k != "transient"} for o in self.outputs]
        return {"cell_type": "code", "execution_count": self.count, "id": self.cell_id or f"lab-{index}",
                "metadata": {"lab_cell_id": self.cell_id}, "source": self.source, "outputs": outs}


def _tagged_parameters(notebook_file: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """(cell id, source) of the cell tagged `parameters` in a notebook file, or (None, None)."""
    try:
        cells = json.loads(Path(notebook_file).read_text(encoding="utf-8")).get("cells", [])
    except (TypeError, OSError, ValueError):
        return None, None
    for c in cells:
        if "parameters" in c.get("metadata", {}).get("tags", []):
            src = c.get("source", "")
            return c.get("id"), "".join(src) if isinstance(src, list) else src
    return None, None


class Capture:
    """The extension's state in one kernel: the hooks, the cells executed, and the run they are recorded for."""

    def __init__(self, ip: Any):
        self.ip, self.run, self.nb = ip, None, "train"
        self.cells: list[_Cell] = []
        self.recent: collections.deque[_Cell] = collections.deque(maxlen=RECENT_CELLS)
        self.current: _Cell | None = None
        self.start_count: int | None = None  # execution count of the cell that started the current run
        self.by_msg: dict[str, _Cell] = {}
        self.lock = threading.Lock()
        self.notebook_file = os.environ.get("JPY_SESSION_NAME")
        self.streams = [s for s in (sys.stdout, sys.stderr) if hasattr(s, "register_hook")]

    # -- the hooks
    def install(self) -> None:
        """Register the event callbacks and the output hooks (see the module docstring)."""
        self.ip.events.register("pre_run_cell", self.pre_run_cell)
        self.ip.events.register("post_run_cell", self.post_run_cell)
        if hasattr(self.ip.display_pub, "register_hook"):
            self.ip.display_pub.register_hook(self.on_message)
        for s in self.streams:  # stream hooks are per thread, and streams are flushed by the IOPub thread
            s.pub_thread.schedule(lambda s=s: s.register_hook(self.on_message))
        atexit.register(self.shutdown)
        history = self.ip.user_ns.get("In", [])
        if history:  # loaded from a cell (`%load_ext`, the start cell): that cell is the one running now
            self._begin_cell(history[-1], None)

    def _begin_cell(self, source: str, cell_id: str | None) -> None:
        cell = _Cell(source, self.ip.execution_count - 1, cell_id)  # IPython counts the cell before it runs
        msg_id = (getattr(self.ip.display_pub, "parent_header", None) or {}).get("msg_id")
        with self.lock:
            self.current = cell
            self.by_msg = {msg_id: cell} if msg_id else {}

    def uninstall(self) -> None:
        """Remove every hook `install` added."""
        self.ip.events.unregister("pre_run_cell", self.pre_run_cell)
        self.ip.events.unregister("post_run_cell", self.post_run_cell)
        if hasattr(self.ip.display_pub, "unregister_hook"):
            self.ip.display_pub.unregister_hook(self.on_message)
        for s in self.streams:
            s.pub_thread.schedule(lambda s=s: s.unregister_hook(self.on_message))
        atexit.unregister(self.shutdown)

    def on_message(self, msg: dict[str, Any]) -> dict[str, Any]:
        """An output message on its way to the front end: kept with the cell that produced it, passed on."""
        kind, content = msg.get("header", {}).get("msg_type"), msg.get("content", {})
        with self.lock:
            cell = self.by_msg.get(msg.get("parent_header", {}).get("msg_id"))
            if cell is not None and kind == "stream":
                cell.stream(content.get("name", "stdout"), content.get("text", ""))
            elif cell is not None and kind in ("display_data", "update_display_data"):
                cell.add({"output_type": "display_data", "data": dict(content.get("data", {})),
                          "metadata": dict(content.get("metadata", {})),
                          "transient": dict(content.get("transient") or {})})
        return msg

    def pre_run_cell(self, info: Any) -> None:
        """A cell starts: remember it; a run that failed in this kernel goes on (the error kept)."""
        self._begin_cell(getattr(info, "raw_cell", "") or "", getattr(info, "cell_id", None))
        run = self.run
        if run is not None and run.status in ("failed", "stopped") and run.status_record.get("by_session") \
                and _owned(run):
            errors = [*run.status_record.get("errors", []), run.error]
            run.set_status("running", errors=[e for e in errors if e], by_session=True)

    def post_run_cell(self, result: Any) -> None:
        """A cell ended: its outputs and error are kept; an error fails (or a stop stops) the run."""
        for s in (sys.stdout, sys.stderr):
            s.flush()  # ipykernel's flush waits for the IOPub thread, so the cell's text has passed the hooks
        with self.lock:
            cell, self.current, self.by_msg = self.current, None, {}
        if cell is None:
            return
        cell.count = getattr(getattr(result, "info", None), "execution_count", None) or \
            getattr(result, "execution_count", None) or cell.count
        self.recent.append(cell)
        res = getattr(result, "result", None)
        if res is not None:
            data, meta = self.ip.display_formatter.format(res)
            cell.add({"output_type": "execute_result", "execution_count": cell.count, "data": data,
                      "metadata": meta})
        err = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if err is not None:
            cell.add({"output_type": "error", "ename": type(err).__name__, "evalue": str(err),
                      "traceback": traceback.format_exception(err)[-20:]})
        run = self.run
        if run is None or not _owned(run):
            return
        self.cells.append(cell)
        if err is not None and run.status == "running":
            self._record_error(run, cell, err)
        self.save_notebook()

    def _record_error(self, run: runs.Run, cell: _Cell, err: BaseException) -> None:
        stopped = isinstance(err, KeyboardInterrupt)
        index = self._cell_index(cell.cell_id)
        run.fail(err, cell=index, status="stopped" if stopped else "failed", status_extra={"by_session": True},
                 source=cell.source[-2000:], cell_id=cell.cell_id, execution_count=cell.count)
        where = f" in cell {index}" if index is not None else ""
        print(f"[lab] run {run.name} recorded as {run.status}{where}. Fix it and run on from this cell (the run goes "
              "on and keeps this error), or Run All again (a run that trained nothing is reused).", file=sys.stderr)

    def _cell_index(self, cell_id: str | None) -> int | None:
        """The index of cell `cell_id` in the notebook file the front end opened (as last saved), if known."""
        if not cell_id or not self.notebook_file:
            return None
        try:
            cells = json.loads(Path(self.notebook_file).read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError):
            return None
        return next((i for i, c in enumerate(cells) if c.get("id") == cell_id), None)

    # -- the run
    def template(self) -> Path:
        """The committed template the kernel's notebook came from (`notebooks/<name>.ipynb`)."""
        name = Path(self.notebook_file).name if self.notebook_file else f"{Path(str(self.nb)).stem}.ipynb"
        t = NOTEBOOKS_DIR / name
        return t if t.is_file() else notebook_path(self.nb)

    def executed(self) -> list[_Cell]:
        """The cells executed before the current one, oldest first: those seen by the hooks with their outputs and
        ids, and those run before the extension was loaded from IPython's input history (source only)."""
        now = self.current.count if self.current is not None and self.current.count is not None else None
        seen = {c.count for c in self.recent}
        history = list(self.ip.user_ns.get("In", []))
        older = [_Cell(src, n, None) for n, src in enumerate(history)
                 if n and n not in seen and (now is None or n < now)]
        return sorted([*older, *self.recent], key=lambda c: c.count or 0)

    def parameter_cell(self, after: int | None = None) -> _Cell | None:
        """The latest executed parameters cell (after execution count `after`): the cell tagged `parameters` in the
        notebook file, matched by its cell id, else (a front end that sends no ids) by its saved source; None when
        neither ran."""
        cell_id, source = _tagged_parameters(self.notebook_file)
        if source is None:
            cell_id, source = _tagged_parameters(self.template())
        done = [c for c in self.executed() if after is None or (c.count or 0) > after]
        by_id = [c for c in done if cell_id and c.cell_id == cell_id]
        by_source = [c for c in done if source is not None and c.source.strip() == source.strip()]
        found = by_id or by_source
        return found[-1] if found else None

    def begin(self, params: dict[str, Any], nb: str, kw: dict[str, Any]) -> runs.Run:
        """Start the kernel's next run (see the module docstring): the previous one closed or reused."""
        self.nb = nb
        old, reuse = self.run, None
        if old is not None and _owned(old) and old.status in ("running", "failed", "stopped"):
            if not old.history and not old.checkpoints():
                reuse = old
            else:
                old.fail("superseded: the start cell ran again", status="stopped", status_extra={"by_session": True})
        keep = {k: v for k, v in kw.items() if k in ("name", "parent")}
        run = runs.start(params, run_dir=reuse.dir, **keep) if reuse is not None else runs.start(params, **kw)
        if reuse is not None:
            run.update_meta(reused=[*run.meta.get("reused", []), runs.now()])
        # the parameters cell run since the previous run's start cell: a cell matched before it would be the
        # previous run's, so none is recorded rather than a wrong one
        param_cell = self.parameter_cell(after=self.start_count if old is not None else None)
        first = param_cell.count if param_cell is not None and param_cell.count is not None else None
        if old is not None and reuse is None and first is not None and _owned(old):
            self.cells = [c for c in self.cells if c.count is None or c.count < first]  # the next run's cells
            self.save_notebook()
        cells = [c for c in self.executed() if first is not None and c.count is not None and c.count >= first]
        self.run, self.cells = run, cells if param_cell is not None else []
        self.start_count = self.current.count if self.current is not None else None
        run.update_meta(interactive=True, notebook_path=str(self.template()),
                        working_copy=str(self.notebook_file) if self.notebook_file else None,
                        parameters_cell="recorded" if param_cell is not None else "not run since the previous run")
        self.save_notebook()
        return run

    def save_notebook(self) -> None:
        """Write the cells executed for the run so far as its notebook (only while this kernel owns the run)."""
        run = self.run
        if run is None or not _owned(run):
            return
        nb = {"cells": [c.to_json(i) for i, c in enumerate(self.cells)],
              "metadata": {"kernelspec": {"name": "restoration-lab", "display_name": "Python (restoration-lab)",
                                          "language": "python"},
                           "lab": {"recorded_from": "live kernel", "notebook": self.notebook_file,
                                   "template": str(self.template())}},
              "nbformat": 4, "nbformat_minor": 5}
        run.write_notebook(nb)

    def shutdown(self) -> None:
        """The kernel is exiting: an unfinished run of this kernel stops here."""
        run = self.run
        if run is not None and run.status == "running" and _owned(run):
            run.fail("the kernel shut down (restart or close) before the run finished", status="stopped",
                     status_extra={"by_session": True})


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext lab.session`: keep the runs started in this kernel true (see the module docstring); nothing in a
    kernel a runner started (papermill), whose runner records the run."""
    if _interactive(ip) and getattr(ip, _ATTR, None) is None:
        capture = Capture(ip)
        capture.install()
        setattr(ip, _ATTR, capture)


def unload_ipython_extension(ip: Any) -> None:
    """`%unload_ext lab.session`: remove the hooks; the current run is no longer recorded."""
    capture = getattr(ip, _ATTR, None)
    if capture is not None:
        capture.uninstall()
        setattr(ip, _ATTR, None)


class Session:
    """A run started from a notebook, and (in a live kernel) the extension recording it; the notebook passes it to
    `lab.training` so the parameters the kernel holds when a phase starts are the ones recorded."""

    def __init__(self, run: runs.Run, capture: Capture | None = None, nb: str = "train"):
        self.run, self.capture, self.nb = run, capture, nb

    @property
    def live(self) -> bool:
        """Whether a live kernel records this run (False under a runner)."""
        return self.capture is not None

    def sync_params(self, phase: str) -> dict[str, Any] | None:
        """At the start of `phase`: the parameters the live kernel holds now, recorded as the run's params (with the
        change history in its meta's "param_changes") when they differ; None under a runner, or when the kernel
        has started another run since."""
        c, run = self.capture, self.run
        if c is None or c.run is None or c.run.dir != run.dir:
            return None
        now = collect(c.ip.user_ns, self.nb)
        before = run.params
        changed = {k: [before.get(k), v] for k, v in now.items() if before.get(k, v) != v or k not in before}
        if changed:
            run.update_meta(param_changes=[*run.meta.get("param_changes", []),
                                           {"time": runs.now(), "phase": phase, "changed": changed}])
            run.write_json("params", {**before, **now})
        return now


def _shut_down_kernel(ip: Any) -> None:
    """Stop the running cell and ask this kernel to shut down as a front end would (a shutdown request on its
    control channel); SIGTERM to itself if it is still alive `SHUTDOWN_GRACE_S` later."""
    _thread.interrupt_main()
    try:
        from ipykernel.connect import get_connection_file  # lazy: only kernels have one
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(connection_file=get_connection_file())
        kc.load_connection_file()
        kc.start_channels(shell=False, iopub=False, stdin=False, hb=False, control=True)
        kc.shutdown()
    except (ImportError, RuntimeError, OSError, ValueError) as e:  # not a kernel: nothing to ask
        print(f"[lab] could not ask the kernel to shut down: {e}", file=sys.stderr)
    time.sleep(SHUTDOWN_GRACE_S)
    os.kill(os.getpid(), signal.SIGTERM)


def keep_alive(run: runs.Run, runner: int | None = None, every_s: float = 1.0, ip: Any = None) -> threading.Thread:
    """A daemon thread of the kernel running `run`: it beats the run's pulse every PULSE_S seconds (other hosts tell
    a live run by it) and, in a kernel a runner started, records the run `interrupted` and shuts the kernel down when
    the runner process dies (killed, out of memory), so an orphaned kernel never keeps a dead run 'running'."""
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
        _shut_down_kernel(ip)

    t = threading.Thread(target=watch, name="lab-keep-alive", daemon=True)
    t.start()
    return t


def start(params: dict[str, Any], *, run_dir: str | os.PathLike | None = None, nb: str = "train",
          **kw: Any) -> Session:
    """Begin a notebook's run (see the module docstring): attach to a runner's run directory, or create one and keep
    it true from this live kernel (the extension loaded if it was not); returns the `Session` to pass on."""
    ip = _ipython()
    if run_dir or not _interactive(ip):
        run = runs.start(params, run_dir=run_dir, **kw)
        runner = os.environ.get(vocab.ENV_RUNNER_PID, "")
        if run_dir and runner.isdigit():
            keep_alive(run, int(runner), ip=ip)
        return Session(run, None, nb)
    load_ipython_extension(ip)
    capture = getattr(ip, _ATTR)
    run = capture.begin(params, nb, kw)
    keep_alive(run)
    return Session(run, capture, nb)
